/* upstream.c — an external (corporate) HTTP proxy that allowed traffic leaves through.
 *
 * The proxy's own policy runs first and unchanged (allowlist on the name, resolve, internal and
 * metadata addresses refused, token): only a request that would have been dialled directly is
 * diverted. Instead of the target, the proxy dials the external proxy (its addresses resolved once
 * at start, on the caller's thread: the loop never blocks on DNS) and asks it for a tunnel with
 * "CONNECT host:port" (plus Proxy-Authorization when the URL carried credentials). Plain HTTP
 * requests go through such a tunnel too, so the exchange that follows is the ordinary one
 * (tunnel.c / forward.c). Bypass hosts (same pattern syntax as the allowlist) are dialled
 * directly. The external proxy's own address is the operator's choice and is not classified
 * (it is typically internal).
 *
 * The response head is read with MSG_PEEK and then consumed exactly, so bytes an upstream sends
 * right after the tunnel opens (a server-first protocol's banner) stay in the socket for the relay.
 * The credentials live only in this process: never in the child's environment, audit events or
 * error messages (answers name the external proxy by host:port only). */
#include "upstream.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#define NP_EXT_HEAD_MAX 8192
#define NP_EXT_CRED_MAX 256

/* ---- configuration ---- */

static int unhex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode s[0, len) into out (cap bytes, NUL-terminated); control bytes are refused. */
static int pct_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '%') {
			if (len - i < 3)
				return -1;
			int a = unhex((unsigned char)s[i + 1]), b = unhex((unsigned char)s[i + 2]);
			if (a < 0 || b < 0)
				return -1;
			ch = a * 16 + b;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f || n + 1 >= cap)
			return -1;
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

static char *basic_auth(const char *user, const char *pass)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char plain[2 * NP_EXT_CRED_MAX + 2];
	int pl = snprintf(plain, sizeof plain, "%s:%s", user, pass);
	size_t len = (size_t)pl;
	char *out = malloc(6 + 4 * ((len + 2) / 3) + 1);
	if (!out) {
		explicit_bzero(plain, sizeof plain);
		return NULL;
	}
	memcpy(out, "Basic ", 6);
	size_t o = 6;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)plain[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)plain[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)plain[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	explicit_bzero(plain, sizeof plain);
	return out;
}

/* "user[:password]@" at the start of `s` (up to `at`): fills out->auth. */
static int parse_userinfo(const char *s, const char *at, struct np_upstream *out, const char **why)
{
	char user[NP_EXT_CRED_MAX], pass[NP_EXT_CRED_MAX];
	const char *colon = memchr(s, ':', (size_t)(at - s));
	const char *uend = colon ? colon : at;
	int rc = 0;
	pass[0] = '\0';
	if (pct_decode(s, (size_t)(uend - s), user, sizeof user) < 0 ||
	    (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), pass, sizeof pass) < 0)) {
		*why = "the credentials are too long or not valid percent-encoding";
		rc = -EINVAL;
	} else if (!user[0] || strchr(user, ':')) {
		*why = "the user name is empty or contains ':'";
		rc = -EINVAL;
	} else if (!(out->auth = basic_auth(user, pass))) {
		*why = "out of memory";
		rc = -ENOMEM;
	}
	explicit_bzero(user, sizeof user);
	explicit_bzero(pass, sizeof pass);
	return rc;
}

static void np_upstream_free_fields(struct np_upstream *u)
{
	if (u->auth) {
		explicit_bzero(u->auth, strlen(u->auth));
		free(u->auth);
		u->auth = NULL;
	}
	free(u->bypass);
	u->bypass = NULL;
	u->nbypass = 0;
}

int np_upstream_parse(const char *url, struct np_upstream *out, const char **why)
{
	char raw[NP_HOST_MAX + 2];
	memset(out, 0, sizeof *out);
	if (!url || !*url) {
		*why = "empty URL";
		return -EINVAL;
	}
	const char *s = url;
	const char *sep = strstr(s, "://");
	if (sep) {
		if (sep - s != 4 || strncasecmp(s, "http", 4) != 0) {
			*why = "only http:// external proxies are supported (the tunnel itself carries TLS)";
			return -EINVAL;
		}
		s = sep + 3;
	}
	size_t len = strlen(s);
	if (len && s[len - 1] == '/')
		len--;
	if (memchr(s, '/', len) || memchr(s, '?', len) || memchr(s, '#', len)) {
		*why = "a proxy URL has no path, query or fragment";
		return -EINVAL;
	}
	const char *at = NULL;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '@')
			at = s + i;
	if (at) {
		int rc = parse_userinfo(s, at, out, why);
		if (rc < 0)
			return rc;
		len -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	if (http_split_authority(s, len, 0, raw, sizeof raw, &out->port) < 0) {
		*why = "needs host:port with a port 1-65535";
		goto bad;
	}
	if (np_host_normalize(raw, strlen(raw), out->host, sizeof out->host) < 0) {
		*why = "the host is not a valid name or IP address";
		goto bad;
	}
	return 0;
bad:
	np_upstream_free_fields(out);
	return -EINVAL;
}

void np_upstream_free(struct np_upstream *u)
{
	if (!u)
		return;
	np_upstream_free_fields(u);
	free(u);
}

struct np_upstream *np_upstream_clone(const struct np_upstream *u, bool *ok)
{
	*ok = true;
	if (!u)
		return NULL;
	struct np_upstream *n = malloc(sizeof *n);
	if (!n)
		goto nomem;
	*n = *u;
	n->auth = NULL;
	n->bypass = NULL;
	if ((u->auth && !(n->auth = strdup(u->auth))) ||
	    (u->nbypass && !(n->bypass = malloc(u->nbypass * sizeof *u->bypass)))) {
		np_upstream_free(n);
		goto nomem;
	}
	if (u->nbypass)
		memcpy(n->bypass, u->bypass, u->nbypass * sizeof *u->bypass);
	return n;
nomem:
	*ok = false;
	return NULL;
}

/* The config's record, created on first use (bypass hosts may be given before the URL). */
static struct np_upstream *ext_of(nono_proxy_config *cfg)
{
	if (!cfg->ext)
		cfg->ext = calloc(1, sizeof *cfg->ext);
	return cfg->ext;
}

int nono_proxy_config_set_external_proxy(nono_proxy_config *cfg, const char *url, nono_error *err)
{
	struct np_upstream parsed, *u;
	const char *why = "";
	if (!cfg)
		return nono_fail(err, -EINVAL, "no config");
	int rc = np_upstream_parse(url, &parsed, &why);
	if (rc < 0) /* the URL itself is not echoed: it may carry a password */
		return nono_fail(err, rc, "external proxy URL: %s", why);
	if (!(u = ext_of(cfg))) {
		np_upstream_free_fields(&parsed);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	if (u->auth) {
		explicit_bzero(u->auth, strlen(u->auth));
		free(u->auth);
	}
	memcpy(u->host, parsed.host, sizeof u->host);
	u->port = parsed.port;
	u->auth = parsed.auth;
	return 0;
}

int nono_proxy_config_add_bypass_host(nono_proxy_config *cfg, const char *pattern, nono_error *err)
{
	np_pattern p;
	const char *why = "";
	struct np_upstream *u;
	if (!cfg)
		return nono_fail(err, -EINVAL, "no config");
	if (np_pattern_parse(pattern, true, false, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "bypass host \"%s\": %s", pattern ? pattern : "(null)", why);
	if (!(u = ext_of(cfg)))
		return nono_fail(err, -ENOMEM, "out of memory");
	if (u->nbypass >= NONO_PROXY_MAX_PATTERNS)
		return nono_fail(err, -EINVAL, "too many bypass hosts (limit %d)", NONO_PROXY_MAX_PATTERNS);
	np_pattern *na = realloc(u->bypass, (u->nbypass + 1) * sizeof *na);
	if (!na)
		return nono_fail(err, -ENOMEM, "out of memory");
	na[u->nbypass++] = p;
	u->bypass = na;
	return 0;
}

int np_upstream_check(const struct nono_proxy_config *c, nono_error *err)
{
	if (c->ext && !c->ext->host[0])
		return nono_fail(err, -EINVAL, "bypass hosts were given without an external proxy");
	return 0;
}

int np_upstream_prepare(struct nono_proxy_config *c, nono_error *err)
{
	struct np_upstream *u = c->ext;
	if (!u)
		return 0;
	int rc = np_upstream_check(c, err);
	if (rc < 0)
		return rc;
	if (np_parse_ip_literal(u->host, &u->addrs[0]) == 1) {
		u->naddrs = 1;
		return 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res = NULL;
	int g = getaddrinfo(u->host, NULL, &hints, &res);
	if (g)
		return nono_fail(err, -EHOSTUNREACH, "external proxy %s: DNS lookup failed: %s", u->host,
				 gai_strerror(g));
	u->naddrs = 0;
	for (struct addrinfo *ai = res; ai && u->naddrs < NP_MAX_ADDRS; ai = ai->ai_next) {
		np_addr *a = &u->addrs[u->naddrs];
		if (ai->ai_family == AF_INET) {
			a->family = AF_INET;
			memcpy(a->b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			a->family = AF_INET6;
			memcpy(a->b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		u->naddrs++;
	}
	freeaddrinfo(res);
	if (!u->naddrs)
		return nono_fail(err, -EHOSTUNREACH, "external proxy %s has no IPv4/IPv6 address", u->host);
	return 0;
}

bool np_upstream_applies(const struct nono_proxy_config *c, const char *host, uint16_t port)
{
	const struct np_upstream *u = c->ext;
	if (!u || !u->naddrs)
		return false;
	for (size_t i = 0; i < u->nbypass; i++)
		if (np_pattern_match(&u->bypass[i], host, port))
			return false;
	return true;
}

/* ---- the connection side ---- */

void upstream_divert(struct conn *c)
{
	const struct nono_proxy_config *cfg = c->x->cfg;
	c->dial_port = c->ev.port;
	c->via_ext = false;
	if (!np_upstream_applies(cfg, c->ev.target, c->ev.port))
		return;
	memcpy(c->addrs, cfg->ext->addrs, cfg->ext->naddrs * sizeof c->addrs[0]);
	c->naddrs = cfg->ext->naddrs;
	c->dial_port = cfg->ext->port;
	c->via_ext = true;
	snprintf(c->ev.mode, sizeof c->ev.mode, "external");
}

static void ext_fail(struct conn *c, const char *what)
{
	char reason[NONO_REASON_MAX];
	const struct np_upstream *u = c->x->cfg->ext;
	snprintf(reason, sizeof reason, "external proxy %.80s port %u: %.100s", u->host, u->port, what);
	conn_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", "upstream-failure", reason);
}

/* The external proxy's answer. Bytes are peeked, and consumed only as far as they belong to the
 * head: while the head is incomplete everything peeked is (it is kept in c->rb, so a slow answer
 * does not make the level-triggered loop spin on the same bytes); once complete, exactly up to its
 * end, leaving anything after it — the tunnel's first bytes — in the socket. */
static void ext_read(struct conn *c)
{
	char buf[NP_EXT_HEAD_MAX], msg[160];
	if (!c->rb && !(c->rb = malloc(NP_EXT_HEAD_MAX))) {
		ext_fail(c, "out of memory");
		return;
	}
	c->rb_cap = NP_EXT_HEAD_MAX;
	memcpy(buf, c->rb, c->rb_len);
	ssize_t n = recv(c->uio.fd, buf + c->rb_len, sizeof buf - c->rb_len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ext_fail(c, n == 0 ? "closed the connection without answering CONNECT"
				   : "the connection failed while waiting for its answer");
		return;
	}
	http_head h;
	size_t scan = 0, have = c->rb_len + (size_t)n;
	const char *why = "";
	int r = http_parse_response(buf, have, &scan, &h, &why);
	if (r == 0 && have < sizeof buf) { /* all of it is head: take it out of the socket */
		ssize_t k = recv(c->uio.fd, c->rb + c->rb_len, (size_t)n, 0);
		if (k != n) {
			ext_fail(c, "the connection failed while reading its answer");
			return;
		}
		c->rb_len = have;
		return;
	}
	if (r <= 0) {
		ext_fail(c, "sent a malformed or oversized answer to CONNECT");
		return;
	}
	if (h.status / 100 != 2) {
		snprintf(msg, sizeof msg, "refused the tunnel: %d%s", h.status,
			 h.status == 407 ? " (proxy authentication required or wrong)" : "");
		ext_fail(c, msg);
		return;
	}
	/* Consume the rest of the head only: what follows it is the tunnel's. */
	size_t left = h.head_len - c->rb_len;
	while (left) {
		ssize_t k = recv(c->uio.fd, buf, left, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ext_fail(c, "the connection failed after the tunnel was granted");
			return;
		}
		left -= (size_t)k;
	}
	free(c->rb);
	c->rb = NULL;
	c->rb_len = c->rb_cap = c->rb_scan = 0;
	c->via_ext = false;
	(void)np_io_want(c->x->loop, &c->uio, 0);
	c->on_ext_ready(c);
}

static void ext_event(struct np_io *io, uint32_t what)
{
	struct conn *c = CONN_OF(io, uio);
	if (c->xq.len > c->xq.off) {
		int f = outq_flush(c->uio.fd, &c->xq, NULL);
		if (f < 0) {
			ext_fail(c, "the connection failed while sending CONNECT");
			return;
		}
		(void)np_io_want(c->x->loop, &c->uio, f ? NP_IN : NP_OUT);
		return;
	}
	if (what & (NP_IN | EPOLLERR | EPOLLHUP))
		ext_read(c);
}

void upstream_handshake(struct conn *c, void (*done)(struct conn *c))
{
	const struct np_upstream *u = c->x->cfg->ext;
	char head[NP_HOST_MAX + 2 * NP_EXT_CRED_MAX + 128];
	bool v6 = strchr(c->ev.target, ':') != NULL;
	int n = snprintf(head, sizeof head,
			 "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n%s%s%s\r\n", v6 ? "[" : "",
			 c->ev.target, v6 ? "]" : "", c->ev.port, v6 ? "[" : "", c->ev.target, v6 ? "]" : "",
			 c->ev.port, u->auth ? "Proxy-Authorization: " : "", u->auth ? u->auth : "",
			 u->auth ? "\r\n" : "");
	c->on_ext_ready = done;
	c->uio.fn = ext_event;
	/* Its own queue: c->uq may hold a rewritten plain-HTTP head, and c->in the client's early
	 * bytes; both go to the target once the tunnel is up. */
	int rc = n > 0 && (size_t)n < sizeof head ? outq_set(&c->xq, head, (size_t)n) : -ENOMEM;
	explicit_bzero(head, sizeof head);
	if (rc < 0) {
		ext_fail(c, "out of memory");
		return;
	}
	int f = outq_flush(c->uio.fd, &c->xq, NULL);
	if (f < 0) {
		ext_fail(c, "the connection failed while sending CONNECT");
		return;
	}
	/* The answer needs a round trip: wait for it in the loop. */
	(void)np_io_want(c->x->loop, &c->uio, f ? NP_IN : NP_OUT);
}
