/* forward.c — one absolute-form (plain HTTP) request once its upstream is connected. The request
 * head was rewritten by request.c; the body is passed through verbatim while http_body_feed tracks
 * where it ends (Content-Length or chunked), and the response head is parsed for its framing and
 * streamed back as bytes arrive (server-sent events flow at once). Buffers are bounded by
 * max_header_bytes; backpressure stops reading the source when the destination is not writable.
 * One upstream connection per request ("Connection: close"); the client connection is kept alive
 * when both messages were framed and the client did not ask to close, and is then handed back
 * through c->on_reuse. Return convention in this file: GONE means the connection was freed. */
#include "relay.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define GONE (-1)

static int closed(struct conn *c, const char *reason)
{
	conn_audit(c, "allow", c->ev.status, reason);
	conn_close(c);
	return GONE;
}

static int http_up(struct conn *c);
static int http_down(struct conn *c);

static int upstream_failed(struct conn *c, const char *what)
{
	char reason[NONO_REASON_MAX];
	if (c->resp_started)
		return closed(c, what);
	const char *tls = up_tls_error(c); /* e.g. the server's alert: "tlsv13 alert certificate required" */
	snprintf(reason, sizeof reason, "upstream %.80s port %u: %.60s%s%.60s", c->ev.target, c->ev.port, what,
		 tls ? ": TLS: " : "", tls ? tls : "");
	conn_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", "upstream-failure", reason);
	return 0;
}

/* Client → upstream: the rewritten head, then exactly the request body. */
static int http_up(struct conn *c)
{
	struct relay *r = &c->up;
	r->want_read = r->want_write = false;
	int f = up_flush(c, &c->uq, &r->bytes);
	if (f < 0)
		return upstream_failed(c, "write failed");
	if (f == 0) {
		r->want_write = true;
		return 0;
	}
	for (;;) {
		if (!c->req_body.done && c->in_body < c->in_len) {
			long k = http_body_feed(&c->req_body, c->in + c->in_body, c->in_len - c->in_body);
			if (k < 0)
				return closed(c, "closed: malformed chunked request body");
			c->in_body += (size_t)k;
		}
		if (c->in_body) {
			ssize_t n = up_send(c, c->in, c->in_body);
			if (n == 0) {
				r->want_write = true;
				return 0;
			}
			if (n < 0)
				return upstream_failed(c, "write failed");
			memmove(c->in, c->in + n, c->in_len - (size_t)n);
			c->in_len -= (size_t)n;
			c->in_body -= (size_t)n;
			r->bytes += (uint64_t)n;
			c->activity_ms = conn_now(c);
			continue;
		}
		if (c->req_body.done) {
			c->req_done = true;
			return 0;
		}
		if (c->in_len == c->in_cap) /* cannot happen: unframed bytes only follow a done body */
			return closed(c, "closed: request buffer full");
		int got = np_recv_more(c->cio.fd, c->in, &c->in_len, c->in_cap);
		if (got > 0)
			continue;
		if (got == 0) {
			r->want_read = true;
			return 0;
		}
		return closed(c, "closed: client went away during the request body");
	}
}

/* The response head for the client: status line verbatim, hop-by-hop fields dropped. */
static int queue_response_head(struct conn *c, const http_head *h)
{
	static const char *const hop[] = {"Connection", "Keep-Alive", "Proxy-Connection",
					  "Proxy-Authenticate", "Upgrade"};
	char *b = malloc(h->head_len + 32);
	if (!b)
		return -ENOMEM;
	const char *line = c->rb + h->skipped;
	const char *eol = memchr(line, '\r', h->head_len - h->skipped);
	size_t len = (size_t)(eol - line) + 2;
	memcpy(b, line, len);
	for (size_t i = 0; i < h->nheaders; i++) {
		const http_header *hd = &h->headers[i];
		bool skip = false;
		for (size_t k = 0; k < N_ELEMENTS(hop) && !skip; k++)
			skip = http_token_eq(hd->name, hd->name_len, hop[k]);
		if (skip)
			continue;
		/* copy the line as received (name through CRLF) */
		const char *ls = hd->name, *le = memchr(hd->value, '\r', (size_t)(c->rb + h->head_len - hd->value));
		memcpy(b + len, ls, (size_t)(le - ls) + 2);
		len += (size_t)(le - ls) + 2;
	}
	if (c->close_after) {
		memcpy(b + len, "Connection: close\r\n", 19);
		len += 19;
	}
	memcpy(b + len, "\r\n", 2);
	len += 2;
	outq_reset(&c->cq);
	c->cq.buf = b;
	c->cq.len = len;
	return 0;
}

static void rb_consume(struct conn *c, size_t n)
{
	memmove(c->rb, c->rb + n, c->rb_len - n);
	c->rb_len -= n;
	c->rb_scan = 0;
}

/* A complete response head is in c->rb. Returns 0 or GONE. */
static int on_response_head(struct conn *c, const http_head *h)
{
	const char *why = "";
	if (h->status == 101)
		return upstream_failed(c, "switched protocols without being asked");
	if (h->status < 200) {
		/* Interim (100 Continue, 103 Early Hints): forwarded to HTTP/1.1 clients as is. */
		if (!c->close_after) {
			outq_reset(&c->cq);
			if (!(c->cq.buf = malloc(h->head_len)))
				return closed(c, "closed: out of memory");
			memcpy(c->cq.buf, c->rb, h->head_len);
			c->cq.len = h->head_len;
		}
		rb_consume(c, h->head_len);
		return 0;
	}
	if (http_response_body(h, c->ev.method, strlen(c->ev.method), &c->resp_body, &why) < 0)
		return upstream_failed(c, why);
	c->ev.status = h->status;
	if (c->resp_body.kind == HTTP_BODY_UNTIL_CLOSE)
		c->close_after = true;
	c->up_keep = h->version_minor >= 1 && c->resp_body.kind != HTTP_BODY_UNTIL_CLOSE;
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, "close"))
			c->up_keep = false;
	if (queue_response_head(c, h) < 0)
		return closed(c, "closed: out of memory");
	c->resp_started = true;
	c->resp_head_done = true;
	rb_consume(c, h->head_len);
	return 0;
}

/* Response complete: audit, drop the upstream, and either close or wait for the next request. */
/* The next request of a kept-alive connection starts from the loop (a timer due at once), never
 * from inside the call chain of the one that just finished: with an upstream that answers at once
 * and a client that pipelines, read_head → dial → forward → finish_request → read_head … would
 * otherwise recurse once per queued request until the thread's stack ran out (review 2026-12-04,
 * proxy F1). */
static void reuse_from_loop(struct conn *c)
{
	c->on_reuse(c); /* reads a pipelined request that is already here */
}

static int finish_request(struct conn *c)
{
	conn_audit(c, "allow", c->ev.status, "closed");
	if (c->up_done && c->req_done)
		c->up_done(c); /* may take the upstream connection for the next request */
	if (c->close_after || !c->req_done) {
		conn_close(c);
		return GONE;
	}
	conn_drop_upstream(c);
	free(c->rb);
	c->rb = NULL;
	c->rb_len = c->rb_cap = c->rb_scan = c->rb_body = 0;
	outq_reset(&c->uq);
	c->up = (struct relay){.pipe = {-1, -1}};
	c->down = (struct relay){.pipe = {-1, -1}};
	(void)np_io_want(c->x->loop, &c->cio, 0); /* nothing until the next request starts */
	c->on_timeout = reuse_from_loop;
	if (np_timer_set(c->x->loop, &c->timer, conn_now(c)) < 0)
		conn_close(c); /* no memory for the timer: no way to come back to it */
	return GONE; /* c may be gone: the caller must not touch it */
}

/* The response head and the body bytes that arrived with it, in one send: a small answer reaches
 * the client in one segment and wakes it once. Sent apart (head, then body) the client woke twice:
 * a third of a routed keep-alive request's added latency on the team machine (bench_routes).
 * 1 progress, 0 would block, -1 the client is gone. */
static int send_head_with_body(struct conn *c, struct relay *r)
{
	struct iovec iov[2] = {{c->cq.buf + c->cq.off, c->cq.len - c->cq.off}, {c->rb, c->rb_body}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;
	do
		n = sendmsg(c->cio.fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	size_t k = (size_t)n, head = iov[0].iov_len;
	r->bytes += k;
	c->activity_ms = conn_now(c);
	if (k < head) {
		c->cq.off += k;
		return 1;
	}
	outq_reset(&c->cq);
	c->rb_body -= k - head;
	rb_consume(c, k - head);
	return 1;
}

/* Upstream → client: response heads (interim ones too), then the body as it arrives. */
static int http_down(struct conn *c)
{
	struct relay *r = &c->down;
	r->want_read = r->want_write = false;
	for (;;) {
		if (c->cq.buf && c->resp_head_done) { /* the final head waits: join the body to it */
			if (c->rb_len > c->rb_body) {
				long k = http_body_feed(&c->resp_body, c->rb + c->rb_body, c->rb_len - c->rb_body);
				if (k < 0)
					return closed(c, "closed: malformed chunked response body");
				c->rb_body += (size_t)k;
			}
			int s = c->rb_body ? send_head_with_body(c, r) : 2;
			if (s < 0)
				return closed(c, "closed: client went away during the response");
			if (s == 0) {
				r->want_write = true;
				return 0;
			}
			if (s == 1)
				continue;
		}
		int f = outq_flush(c->cio.fd, &c->cq, &r->bytes);
		if (f < 0)
			return closed(c, "closed: client went away during the response");
		if (f == 0) {
			r->want_write = true;
			return 0;
		}
		if (c->rb_body) {
			ssize_t n = np_send_some(c->cio.fd, c->rb, c->rb_body);
			if (n == 0) {
				r->want_write = true;
				return 0;
			}
			if (n < 0)
				return closed(c, "closed: client went away during the response");
			c->rb_body -= (size_t)n;
			rb_consume(c, (size_t)n);
			r->bytes += (uint64_t)n;
			c->activity_ms = conn_now(c);
			continue;
		}
		if (c->resp_head_done && c->resp_body.done)
			return finish_request(c);
		if (!c->resp_head_done && c->rb_len) {
			http_head h;
			const char *why = "";
			int pr = http_parse_response(c->rb, c->rb_len, &c->rb_scan, &h, &why);
			if (pr < 0)
				return upstream_failed(c, why);
			if (pr == 1) {
				if (on_response_head(c, &h) == GONE)
					return GONE;
				if (c->st != C_HTTP)
					return 0;
				continue;
			}
			if (c->rb_len == c->rb_cap)
				return upstream_failed(c, "response head too large");
		}
		if (c->resp_head_done && c->rb_len > c->rb_body) {
			long k = http_body_feed(&c->resp_body, c->rb + c->rb_body, c->rb_len - c->rb_body);
			if (k < 0)
				return closed(c, "closed: malformed chunked response body");
			c->rb_body += (size_t)k;
			if (k > 0 || c->resp_body.done)
				continue;
		}
		if (c->rb_len == c->rb_cap) /* bytes after a complete body: the upstream misbehaves */
			return closed(c, "closed: data after the response body");
		int got = up_recv(c, c->rb, &c->rb_len, c->rb_cap);
		if (got > 0) {
			/* TLS hands out one record (≤ 16 KiB) a call: while OpenSSL already holds more of
			 * the response (read ahead), take it too, so that one send carries several. */
			while (c->ssl && c->rb_cap - c->rb_len >= 16384 && SSL_has_pending(c->ssl) &&
			       up_recv(c, c->rb, &c->rb_len, c->rb_cap) > 0)
				;
			continue;
		}
		if (got == 0) {
			r->want_read = true;
			return 0;
		}
		/* EOF or error from the upstream */
		if (!c->resp_head_done)
			return upstream_failed(c, "closed the connection before a complete response head");
		if (c->resp_body.kind == HTTP_BODY_UNTIL_CLOSE && got == -1) {
			c->resp_body.done = true;
			continue;
		}
		return closed(c, "closed: upstream ended the response early");
	}
}

/* One step for either side: `up` = client->upstream can move (client readable or upstream
 * writable), `down` = upstream->client can move. */
static void step(struct conn *c, bool up, bool down)
{
	c->tls_want = 0;
	if (up && (http_up(c) == GONE || c->st != C_HTTP))
		return;
	if (down && (http_down(c) == GONE || c->st != C_HTTP))
		return;
	conn_want_relay(c);
}

static void client_event(struct np_io *io, uint32_t what)
{
	step(CONN_OF(io, cio), what & (NP_IN | EPOLLERR | EPOLLHUP), what & NP_OUT);
}

static void upstream_event(struct np_io *io, uint32_t what)
{
	struct conn *c = CONN_OF(io, uio);
	if (c->tls_want) { /* TLS waited for this event on behalf of either direction */
		step(c, true, true);
		return;
	}
	step(c, what & NP_OUT, what & (NP_IN | EPOLLERR | EPOLLHUP));
}

static void forward_timeout(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	int64_t at = c->activity_ms + c->x->cfg->lim.idle_timeout_ms;
	if (conn_now(c) < at) {
		conn_set_deadline(c, at);
		return;
	}
	if (c->resp_started) {
		closed(c, "closed: idle timeout");
		return;
	}
	snprintf(reason, sizeof reason, "no response from %.100s port %u within %u ms", c->ev.target,
		 c->ev.port, c->x->cfg->lim.idle_timeout_ms);
	conn_audit(c, "allow", 504, reason);
	conn_answer(c, 504, "Gateway Timeout", "upstream-timeout", reason);
}

void forward_start(struct conn *c)
{
	size_t cap = c->x->cfg->lim.max_header_bytes;
	c->st = C_HTTP;
	c->cio.fn = client_event;
	c->uio.fn = upstream_event;
	c->on_timeout = forward_timeout;
	conn_set_deadline(c, c->activity_ms + c->x->cfg->lim.idle_timeout_ms);
	c->req_done = c->resp_head_done = c->resp_started = false;
	c->rb_cap = cap < 16384 ? 16384 : cap;
	c->rb = malloc(c->rb_cap);
	if (!c->rb) {
		closed(c, "closed: out of memory");
		return;
	}
	c->rb_len = c->rb_scan = c->rb_body = 0;
	step(c, true, true);
}
