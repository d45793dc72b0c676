/* relay.c — moving bytes once a request is allowed and the upstream is connected.
 *
 * CONNECT tunnels: splice(2) socket → pipe → socket, so payload never enters user space. A pipe is
 * taken from the pool only while bytes sit in it, so an idle tunnel costs its two sockets and no
 * buffer at all.
 *
 * Absolute-form HTTP: the request head was rewritten (request.c); the body is passed through
 * verbatim while http_body_feed tracks where it ends (Content-Length or chunked), and the response
 * head is parsed for its framing and streamed back as bytes arrive (server-sent events flow at
 * once). Buffers are bounded by max_header_bytes; backpressure stops reading the source when the
 * destination is not writable. One upstream connection per request ("Connection: close"); the
 * client connection is kept alive when both messages were framed and the client did not ask to
 * close. Return convention in this file: GONE means the connection was freed. */
#include "proxy_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define GONE (-1)

void outq_reset(struct outq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->len = q->off = 0;
}

int outq_flush(int fd, struct outq *q, uint64_t *count)
{
	while (q->off < q->len) {
		ssize_t n = send(fd, q->buf + q->off, q->len - q->off, MSG_NOSIGNAL);
		if (n > 0) {
			q->off += (size_t)n;
			if (count)
				*count += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return n < 0 ? -errno : -EPIPE;
	}
	outq_reset(q);
	return 1;
}

static int closed(struct conn *c, const char *reason)
{
	np_audit(c, "allow", c->ev.status, reason);
	conn_close(c);
	return GONE;
}

/* ================================ tunnels ================================ */

/* Returns 0, or -errno when the tunnel must be torn down. */
static int tunnel_pump(struct conn *c, struct relay *r, int src, int dst, struct outq *pre)
{
	r->want_read = r->want_write = false;
	if (pre->len > pre->off) {
		/* early client data counts as bytes up; our own "200" does not count as bytes down */
		int f = outq_flush(dst, pre, r == &c->up ? &r->bytes : NULL);
		if (f < 0)
			return f;
		if (f == 0) {
			r->want_write = true;
			return 0;
		}
	}
	for (int round = 0; round < 16; round++) {
		if (r->pipe_bytes) {
			ssize_t n = splice(r->pipe[0], NULL, dst, NULL, r->pipe_bytes,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				r->pipe_bytes -= (size_t)n;
				r->bytes += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				r->want_write = true;
				return 0;
			}
			return n < 0 ? -errno : -EPIPE;
		}
		if (r->eof) {
			if (!r->shut) {
				shutdown(dst, SHUT_WR);
				r->shut = true;
			}
			np_pipe_put(c->p, r);
			return 0;
		}
		if (r->pipe[0] < 0) {
			int e = np_pipe_get(c->p, r->pipe);
			if (e < 0)
				return e;
		}
		ssize_t n = splice(src, NULL, r->pipe[1], NULL, NP_PIPE_SIZE,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			r->pipe_bytes = (size_t)n;
			c->activity_ms = np_now_ms(c->p);
			continue;
		}
		if (n == 0) {
			r->eof = true;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			r->want_read = true;
			np_pipe_put(c->p, r);
			return 0;
		}
		return -errno;
	}
	/* Fairness: yield to other connections; level-triggered events bring us back. */
	if (r->pipe_bytes)
		r->want_write = true;
	else
		r->want_read = true;
	return 0;
}

static int tunnel_step(struct conn *c, bool up, bool down)
{
	int e = 0;
	if (up)
		e = tunnel_pump(c, &c->up, c->cfd, c->ufd, &c->uq);
	if (!e && down)
		e = tunnel_pump(c, &c->down, c->ufd, c->cfd, &c->cq);
	if (e < 0) {
		char reason[NONO_REASON_MAX];
		snprintf(reason, sizeof reason, "closed: %s", strerror(-e));
		return closed(c, reason);
	}
	if (c->up.eof && c->up.shut && c->down.eof && c->down.shut)
		return closed(c, "closed");
	conn_update(c);
	return 0;
}

void relay_start_tunnel(struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	c->st = C_TUNNEL;
	outq_reset(&c->cq);
	outq_reset(&c->uq);
	if (!(c->cq.buf = malloc(sizeof ok - 1))) {
		closed(c, "closed: out of memory");
		return;
	}
	memcpy(c->cq.buf, ok, sizeof ok - 1);
	c->cq.len = sizeof ok - 1;
	/* Bytes the client sent after the CONNECT head (e.g. an eager TLS ClientHello) go first. */
	if (c->in_len) {
		c->uq.buf = steal_pointer(&c->in);
		c->uq.len = c->in_len;
	} else {
		free(c->in);
		c->in = NULL;
	}
	c->in_len = c->in_cap = c->in_scan = c->in_body = 0;
	tunnel_step(c, true, true);
}

/* ================================ absolute-form HTTP ================================ */

static int http_up(struct conn *c);
static int http_down(struct conn *c);

static int upstream_failed(struct conn *c, const char *what)
{
	char reason[NONO_REASON_MAX];
	if (c->resp_started)
		return closed(c, what);
	snprintf(reason, sizeof reason, "upstream %.100s port %u: %.100s", c->ev.target, c->ev.port, what);
	np_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", "upstream-failure", reason);
	return 0;
}

/* Client → upstream: the rewritten head, then exactly the request body. */
static int http_up(struct conn *c)
{
	struct relay *r = &c->up;
	r->want_read = r->want_write = false;
	int f = outq_flush(c->ufd, &c->uq, &r->bytes);
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
			ssize_t n = send(c->ufd, c->in, c->in_body, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				r->want_write = true;
				return 0;
			}
			if (n <= 0)
				return upstream_failed(c, "write failed");
			memmove(c->in, c->in + n, c->in_len - (size_t)n);
			c->in_len -= (size_t)n;
			c->in_body -= (size_t)n;
			r->bytes += (uint64_t)n;
			c->activity_ms = np_now_ms(c->p);
			continue;
		}
		if (c->req_body.done) {
			c->req_done = true;
			return 0;
		}
		if (c->in_len == c->in_cap) /* cannot happen: unframed bytes only follow a done body */
			return closed(c, "closed: request buffer full");
		ssize_t n = recv(c->cfd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
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
		for (size_t k = 0; k < sizeof hop / sizeof hop[0] && !skip; k++)
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
	if (queue_response_head(c, h) < 0)
		return closed(c, "closed: out of memory");
	c->resp_started = true;
	c->resp_head_done = true;
	rb_consume(c, h->head_len);
	return 0;
}

/* Response complete: audit, drop the upstream, and either close or wait for the next request. */
static int finish_request(struct conn *c)
{
	np_audit(c, "allow", c->ev.status, "closed");
	if (c->close_after || !c->req_done) {
		conn_close(c);
		return GONE;
	}
	if (c->uflags)
		event_del(&c->uev);
	c->uflags = 0;
	close(c->ufd);
	c->ufd = -1;
	free(c->rb);
	c->rb = NULL;
	c->rb_len = c->rb_cap = c->rb_scan = c->rb_body = 0;
	outq_reset(&c->uq);
	c->st = C_HEAD;
	c->in_scan = 0;
	c->in_body = 0;
	c->up = (struct relay){.pipe = {-1, -1}};
	c->down = (struct relay){.pipe = {-1, -1}};
	conn_set_deadline(c, np_now_ms(c->p) + c->p->cfg->lim.header_timeout_ms);
	conn_update(c);
	if (c->in_len)
		conn_on_client_head(c); /* a pipelined request is already here */
	return GONE; /* c may be gone: the caller must not touch it */
}

/* Upstream → client: response heads (interim ones too), then the body as it arrives. */
static int http_down(struct conn *c)
{
	struct relay *r = &c->down;
	r->want_read = r->want_write = false;
	for (;;) {
		int f = outq_flush(c->cfd, &c->cq, &r->bytes);
		if (f < 0)
			return closed(c, "closed: client went away during the response");
		if (f == 0) {
			r->want_write = true;
			return 0;
		}
		if (c->rb_body) {
			ssize_t n = send(c->cfd, c->rb, c->rb_body, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				r->want_write = true;
				return 0;
			}
			if (n <= 0)
				return closed(c, "closed: client went away during the response");
			c->rb_body -= (size_t)n;
			rb_consume(c, (size_t)n);
			r->bytes += (uint64_t)n;
			c->activity_ms = np_now_ms(c->p);
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
		ssize_t n = recv(c->ufd, c->rb + c->rb_len, c->rb_cap - c->rb_len, 0);
		if (n > 0) {
			c->rb_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			r->want_read = true;
			return 0;
		}
		/* EOF or error from the upstream */
		if (!c->resp_head_done)
			return upstream_failed(c, "closed the connection before a complete response head");
		if (c->resp_body.kind == HTTP_BODY_UNTIL_CLOSE && n == 0) {
			c->resp_body.done = true;
			continue;
		}
		return closed(c, "closed: upstream ended the response early");
	}
}

void relay_start_http(struct conn *c)
{
	size_t cap = c->p->cfg->lim.max_header_bytes;
	c->st = C_HTTP;
	c->req_done = c->resp_head_done = c->resp_started = false;
	c->rb_cap = cap < 16384 ? 16384 : cap;
	c->rb = malloc(c->rb_cap);
	if (!c->rb) {
		closed(c, "closed: out of memory");
		return;
	}
	c->rb_len = c->rb_scan = c->rb_body = 0;
	if (http_up(c) == GONE || c->st != C_HTTP)
		return;
	if (http_down(c) == GONE || c->st != C_HTTP)
		return;
	conn_update(c);
}

/* One step for either side: `up` = client->upstream can move (client readable or upstream
 * writable), `down` = upstream->client can move. */
static void relay_step(struct conn *c, bool up, bool down)
{
	if (c->st == C_TUNNEL) {
		tunnel_step(c, up, down);
		return;
	}
	if (up && (http_up(c) == GONE || c->st != C_HTTP))
		return;
	if (down && (http_down(c) == GONE || c->st != C_HTTP))
		return;
	conn_update(c);
}

void relay_client_event(struct conn *c, short what)
{
	relay_step(c, what & EV_READ, what & EV_WRITE);
}

void relay_upstream_event(struct conn *c, short what)
{
	relay_step(c, what & EV_WRITE, what & EV_READ);
}
