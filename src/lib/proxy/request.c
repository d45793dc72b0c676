/* request.c — one request's path through the proxy, in the order the policy demands:
 *   parse the head → allowlist on the NAME (no DNS for a name that is not allowed, so a denied
 *   name leaks nothing) → resolve (resolve.c) → deny if ANY resolved address is internal or
 *   metadata → token (407; after the policy, so a policy denial wins over missing credentials) →
 *   dial exactly the addresses that were checked (no second lookup: DNS rebinding cannot swap the
 *   target). An unauthenticated client can thus make the proxy resolve an allowlisted name, never
 *   dial it. */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

static void deny(struct conn *c, int status, const char *phrase, const char *code, const char *reason)
{
	np_audit(c, "deny", status, reason);
	conn_answer(c, status, phrase, code, reason);
}

static void deny_auth(struct conn *c)
{
	deny(c, 407, "Proxy Authentication Required", "auth-required",
	     "proxy credentials missing or wrong (use the URL with the session token)");
}

/* Copy a printable, bounded version of untrusted bytes into an audit field. */
static void field(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
	}
	dst[n] = '\0';
}

static bool is_hop_header(const http_header *h, const http_head *head)
{
	static const char *const hop[] = {"Host", "Proxy-Authorization", "Proxy-Connection", "Connection",
					  "Keep-Alive", "TE", "Upgrade", "Proxy-Authenticate"};
	for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
		if (http_token_eq(h->name, h->name_len, hop[i]))
			return true;
	/* Fields the client named in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
	for (int i = http_find_header(head, "Connection", 0); i >= 0;
	     i = http_find_header(head, "Connection", i + 1)) {
		char name[64];
		if (h->name_len < sizeof name) {
			memcpy(name, h->name, h->name_len);
			name[h->name_len] = '\0';
			if (http_list_has(head->headers[i].value, head->headers[i].value_len, name))
				return true;
		}
	}
	return false;
}

/* Rewrite an absolute-form request for the origin server: origin-form target, our Host, no
 * hop-by-hop fields, Connection: close (one upstream connection per request). Upgrade is dropped
 * with the other hop-by-hop fields: an upgraded connection would be an unframed tunnel that bypasses
 * this parser, so h2c/WebSocket over plain HTTP get an ordinary HTTP/1.1 exchange (use CONNECT). */
static int build_upstream_head(struct conn *c, const http_head *h, const char *host, uint16_t port,
			       const char *path, size_t path_len)
{
	size_t cap = h->head_len + NP_HOST_MAX + 64;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	bool v6 = strchr(host, ':') != NULL;
	char portbuf[8] = "";
	if (port != 80)
		snprintf(portbuf, sizeof portbuf, ":%u", port);
	/* The client's version goes upstream: an HTTP/1.0 client cannot read a chunked response, and
	 * an origin must not send one to a 1.0 request. */
	int n = snprintf(b, cap, "%.*s %s%.*s HTTP/1.%d\r\nHost: %s%s%s%s\r\n", (int)h->method_len,
			 h->method, (!path || path[0] == '?') ? "/" : "", (int)path_len, path ? path : "",
			 h->version_minor, v6 ? "[" : "", host, v6 ? "]" : "", portbuf);
	size_t len = (size_t)n;
	for (size_t i = 0; i < h->nheaders; i++) {
		const http_header *hd = &h->headers[i];
		if (is_hop_header(hd, h))
			continue;
		memcpy(b + len, hd->name, hd->name_len);
		len += hd->name_len;
		memcpy(b + len, ": ", 2);
		len += 2;
		memcpy(b + len, hd->value, hd->value_len);
		len += hd->value_len;
		memcpy(b + len, "\r\n", 2);
		len += 2;
	}
	memcpy(b + len, "Connection: close\r\n\r\n", 21);
	len += 21;
	outq_reset(&c->uq);
	c->uq.buf = b;
	c->uq.len = len;
	return 0;
}

static void dial_next(struct conn *c);

static void start_dial(struct conn *c)
{
	c->next_addr = 0;
	c->last_dial_errno = 0;
	c->st = C_DIAL;
	dial_next(c);
}

/* The decision on a parsed head. Pointers in h point into c->in. */
static void handle_request(struct conn *c, const http_head *h)
{
	struct nono_proxy *p = c->p;
	char rawhost[NP_HOST_MAX + 2], host[NP_HOST_MAX], reason[NONO_REASON_MAX];
	const char *path = NULL, *why = "";
	size_t path_len = 0;
	uint16_t port = 0;
	nono_audit_event *ev = &c->ev;

	memset(ev, 0, sizeof *ev);
	c->up = (struct relay){.pipe = {-1, -1}};
	c->down = (struct relay){.pipe = {-1, -1}};
	field(ev->method, sizeof ev->method, h->method, h->method_len);
	c->is_connect = http_token_eq(h->method, h->method_len, "CONNECT");
	snprintf(ev->mode, sizeof ev->mode, "%s", c->is_connect ? "connect" : "http");
	if (h->method_len >= sizeof ev->method)
		return deny(c, 400, "Bad Request", "bad-request", "method name too long");
	if (c->is_connect) {
		field(ev->target, sizeof ev->target, h->target, h->target_len);
		if (http_split_authority(h->target, h->target_len, 0, rawhost, sizeof rawhost, &port) < 0)
			return deny(c, 400, "Bad Request", "bad-request",
				    "CONNECT needs an authority host:port with a port 1-65535");
	} else {
		field(ev->path, sizeof ev->path, h->target, h->target_len);
		int r = http_parse_absolute(h->target, h->target_len, rawhost, sizeof rawhost, &port, &path,
					    &path_len);
		if (r == -ENOTSUP)
			return deny(c, 400, "Bad Request", "bad-request",
				    "only http:// URLs are forwarded; use CONNECT for other schemes");
		if (r < 0)
			return deny(c, 400, "Bad Request", "bad-request",
				    "a proxy request needs an absolute http:// URL");
		field(ev->target, sizeof ev->target, rawhost, strlen(rawhost));
		if (path)
			field(ev->path, sizeof ev->path, path, path_len);
		else
			snprintf(ev->path, sizeof ev->path, "/");
		int br = http_request_body(h, &c->req_body, &why);
		if (br == -ENOTSUP)
			return deny(c, 501, "Not Implemented", "bad-request", why);
		if (br < 0)
			return deny(c, 400, "Bad Request", "bad-request", why);
	}
	ev->port = port;

	/* 1. The name, before anything touches DNS. */
	np_verdict v;
	np_check_name(p->cfg, rawhost, port, host, &v);
	snprintf(ev->target, sizeof ev->target, "%s", host);
	if (!v.allowed)
		return deny(c, 403, "Forbidden", v.code, v.reason);
	/* Refused before any lookup, like a name off the list: the name gives nothing away. */
	if (v.connect_only && !c->is_connect) {
		snprintf(reason, sizeof reason,
			 "host %.100s is allowed for CONNECT tunnels only (connect-only): plain HTTP is refused",
			 host);
		return deny(c, 403, "Forbidden", "connect-only", reason);
	}
	/* 2. Credentials are checked now but answered only once the whole policy (including the
	 * resolved addresses) has passed: a policy denial wins over missing credentials. Nothing is
	 * dialled without them. */
	c->authorized = (c->is_connect && p->cfg->connect_without_token) || http_check_proxy_auth(h, p->token);

	c->internal_ok = v.internal_ok;
	c->close_after = h->version_minor == 0;
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, "close"))
			c->close_after = true;
	if (!c->is_connect && build_upstream_head(c, h, host, port, path, path_len) < 0) {
		snprintf(reason, sizeof reason, "out of memory");
		return deny(c, 503, "Service Unavailable", NULL, reason);
	}
	/* The head is consumed; what follows is body / early tunnel data / a pipelined request. */
	size_t hl = h->head_len;
	memmove(c->in, c->in + hl, c->in_len - hl);
	c->in_len -= hl;
	c->in_scan = 0;
	c->in_body = 0;

	conn_set_deadline(c, np_now_ms(p) + NP_DIAL_TIMEOUT_MS);
	if (v.literal) { /* the address was classified with the name: nothing to resolve */
		if (!c->authorized)
			return deny_auth(c);
		c->addrs[0] = v.addr;
		c->naddrs = 1;
		return start_dial(c);
	}
	struct np_resolve_req *q = calloc(1, sizeof *q);
	if (!q)
		return deny(c, 503, "Service Unavailable", NULL, "out of memory");
	snprintf(q->host, sizeof q->host, "%s", host);
	q->owner = c;
	c->req = q;
	c->st = C_RESOLVE;
	conn_update(c);
	np_resolver_submit(p->res, q);
}

void conn_on_client_head(struct conn *c)
{
	struct nono_proxy *p = c->p;
	size_t max = p->cfg->lim.max_header_bytes;
	for (;;) {
		if (c->in_len > 0) {
			http_head h;
			const char *why = "";
			int r = http_parse_request(c->in, c->in_len, &c->in_scan, &h, &why);
			if (r == 1)
				return handle_request(c, &h);
			if (r == -E2BIG)
				return deny(c, 431, "Request Header Fields Too Large", "bad-request", why);
			if (r < 0)
				return deny(c, 400, "Bad Request", "bad-request", why);
			if (c->in_len >= max) {
				char reason[96];
				snprintf(reason, sizeof reason, "request head exceeds %zu bytes", max);
				return deny(c, 431, "Request Header Fields Too Large", "bad-request", reason);
			}
		}
		if (c->in_len == c->in_cap) {
			size_t ncap = c->in_cap ? c->in_cap * 2 : 4096;
			if (ncap > max)
				ncap = max;
			char *n = realloc(c->in, ncap);
			if (!n)
				return deny(c, 503, "Service Unavailable", NULL, "out of memory");
			c->in = n;
			c->in_cap = ncap;
		}
		ssize_t n = recv(c->cfd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			conn_update(c);
			return;
		}
		/* EOF or error before a complete head: no request, nothing to decide. */
		return conn_close(c);
	}
}

static void fail_502(struct conn *c, const char *code, const char *reason)
{
	/* Policy allowed this request; the upstream failed. */
	np_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", code, reason);
}

void conn_on_resolved(struct conn *c, struct np_resolve_req *req)
{
	char reason[NONO_REASON_MAX];
	if (req->error || req->naddrs == 0) {
		snprintf(reason, sizeof reason, "DNS lookup for %.100s failed: %.100s", req->host,
			 req->error ? gai_strerror(req->error) : "no IPv4/IPv6 address");
		return fail_502(c, "dns-failure", reason);
	}
	np_verdict v = {0};
	for (size_t i = 0; i < req->naddrs; i++)
		if (!np_check_addr(&req->addrs[i], req->host, c->internal_ok, &v))
			return deny(c, 403, "Forbidden", v.code, v.reason);
	if (!c->authorized)
		return deny_auth(c);
	memcpy(c->addrs, req->addrs, req->naddrs * sizeof req->addrs[0]);
	c->naddrs = req->naddrs;
	start_dial(c);
}

static void dial_failed(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	snprintf(reason, sizeof reason, "connecting to %.100s port %u failed: %.100s", c->ev.target, c->ev.port,
		 strerror(c->last_dial_errno ? c->last_dial_errno : ECONNREFUSED));
	fail_502(c, "upstream-failure", reason);
}

static void connected(struct conn *c)
{
	int one = 1;
	setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->activity_ms = np_now_ms(c->p);
	/* Re-arm the timer for the idle timeout (timer_cb checks activity). */
	conn_set_deadline(c, c->activity_ms + c->p->cfg->lim.idle_timeout_ms);
	if (c->is_connect) {
		np_audit(c, "allow", 200, "allowed");
		relay_start_tunnel(c);
	} else {
		np_audit(c, "allow", 0, "allowed");
		relay_start_http(c);
	}
}

/* Try the checked addresses in order; never a new lookup. */
static void dial_next(struct conn *c)
{
	while (c->next_addr < c->naddrs) {
		const np_addr *a = &c->addrs[c->next_addr++];
		struct sockaddr_storage ss = {0};
		socklen_t sl;
		if (a->family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons(c->ev.port);
			memcpy(&s4->sin_addr, a->b, 4);
			sl = sizeof *s4;
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(c->ev.port);
			memcpy(&s6->sin6_addr, a->b, 16);
			sl = sizeof *s6;
		}
		int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->last_dial_errno = errno;
			continue;
		}
		snprintf(c->ev.family, sizeof c->ev.family, "%s", a->family == AF_INET ? "inet" : "inet6");
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
			c->ufd = fd;
			return connected(c);
		}
		if (errno == EINPROGRESS) {
			c->ufd = fd;
			conn_update(c);
			return;
		}
		c->last_dial_errno = errno;
		close(fd);
	}
	dial_failed(c);
}

void conn_on_dial(struct conn *c)
{
	int e = 0;
	socklen_t el = sizeof e;
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e == 0)
		return connected(c);
	c->last_dial_errno = e;
	event_del(&c->uev);
	c->uflags = 0;
	close(c->ufd);
	c->ufd = -1;
	dial_next(c);
}

void conn_on_timeout(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	switch (c->st) {
	case C_HEAD:
		if (c->in_len == 0 && c->ev.mode[0]) {
			/* idle keep-alive connection between requests: just close */
			return conn_close(c);
		}
		snprintf(reason, sizeof reason, "request head not complete within %u ms",
			 c->p->cfg->lim.header_timeout_ms);
		c->ev = (nono_audit_event){0};
		return deny(c, 408, "Request Timeout", "header-timeout", reason);
	case C_RESOLVE:
		snprintf(reason, sizeof reason, "DNS lookup for %.100s timed out", c->ev.target);
		np_resolver_cancel(c->p->res, c->req);
		c->req = NULL;
		return fail_502(c, "dns-failure", reason);
	case C_DIAL:
		snprintf(reason, sizeof reason, "connecting to %.100s port %u timed out", c->ev.target,
			 c->ev.port);
		return fail_502(c, "upstream-failure", reason);
	case C_HTTP:
		if (!c->resp_started) {
			snprintf(reason, sizeof reason, "no response from %.100s port %u within %u ms",
				 c->ev.target, c->ev.port, c->p->cfg->lim.idle_timeout_ms);
			np_audit(c, "allow", 504, reason);
			return conn_answer(c, 504, "Gateway Timeout", "upstream-timeout", reason);
		}
		/* fall through */
	case C_TUNNEL:
		np_audit(c, "allow", c->ev.status, "closed: idle timeout");
		return conn_close(c);
	case C_CLOSING:
		return conn_close(c);
	}
}
