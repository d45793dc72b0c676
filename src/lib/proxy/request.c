/* request.c — one request's path through the proxy, in the order the policy demands:
 *   parse the head → allowlist on the NAME (no DNS for a name that is not allowed, so a denied
 *   name leaks nothing) → resolve (resolve.c) → deny if ANY resolved address is internal or
 *   metadata → token (407; after the policy, so a policy denial wins over missing credentials) →
 *   dial exactly the addresses that were checked (no second lookup: DNS rebinding cannot swap the
 *   target). An unauthenticated client can thus make the proxy resolve an allowlisted name, never
 *   dial it.
 *
 * The short path, taken by most requests: the head is read right after accept (clients send it
 * with the handshake), an IP literal is classified with the name and dialled without a resolver
 * thread, and the dial's outcome is probed at once (connect_probe), so on a nearby upstream a
 * CONNECT is answered 200 within the wake-up that accepted it. */
#include "intercept.h"
#include "relay.h"
#include "request.h"
#include "route.h"
#include "socks5.h"
#include "upstream.h"

#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

static void dial_timeout(struct conn *c);
static void start_dial(struct conn *c);
static void tunnel_request(struct conn *c, const char *rawhost, uint16_t port);
static void check_addrs_and_dial(struct conn *c, const char *host);

static void deny(struct conn *c, int status, const char *phrase, const char *code, const char *reason)
{
	conn_audit(c, "deny", status, reason);
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
		if (http_is_hop_header(hd, h))
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

/* The request target: host and port (and for plain HTTP the origin-form path and the body framing),
 * recorded in the audit event. Returns 0, or -1 when the request was refused (answered). */
/* The proxy's own loopback names (its listener is on loopback). */
static bool is_self_host(const char *h)
{
	return !strcmp(h, "127.0.0.1") || !strcmp(h, "localhost") || !strcmp(h, "::1") ||
	       !strcmp(h, "[::1]");
}

static int parse_target(struct conn *c, const http_head *h, char *rawhost, size_t cap, uint16_t *port,
			const char **path, size_t *path_len)
{
	nono_audit_event *ev = &c->ev;
	const char *why = "";
	if (c->is_connect) {
		field(ev->target, sizeof ev->target, h->target, h->target_len);
		if (http_split_authority(h->target, h->target_len, 0, rawhost, cap, port) < 0) {
			deny(c, 400, "Bad Request", "bad-request",
			     "CONNECT needs an authority host:port with a port 1-65535");
			return -1;
		}
		return 0;
	}
	field(ev->path, sizeof ev->path, h->target, h->target_len);
	int r = http_parse_absolute(h->target, h->target_len, rawhost, cap, port, path, path_len);
	if (r < 0) {
		deny(c, 400, "Bad Request", "bad-request",
		     r == -ENOTSUP ? "only http:// URLs are forwarded; use CONNECT for other schemes"
				   : "a proxy request needs an absolute http:// URL");
		return -1;
	}
	field(ev->target, sizeof ev->target, rawhost, strlen(rawhost));
	if (*path)
		field(ev->path, sizeof ev->path, *path, *path_len);
	else
		snprintf(ev->path, sizeof ev->path, "/");
	r = http_request_body(h, &c->req_body, &why);
	if (r < 0) {
		if (r == -ENOTSUP)
			deny(c, 501, "Not Implemented", "bad-request", why);
		else
			deny(c, 400, "Bad Request", "bad-request", why);
		return -1;
	}
	return 0;
}

/* The name passed: an IP literal is dialled at once (it was classified with the name; no resolver
 * thread, no loop round), a name goes to the resolver. */
static void resolve_or_dial(struct conn *c, const np_verdict *v, const char *host)
{
	struct np_ctx *x = c->x;
	conn_set_deadline(c, conn_now(c) + NP_DIAL_TIMEOUT_MS);
	c->on_timeout = dial_timeout;
	/* Stop reading the client until the upstream is up (lazily: no epoll_ctl unless it sends). */
	(void)np_io_want(x->loop, &c->cio, 0);
	if (v->literal) {
		if (!c->authorized) {
			deny_auth(c);
			return;
		}
		c->addrs[0] = v->addr;
		c->naddrs = 1;
		start_dial(c);
		return;
	}
	/* A name answered moments ago: its addresses, checked again, without the resolver thread. */
	c->naddrs = np_dnscache_get(np_resolver_cache(x->res), host, np_loop_now(x->loop), c->addrs);
	if (c->naddrs) {
		check_addrs_and_dial(c, host);
		return;
	}
	struct np_resolve_req *q = calloc(1, sizeof *q);
	if (!q) {
		deny(c, 503, "Service Unavailable", NULL, "out of memory");
		return;
	}
	snprintf(q->host, sizeof q->host, "%s", host);
	q->owner = c;
	q->sink = x->sink;
	c->req = q;
	c->st = C_RESOLVE;
	np_resolver_submit(x->res, q);
}

/* The head is consumed; what follows is body / early tunnel data / a pipelined request. */
static void consume_head_and_dial(struct conn *c, const http_head *h, const np_verdict *v, const char *host)
{
	size_t hl = h->head_len;
	memmove(c->in, c->in + hl, c->in_len - hl);
	c->in_len -= hl;
	c->in_scan = 0;
	c->in_body = 0;
	/* A routed request may reuse a kept upstream connection: no lookup, dial or handshake. */
	if (c->route && route_pool_take(c))
		return;
	resolve_or_dial(c, v, host);
}

/* The decision on a parsed head. Pointers in h point into c->in. */
static void handle_request(struct conn *c, const http_head *h)
{
	const struct np_ctx *x = c->x;
	char rawhost[NP_HOST_MAX + 2], host[NP_HOST_MAX], reason[NONO_REASON_MAX];
	const char *path = NULL;
	size_t path_len = 0;
	uint16_t port = 0;
	nono_audit_event *ev = &c->ev;

	memset(ev, 0, sizeof *ev);
	c->route = NULL;
	c->up_done = NULL;
	c->up_keep = false;
	c->up = (struct relay){.pipe = {-1, -1}};
	c->down = (struct relay){.pipe = {-1, -1}};
	field(ev->method, sizeof ev->method, h->method, h->method_len);
	c->is_connect = http_token_eq(h->method, h->method_len, "CONNECT");
	snprintf(ev->mode, sizeof ev->mode, "%s", c->is_connect ? "connect" : "http");
	if (h->method_len >= sizeof ev->method) {
		deny(c, 400, "Bad Request", "bad-request", "method name too long");
		return;
	}
	np_verdict v;
	/* Origin form ("GET /openai/…") on a proxy with credential routes: route.c decides and
	 * rewrites (without routes it is refused below as a malformed proxy request, as before). */
	if (!c->is_connect && x->cfg->nroutes && h->target_len && h->target[0] == '/') {
		if (route_request(c, h, host, &v) < 0)
			return;
		consume_head_and_dial(c, h, &v, host);
		return;
	}
	if (parse_target(c, h, rawhost, sizeof rawhost, &port, &path, &path_len) < 0)
		return;
	ev->port = port;
	/* A client that honours HTTP_PROXY sends a route's base URL (http://127.0.0.1:PORT/PREFIX/…,
	 * the proxy itself) in absolute form: the same route, as if it had come in origin form. */
	if (!c->is_connect && x->cfg->nroutes && port == x->self_port && is_self_host(rawhost)) {
		http_head o = *h;
		o.target = path_len ? path : "/";
		o.target_len = path_len ? path_len : 1;
		if (route_request(c, &o, host, &v) < 0)
			return;
		consume_head_and_dial(c, &o, &v, host);
		return;
	}

	/* 1. The name, before anything touches DNS. */
	np_check_name(x->cfg, rawhost, port, host, &v);
	snprintf(ev->target, sizeof ev->target, "%s", host);
	if (!v.allowed) {
		deny(c, 403, "Forbidden", v.code, v.reason);
		return;
	}
	/* Refused before any lookup, like a name off the list: the name gives nothing away. */
	if (v.connect_only && !c->is_connect) {
		snprintf(reason, sizeof reason,
			 "host %.100s is allowed for CONNECT tunnels only (connect-only): plain HTTP is refused",
			 host);
		deny(c, 403, "Forbidden", "connect-only", reason);
		return;
	}
	/* 2. Credentials are checked now but answered only once the whole policy (including the
	 * resolved addresses) has passed: a policy denial wins over missing credentials. Nothing is
	 * dialled without them. */
	c->authorized = (c->is_connect && x->cfg->connect_without_token) || http_check_proxy_auth(h, x->token);
	c->internal_ok = v.internal_ok;
	c->close_after = h->version_minor == 0;
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, "close"))
			c->close_after = true;
	if (!c->is_connect && build_upstream_head(c, h, host, port, path, path_len) < 0) {
		deny(c, 503, "Service Unavailable", NULL, "out of memory");
		return;
	}
	consume_head_and_dial(c, h, &v, host);
}

/* A tunnel asked for by another front end (socks5.c): from here exactly the path of a CONNECT. */
static void tunnel_request(struct conn *c, const char *rawhost, uint16_t port)
{
	char host[NP_HOST_MAX];
	np_verdict v;
	c->is_connect = true;
	c->close_after = true;
	c->ev.port = port;
	np_check_name(c->x->cfg, rawhost, port, host, &v);
	snprintf(c->ev.target, sizeof c->ev.target, "%s", host);
	if (!v.allowed) {
		deny(c, 403, "Forbidden", v.code, v.reason);
		return;
	}
	c->internal_ok = v.internal_ok;
	resolve_or_dial(c, &v, host);
}

static void head_event(struct np_io *io, uint32_t what);
static void head_timeout(struct conn *c);

/* Read and parse until a head is complete (then decide), more bytes are needed (wait), or the
 * client is gone. Called at accept — a client usually sends its head with the handshake, so this
 * first read mostly finds it and the connection never waits in the loop for it — and on events. */
static void read_head(struct conn *c)
{
	size_t max = c->x->cfg->lim.max_header_bytes;
	for (;;) {
		/* A SOCKS5 greeting (version byte 5) on a fresh connection; no request line starts so. */
		if (c->in_len > 0 && (uint8_t)c->in[0] == 5 && !c->ev.mode[0]) {
			socks5_start(c, tunnel_request);
			return;
		}
		if (c->in_len > 0) {
			http_head h;
			const char *why = "";
			int r = http_parse_request(c->in, c->in_len, &c->in_scan, &h, &why);
			if (r == 1) {
				conn_wait_leave(c);
				handle_request(c, &h);
				return;
			}
			if (r == -E2BIG) {
				deny(c, 431, "Request Header Fields Too Large", "bad-request", why);
				return;
			}
			if (r < 0) {
				deny(c, 400, "Bad Request", "bad-request", why);
				return;
			}
			if (c->in_len >= max) {
				char reason[96];
				snprintf(reason, sizeof reason, "request head exceeds %zu bytes", max);
				deny(c, 431, "Request Header Fields Too Large", "bad-request", reason);
				return;
			}
		}
		if (c->in_len == c->in_cap) {
			size_t ncap = c->in_cap ? c->in_cap * 2 : 4096;
			if (ncap > max)
				ncap = max;
			char *n = realloc(c->in, ncap);
			if (!n) {
				deny(c, 503, "Service Unavailable", NULL, "out of memory");
				return;
			}
			c->in = n;
			c->in_cap = ncap;
		}
		int got = np_recv_more(c->cio.fd, c->in, &c->in_len, c->in_cap);
		if (got > 0)
			continue;
		if (got == 0) {
			(void)np_io_want(c->x->loop, &c->cio, NP_IN);
			return;
		}
		/* EOF or error before a complete head: no request, nothing to decide. */
		conn_close(c);
		return;
	}
}

static void head_event(struct np_io *io, uint32_t what)
{
	(void)what;
	read_head(CONN_OF(io, cio));
}

void request_start(struct conn *c)
{
	c->st = C_HEAD;
	conn_wait_enter(c);
	c->cio.fn = head_event;
	c->on_timeout = head_timeout;
	c->on_reuse = request_start;
	c->in_scan = 0;
	c->in_body = 0;
	conn_set_deadline(c, conn_now(c) + c->x->cfg->lim.header_timeout_ms);
	read_head(c);
}

static void head_timeout(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	if (c->in_len == 0 && c->ev.mode[0]) {
		conn_close(c); /* idle keep-alive connection between requests: just close */
		return;
	}
	snprintf(reason, sizeof reason, "request head not complete within %u ms",
		 c->x->cfg->lim.header_timeout_ms);
	c->ev = (nono_audit_event){0};
	deny(c, 408, "Request Timeout", "header-timeout", reason);
}

/* ---- resolve ---- */

static void fail_502(struct conn *c, const char *code, const char *reason)
{
	/* Policy allowed this request; the upstream failed. */
	conn_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", code, reason);
}

static void on_resolved(struct conn *c, struct np_resolve_req *req)
{
	char reason[NONO_REASON_MAX];
	if (req->error || req->naddrs == 0) {
		snprintf(reason, sizeof reason, "DNS lookup for %.100s failed: %.100s", req->host,
			 req->error ? gai_strerror(req->error) : "no IPv4/IPv6 address");
		fail_502(c, "dns-failure", reason);
		return;
	}
	memcpy(c->addrs, req->addrs, req->naddrs * sizeof req->addrs[0]);
	c->naddrs = req->naddrs;
	check_addrs_and_dial(c, req->host);
}

/* An allowed name's addresses (c->addrs: just resolved, or remembered by dnscache.c): every one
 * must pass, then the token, then exactly these are dialled. */
static void check_addrs_and_dial(struct conn *c, const char *host)
{
	np_verdict v = {0};
	for (size_t i = 0; i < c->naddrs; i++)
		if (!np_check_addr(&c->addrs[i], host,
				   c->internal_ok ||
					   np_internal_addr_allowed(c->x->cfg, &c->addrs[i], c->ev.port),
				   &v)) {
			deny(c, 403, "Forbidden", v.code, v.reason);
			return;
		}
	if (!c->authorized) {
		deny_auth(c);
		return;
	}
	start_dial(c);
}

static void resolved_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct np_ctx *x = (struct np_ctx *)((char *)io - offsetof(struct np_ctx, res_io));
	struct np_resolve_req *r = np_resolver_done(x->res, x->sink);
	while (r) {
		struct np_resolve_req *next = r->next;
		struct conn *c = r->owner;
		if (!r->error && r->naddrs)
			np_dnscache_put(np_resolver_cache(x->res), r->host, r->addrs, r->naddrs,
					np_loop_now(x->loop));
		if (c) {
			c->req = NULL;
			on_resolved(c, r);
		}
		free(r);
		r = next;
	}
}

int request_attach(struct np_ctx *x, struct np_resolver *res, unsigned sink, int efd)
{
	x->res = res;
	x->sink = sink;
	np_io_init(&x->res_io, efd, resolved_event);
	return np_io_want(x->loop, &x->res_io, NP_IN);
}

/* ---- dial ---- */

static void dial_next(struct conn *c);

static void start_dial(struct conn *c)
{
	upstream_divert(c); /* the policy has passed: maybe through the external proxy */
	c->next_addr = 0;
	c->last_dial_errno = 0;
	c->st = C_DIAL;
	dial_next(c);
}

static void dial_failed(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	snprintf(reason, sizeof reason, "connecting to %s%.100s port %u failed: %.100s",
		 c->via_ext ? "the external proxy " : "", c->via_ext ? c->x->cfg->ext->host : c->ev.target,
		 c->dial_port, strerror(c->last_dial_errno ? c->last_dial_errno : ECONNREFUSED));
	fail_502(c, "upstream-failure", reason);
}

static void connected(struct conn *c)
{
	if (c->via_ext) {
		upstream_handshake(c, connected); /* CONNECT through the external proxy first */
		return;
	}
	c->activity_ms = conn_now(c);
	if (c->route) {
		route_connected(c);
		return;
	}
	if (c->is_connect && intercept_wanted(c)) {
		intercept_start(c); /* a route's host: TLS terminated and re-encrypted (intercept.c) */
		return;
	}
	if (c->is_connect) {
		conn_audit(c, "allow", 200, "allowed");
		tunnel_start(c);
	} else {
		conn_audit(c, "allow", 0, "allowed");
		forward_start(c);
	}
}

/* Has the connect in flight finished? A second connect() says so without waiting for the loop:
 * 0 (or EISCONN) connected, EALREADY still in progress, anything else is the failure. On
 * loopback and nearby hosts the handshake is usually over by the time the first call returns, so
 * the tunnel is answered in the same wake-up as its request. */
static int connect_probe(int fd, const np_addr *a, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl = np_sockaddr(a, port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0 || errno == EISCONN)
		return 0;
	return errno == EINTR ? EALREADY : errno;
}

static void dial_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct conn *c = CONN_OF(io, uio);
	int e = connect_probe(c->uio.fd, &c->addrs[c->next_addr - 1], c->dial_port);
	if (e == EALREADY)
		return; /* not yet (an event from before a retry) */
	if (e == 0) {
		connected(c);
		return;
	}
	c->last_dial_errno = e;
	conn_drop_upstream(c);
	dial_next(c);
}

/* Try the checked addresses in order; never a new lookup. */
static void dial_next(struct conn *c)
{
	while (c->next_addr < c->naddrs) {
		const np_addr *a = &c->addrs[c->next_addr++];
		struct sockaddr_storage ss;
		socklen_t sl = np_sockaddr(a, c->dial_port, &ss);
		int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->last_dial_errno = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		snprintf(c->ev.family, sizeof c->ev.family, "%s", a->family == AF_INET ? "inet" : "inet6");
		np_io_init(&c->uio, fd, dial_event);
		int e = connect(fd, (struct sockaddr *)&ss, sl) == 0 ? 0 : errno;
		if (e == EINPROGRESS)
			e = connect_probe(fd, a, c->dial_port);
		if (e == 0) {
			connected(c);
			return;
		}
		if (e == EALREADY) {
			if (np_io_want(c->x->loop, &c->uio, NP_OUT) == 0)
				return;
			e = errno;
		}
		c->last_dial_errno = e;
		conn_drop_upstream(c);
	}
	dial_failed(c);
}

static void dial_timeout(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	if (c->st == C_RESOLVE) {
		snprintf(reason, sizeof reason, "DNS lookup for %.100s timed out", c->ev.target);
		np_resolver_cancel(c->x->res, c->req);
		c->req = NULL;
		fail_502(c, "dns-failure", reason);
		return;
	}
	snprintf(reason, sizeof reason, "connecting to %.100s port %u timed out", c->ev.target, c->ev.port);
	fail_502(c, "upstream-failure", reason);
}
