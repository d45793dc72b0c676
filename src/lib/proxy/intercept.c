/* intercept.c — TLS interception of an allowed CONNECT to a host a route serves.
 *
 * Order, once the policy has passed and the upstream TCP connection is up (request.c):
 *   1. TLS to the real upstream: SNI and name (or IP) verified against the system trust store
 *      (intercept_ca.c). A failure is answered to the CONNECT itself, "502 … upstream certificate
 *      not trusted: …" (X-Nono-Denial: upstream-tls), and audited — the client never sees a
 *      certificate for a host we could not verify.
 *   2. "200 Connection established" (or the SOCKS5 success reply), then TLS with the client on a
 *      leaf minted by the session CA for the CONNECT's host (cached per host).
 *   3. The relay. Client → upstream is parsed as HTTP/1.1: every request head goes through the route
 *      engine's boundary (np_intercept_hooks.request: inject, strip, endpoint rules; the built-in
 *      pass-through relays it unchanged) and is audited with mode "intercept", method and path; the
 *      body that follows is relayed as its head frames it (Content-Length or chunked; a refused
 *      framing is answered 400). Upstream → client is streamed as is. A refused request is answered
 *      inside TLS and the connection closes after it.
 * Hosts without a route never get here: tunnel.c relays their bytes untouched.
 *
 * Both TLS sessions run on the non-blocking sockets themselves (SSL_set_fd); each SSL call that
 * would block records whether it waits for readable or writable, and the connection's epoll
 * interest is exactly those waits. The OpenSSL error queue is cleared before every call (it is per
 * thread and shared by the loop's connections). A client that sends bytes before the CONNECT answer
 * (an eager ClientHello) is refused with 502: those bytes were read by the proxy and cannot be
 * handed to OpenSSL's socket reader. */
#include "intercept.h"
#include "route.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#define TLS_BUF (16 * 1024)

enum { T_HANDSHAKE, T_RELAY };

struct np_tls {
	SSL *cs, *us;          /* client side (we serve the leaf), upstream side */
	int phase;
	bool cs_done, us_done, us_failed; /* handshakes */
	const void *route;
	const struct np_intercept_hooks *hooks; /* the route engine's, or the built-in pass-through */
	uint32_t cs_want, us_want;
	/* client → upstream: decrypted bytes not handled yet, and what goes upstream next */
	char *in;
	size_t in_len, in_cap, scan;
	bool in_body;
	http_body body;
	struct outq out;
	bool up_eof, up_shut;
	/* upstream → client, streamed */
	char dbuf[TLS_BUF];
	size_t dlen, doff;
	bool down_eof, down_shut;
	struct outq deny;      /* an answer to a refused request: sent, then the connection closes */
};

/* ---- the built-in pass-through (no route engine) ---- */

static const void *builtin_route(const struct nono_proxy_config *cfg, const char *host, uint16_t port)
{
	for (size_t i = 0; i < cfg->nintercept; i++)
		if (np_pattern_match(&cfg->intercept[i], host, port))
			return cfg;
	return NULL;
}

static int builtin_request(const struct nono_proxy_config *cfg, const void *route, const http_head *h, const char *raw, char **out,
			   size_t *out_len, char *reason, size_t reason_cap, nono_audit_event *ev)
{
	(void)cfg;
	(void)route;
	(void)reason;
	(void)reason_cap;
	(void)ev;
	if (!(*out = malloc(h->head_len)))
		return 503;
	memcpy(*out, raw, h->head_len);
	*out_len = h->head_len;
	return 0;
}

static const struct np_intercept_hooks builtin = {builtin_route, builtin_request, NULL};

static const struct np_intercept_hooks *hooks(const struct conn *c)
{
	return c->tls->hooks;
}

bool intercept_wanted(struct conn *c)
{
	const struct nono_proxy_config *cfg = c->x->cfg;
	/* The routes' hooks (route_icpt.c) unless a test installed its own. */
	const struct np_intercept_hooks *hk = cfg->hooks ? cfg->hooks : cfg->nroutes ? &np_route_intercept_hooks : NULL;
	const void *route = NULL;
	if (!cfg->icpt)
		return false;
	if (hk)
		route = hk->route(cfg, c->ev.target, c->ev.port);
	if (!route && cfg->nintercept) {
		hk = &builtin;
		route = hk->route(cfg, c->ev.target, c->ev.port);
	}
	if (!route)
		return false;
	if (!(c->tls = calloc(1, sizeof *c->tls)))
		return false; /* no memory: relayed untouched, which is what an unrouted host gets */
	c->tls->route = route;
	c->tls->hooks = hk;
	return true;
}

/* ---- SSL calls: > 0 done/bytes, 0 would block (the wait recorded), -1 orderly EOF, -2 error ---- */

static int ssl_result(SSL *s, int r, uint32_t *want)
{
	if (r > 0)
		return r;
	switch (SSL_get_error(s, r)) {
	case SSL_ERROR_WANT_READ: *want |= NP_IN; return 0;
	case SSL_ERROR_WANT_WRITE: *want |= NP_OUT; return 0;
	case SSL_ERROR_ZERO_RETURN: return -1;
	default: return -2;
	}
}

static int tls_read(SSL *s, void *buf, size_t len, uint32_t *want)
{
	ERR_clear_error();
	return ssl_result(s, SSL_read(s, buf, len > INT32_MAX ? INT32_MAX : (int)len), want);
}

static int tls_write(SSL *s, const void *buf, size_t len, uint32_t *want)
{
	ERR_clear_error();
	return ssl_result(s, SSL_write(s, buf, len > INT32_MAX ? INT32_MAX : (int)len), want);
}

static int tls_handshake(SSL *s, uint32_t *want)
{
	ERR_clear_error();
	return ssl_result(s, SSL_do_handshake(s), want);
}

static void tls_free(struct conn *c)
{
	struct np_tls *t = c->tls;
	if (!t)
		return;
	SSL_free(t->cs); /* socket BIOs without BIO_CLOSE: the descriptors stay the connection's */
	SSL_free(t->us);
	free(t->in);
	outq_reset(&t->out);
	outq_reset(&t->deny);
	free(t);
	c->tls = NULL;
}

static void set_interest(struct conn *c)
{
	(void)np_io_want(c->x->loop, &c->cio, c->tls->cs_want);
	(void)np_io_want(c->x->loop, &c->uio, c->tls->us_want);
}

static int closed(struct conn *c, const char *reason)
{
	conn_audit(c, "allow", c->ev.status, reason);
	conn_close(c);
	return -1;
}

static void ssl_reason(char *buf, size_t cap, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char es[160] = "";
	if (e)
		ERR_error_string_n(e, es, sizeof es);
	snprintf(buf, cap, "%s%s%.160s", what, es[0] ? ": " : "", es);
	ERR_clear_error();
}

/* ---- client → upstream: request heads through the route boundary, bodies as framed ---- */

/* A refused request: the answer waits in t->deny for the client; nothing more is read from it. */
static int refuse(struct conn *c, int status, const char *code, const char *reason, nono_audit_event *ev)
{
	char head[NONO_REASON_MAX + 256];
	ev->timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev->decision, sizeof ev->decision, "deny");
	ev->status = status;
	snprintf(ev->reason, sizeof ev->reason, "%s", reason);
	np_ctx_audit(c->x, ev);
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d Refused by nono\r\nX-Nono-Denial: %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
			 status, code, strlen(ev->reason) + 1, ev->reason);
	if (outq_set(&c->tls->deny, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : 0) < 0)
		return closed(c, "closed: out of memory");
	return 1;
}

static const char *refusal_code(int status)
{
	return status == 400 ? "bad-request" : status == 401 ? "credential-required"
	       : status == 503 ? "out-of-memory" : "endpoint-denied";
}

static void consume(struct np_tls *t, size_t n)
{
	memmove(t->in, t->in + n, t->in_len - n);
	t->in_len -= n;
}

static int handle_head(struct conn *c)
{
	struct np_tls *t = c->tls;
	http_head h;
	const char *why = "";
	nono_audit_event ev = c->ev;
	snprintf(ev.source, sizeof ev.source, "proxy");
	snprintf(ev.mode, sizeof ev.mode, "intercept");
	ev.bytes_up = ev.bytes_down = 0;
	int r = http_parse_request(t->in, t->in_len, &t->scan, &h, &why);
	if (r == 0 && t->in_len < c->x->cfg->lim.max_header_bytes)
		return 0;
	if (r <= 0)
		return refuse(c, r == 0 || r == -E2BIG ? 431 : 400, "bad-request",
			      r == 0 ? "request head too large" : why, &ev);
	snprintf(ev.method, sizeof ev.method, "%.*s", (int)h.method_len, h.method);
	snprintf(ev.path, sizeof ev.path, "%.*s", (int)h.target_len, h.target);
	if (http_request_body(&h, &t->body, &why) < 0)
		return refuse(c, 400, "bad-request", why, &ev);
	char reason[NONO_REASON_MAX] = "", *out = NULL;
	size_t out_len = 0;
	int st = hooks(c)->request(c->x->cfg, t->route, &h, t->in, &out, &out_len, reason, sizeof reason, &ev);
	if (st != 0)
		return refuse(c, st, refusal_code(st), reason[0] ? reason : "refused by the route", &ev);
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.decision, sizeof ev.decision, "allow");
	snprintf(ev.reason, sizeof ev.reason, "allowed");
	ev.status = 0;
	np_ctx_audit(c->x, &ev);
	t->out.buf = out;
	t->out.len = out_len;
	t->out.off = 0;
	consume(t, h.head_len);
	t->scan = 0;
	t->in_body = t->body.kind != HTTP_BODY_NONE && !t->body.done;
	return 1;
}

static int handle_body(struct conn *c)
{
	struct np_tls *t = c->tls;
	long k = http_body_feed(&t->body, t->in, t->in_len);
	if (k < 0) {
		nono_audit_event ev = c->ev;
		snprintf(ev.mode, sizeof ev.mode, "intercept");
		return refuse(c, 400, "bad-request", "malformed chunked request body", &ev);
	}
	if (k > 0 && outq_set(&t->out, t->in, (size_t)k) < 0)
		return closed(c, "closed: out of memory");
	consume(t, (size_t)k);
	if (t->body.done)
		t->in_body = false;
	return k > 0 || !t->in_body;
}

/* 1 progress, 0 blocked (waits recorded), -1 the connection is gone. */
static int pump_up(struct conn *c)
{
	struct np_tls *t = c->tls;
	if (t->out.off < t->out.len) {
		int r = tls_write(t->us, t->out.buf + t->out.off, t->out.len - t->out.off, &t->us_want);
		if (r < 0)
			return closed(c, "closed: TLS write to the upstream failed");
		t->out.off += (size_t)r;
		c->up.bytes += (uint64_t)r;
		if (t->out.off == t->out.len)
			outq_reset(&t->out);
		return r > 0;
	}
	if (t->up_eof) {
		if (t->up_shut)
			return 0;
		ERR_clear_error();
		(void)SSL_shutdown(t->us); /* our close_notify; the upstream's answer is read below */
		t->up_shut = true;
		return 1;
	}
	if (t->deny.buf)
		return 0; /* a refused request: nothing more is read from the client */
	if (t->in_len > 0) {
		int r = t->in_body ? handle_body(c) : handle_head(c);
		if (r != 0)
			return r;
	}
	if (t->in_cap - t->in_len < TLS_BUF) {
		size_t ncap = t->in_len + TLS_BUF;
		char *n = realloc(t->in, ncap);
		if (!n)
			return closed(c, "closed: out of memory");
		t->in = n;
		t->in_cap = ncap;
	}
	int r = tls_read(t->cs, t->in + t->in_len, t->in_cap - t->in_len, &t->cs_want);
	if (r == -2)
		return closed(c, "closed: TLS read from the client failed");
	if (r == -1) {
		t->up_eof = true;
		return 1;
	}
	t->in_len += (size_t)r;
	return r > 0;
}

/* ---- upstream → client, streamed ---- */

static int pump_down(struct conn *c)
{
	struct np_tls *t = c->tls;
	if (t->doff < t->dlen) {
		int r = tls_write(t->cs, t->dbuf + t->doff, t->dlen - t->doff, &t->cs_want);
		if (r < 0)
			return closed(c, "closed: TLS write to the client failed");
		t->doff += (size_t)r;
		c->down.bytes += (uint64_t)r;
		if (t->doff == t->dlen)
			t->doff = t->dlen = 0;
		return r > 0;
	}
	if (t->deny.buf) {
		int r = tls_write(t->cs, t->deny.buf + t->deny.off, t->deny.len - t->deny.off, &t->cs_want);
		if (r > 0 && (t->deny.off += (size_t)r) < t->deny.len)
			return 1;
		if (r == 0)
			return 0;
		ERR_clear_error();
		(void)SSL_shutdown(t->cs);
		/* The answer and close_notify are in the socket: what the client still sends is
		 * drained (conn_closing) so that our close is a FIN, not an RST that could destroy the
		 * answer before the client reads it. */
		conn_audit(c, "allow", c->ev.status,
			   t->us_failed ? "closed: upstream TLS failed" : "closed: request refused");
		conn_closing(c);
		return -1;
	}
	if (t->down_eof) {
		if (t->down_shut)
			return 0;
		ERR_clear_error();
		(void)SSL_shutdown(t->cs);
		t->down_shut = true;
		return 1;
	}
	int r = tls_read(t->us, t->dbuf, sizeof t->dbuf, &t->us_want);
	if (r == -2)
		return closed(c, "closed: TLS read from the upstream failed");
	if (r == -1) {
		t->down_eof = true;
		return 1;
	}
	t->dlen = (size_t)r;
	return r > 0;
}

/* Move bytes until neither direction can, or for NP_TLS_ROUNDS rounds: then yield to the loop's
 * other connections. Data may wait inside OpenSSL or our buffers where epoll cannot see it, so a
 * yield asks for both directions on both sockets: a writable socket brings us back at once, and
 * the next pass records the real waits again. */
#define NP_TLS_ROUNDS 64
static void relay(struct conn *c)
{
	struct np_tls *t = c->tls;
	for (int round = 0;; round++) {
		t->cs_want = t->us_want = 0;
		int up = pump_up(c);
		if (up < 0)
			return;
		int down = pump_down(c);
		if (down < 0)
			return;
		if (up || down)
			c->activity_ms = conn_now(c);
		if (t->up_shut && t->down_shut && !t->out.buf && t->dlen == 0) {
			closed(c, "closed");
			return;
		}
		if (!up && !down)
			break;
		if (round == NP_TLS_ROUNDS) {
			t->cs_want = t->us_want = NP_IN | NP_OUT;
			break;
		}
	}
	set_interest(c);
}

/* ---- handshakes: both at once, the client's on a leaf for the CONNECT's host ---- */

static void upstream_failed(struct conn *c)
{
	struct np_tls *t = c->tls;
	char reason[NONO_REASON_MAX];
	long v = SSL_get_verify_result(t->us);
	if (v != X509_V_OK) {
		snprintf(reason, sizeof reason, "upstream %.100s certificate not trusted: %s", c->ev.target,
			 X509_verify_cert_error_string(v));
		ERR_clear_error();
	} else {
		ssl_reason(reason, sizeof reason, "TLS handshake with the upstream failed");
	}
	conn_audit(c, "allow", 502, reason);
	t->us_failed = true;
	t->us_want = 0;
	/* Answered inside TLS once the client's handshake is done (refuse: nothing is read from it
	 * any more, the upstream is never touched again). */
	char head[NONO_REASON_MAX + 256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 502 Bad Gateway\r\nX-Nono-Denial: upstream-tls\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
			 strlen(reason) + 1, reason);
	if (outq_set(&t->deny, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : 0) < 0)
		outq_reset(&t->deny);
}

/* intercept_ca.c's ALPN callback refused a client whose ALPN list lacks http/1.1 (h2 only): the
 * handshake ended with the no_application_protocol alert. A refusal of ours, audited as one. */
static void alpn_refused(struct conn *c)
{
	ERR_clear_error();
	conn_audit(c, "deny", c->ev.status,
		   "TLS handshake with the client refused: its ALPN list lacks http/1.1 (h2 only?); "
		   "the proxy speaks HTTP/1.1 inside an intercepted connection");
	conn_close(c);
}

static void step(struct conn *c)
{
	struct np_tls *t = c->tls;
	char reason[NONO_REASON_MAX];
	t->cs_want = t->us_want = 0;
	if (t->phase == T_HANDSHAKE) {
		if (!t->us_done && !t->us_failed) {
			int r = tls_handshake(t->us, &t->us_want);
			if (r > 0) {
				t->us_done = true;
				conn_audit(c, "allow", 200, SSL_session_reused(t->us)
								? "allowed; TLS intercepted (upstream session resumed)"
								: "allowed; TLS intercepted");
			} else if (r < 0) {
				upstream_failed(c);
				if (!t->deny.buf) {
					closed(c, "closed: out of memory");
					return;
				}
			}
		}
		if (!t->cs_done) {
			int r = tls_handshake(t->cs, &t->cs_want);
			if (r < 0 && ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_NO_APPLICATION_PROTOCOL) {
				alpn_refused(c);
				return;
			}
			if (r < 0) {
				ssl_reason(reason, sizeof reason,
					   "closed: TLS handshake with the client failed (does it trust the "
					   "session CA?)");
				closed(c, reason);
				return;
			}
			t->cs_done = r > 0;
		}
		if (!t->cs_done || (!t->us_done && !t->us_failed)) {
			set_interest(c);
			return;
		}
		t->phase = T_RELAY;
		c->activity_ms = conn_now(c);
		conn_set_deadline(c, c->activity_ms + c->x->cfg->lim.idle_timeout_ms);
	}
	relay(c);
}

static void client_event(struct np_io *io, uint32_t what)
{
	(void)what;
	step(CONN_OF(io, cio));
}

static void upstream_event(struct np_io *io, uint32_t what)
{
	(void)what;
	step(CONN_OF(io, uio));
}

static void idle_timeout(struct conn *c)
{
	int64_t at = c->activity_ms + c->x->cfg->lim.idle_timeout_ms;
	if (c->tls->phase == T_RELAY && conn_now(c) < at) {
		conn_set_deadline(c, at);
		return;
	}
	closed(c, c->tls->phase == T_RELAY ? "closed: idle timeout" : "closed: TLS handshake timed out");
}

/* The SSL objects for both sides; 0, or -1 with *why. */
static int tls_new(struct conn *c, const char **why)
{
	struct np_tls *t = c->tls;
	char host[64];
	np_addr a;
	SSL_CTX *leaf = np_intercept_leaf(c->x->cfg->icpt, c->ev.target, why);
	if (!leaf)
		return -1;
	t->cs = SSL_new(leaf);
	SSL_CTX_free(leaf); /* the SSL holds its own reference */
	SSL_CTX *uctx = hooks(c)->upstream_ctx ? hooks(c)->upstream_ctx(t->route) : NULL;
	t->us = SSL_new(uctx ? uctx : np_intercept_upstream_ctx(c->x->cfg->icpt));
	if (!t->cs || !t->us || !SSL_set_fd(t->cs, c->cio.fd) || !SSL_set_fd(t->us, c->uio.fd)) {
		*why = "out of memory";
		return -1;
	}
	if (np_parse_ip_literal(c->ev.target, &a) == 1) {
		np_addr_format(&a, host, sizeof host);
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->us), host);
	} else {
		SSL_set_tlsext_host_name(t->us, c->ev.target);
		SSL_set1_host(t->us, c->ev.target);
	}
	SSL_set_connect_state(t->us);
	SSL_set_accept_state(t->cs);
	if (np_intercept_resume(c->x->cfg->icpt, t->us, c->ev.target, c->ev.port) < 0) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

void intercept_start(struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	static const char socks_ok[10] = {5, 0, 0, 1};
	const char *why = "";
	c->on_free = tls_free;
	if (c->in_len)
		why = "the client sent data before the CONNECT answer; an intercepted host needs a client "
		      "that waits for it";
	if (why[0] || tls_new(c, &why) < 0) {
		conn_audit(c, "allow", 502, why);
		conn_answer(c, 502, "Bad Gateway", "upstream-tls", why);
		return;
	}
	free(c->in);
	c->in = NULL;
	c->in_cap = c->in_scan = c->in_body = 0;
	/* Answered at once: the two handshakes then run side by side. A fresh socket that cannot take
	 * these few bytes has a peer that is gone. */
	const char *msg = c->socks ? socks_ok : ok;
	size_t len = c->socks ? sizeof socks_ok : sizeof ok - 1;
	if (np_send_some(c->cio.fd, msg, len) != (ssize_t)len) {
		closed(c, "closed: the client went away");
		return;
	}
	c->tls->phase = T_HANDSHAKE;
	c->st = C_TUNNEL;
	c->cio.fn = client_event;
	c->uio.fn = upstream_event;
	c->on_timeout = idle_timeout;
	c->activity_ms = conn_now(c);
	/* Both handshakes within the header timeout; then the tunnel's idle timeout. */
	conn_set_deadline(c, c->activity_ms + c->x->cfg->lim.header_timeout_ms);
	step(c);
}
