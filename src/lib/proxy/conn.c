/* conn.c — one client connection's record and what every protocol part does with it: create and
 * free, deadlines, audit events, the proxy's own answers (and the linger after them), socket
 * interest for the relays, the splice pipe pool and the small output queues.
 *
 * Answers the proxy writes itself carry the reason in the status line ("403 Forbidden: host x is
 * not in the allowlist") and a machine-readable X-Nono-Denial code:
 *   403 host-not-allowed | port-not-allowed | internal-address | metadata | bad-host |
 *       connect-only    (policy)
 *   407 auth-required          400/431/501 bad-request          408 header-timeout
 *   503 connection-limit       502 dns-failure | upstream-failure   504 upstream-timeout
 *   502 upstream-tls (interception: the upstream's TLS failed or is not trusted)
 *   endpoint-denied (interception: a route refused the request; status from the route)
 * A SOCKS5 client gets a SOCKS reply code instead (socks5_reply_code); the reason is audited. */
#include "conn.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void timer_cb(struct np_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
	c->on_timeout(c);
}

struct conn *conn_new(struct np_ctx *x, int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->x = x;
	np_io_init(&c->cio, fd, NULL);
	np_io_init(&c->uio, -1, NULL);
	np_timer_init(&c->timer, timer_cb);
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->next = x->conns;
	if (x->conns)
		x->conns->prev = c;
	x->conns = c;
	return c;
}

static void relay_release(struct np_pipe_pool *pool, struct relay *r)
{
	np_pipe_put(pool, r);
	if (r->pipe[0] >= 0) { /* still holding data: cannot go back to the pool */
		close(r->pipe[0]);
		close(r->pipe[1]);
		r->pipe[0] = r->pipe[1] = -1;
	}
}

void conn_close(struct conn *c)
{
	struct np_ctx *x = c->x;
	if (c->on_free)
		c->on_free(c);
	np_io_close(x->loop, &c->cio);
	SSL_free(c->ssl);
	c->ssl = NULL;
	np_io_close(x->loop, &c->uio);
	np_timer_cancel(x->loop, &c->timer);
	np_resolver_cancel(x->res, c->req);
	relay_release(&x->pool, &c->up);
	relay_release(&x->pool, &c->down);
	free(c->in);
	free(c->rb);
	free(c->cq.buf);
	free(c->uq.buf);
	conn_wait_leave(c);
	free(c->xq.buf);
	if (c->prev)
		c->prev->next = c->next;
	else
		x->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	__atomic_sub_fetch(x->nconn, 1, __ATOMIC_RELAXED);
	free(c);
}

void conn_wait_enter(struct conn *c)
{
	struct np_ctx *x = c->x;
	if (c->waiting)
		return;
	c->waiting = true;
	c->wnext = NULL;
	c->wprev = x->wait_tail;
	if (x->wait_tail)
		x->wait_tail->wnext = c;
	else
		x->wait_head = c;
	x->wait_tail = c;
	x->nwait++;
}

void conn_wait_leave(struct conn *c)
{
	struct np_ctx *x = c->x;
	if (!c->waiting)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		x->wait_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		x->wait_tail = c->wprev;
	c->waiting = false;
	c->wprev = c->wnext = NULL;
	x->nwait--;
}

bool conn_evict_oldest(struct np_ctx *x)
{
	struct conn *c = x->wait_head;
	if (!c)
		return false;
	/* One that had not finished a head leaves a record (its answer, if any, was audited when it
	 * was given). Closed at once, no linger: lingering would keep its slot. */
	if (c->st == C_HEAD && c->in_len > 0) {
		char reason[NONO_REASON_MAX];
		snprintf(reason, sizeof reason,
			 "request head not complete; closed to make room (%u such connections)",
			 x->nwait);
		c->ev = (nono_audit_event){0};
		conn_audit(c, "deny", 408, reason);
	}
	conn_close(c);
	return true;
}

void conn_set_deadline(struct conn *c, int64_t at_ms)
{
	if (np_timer_set(c->x->loop, &c->timer, at_ms) < 0) {
		/* No memory for the timer heap: the connection would have no deadline at all. */
		c->on_timeout = conn_close;
		np_timer_cancel(c->x->loop, &c->timer);
	}
}

void conn_audit(struct conn *c, const char *decision, int status, const char *reason)
{
	nono_audit_event *ev = &c->ev;
	ev->timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev->source, sizeof ev->source, "proxy");
	snprintf(ev->decision, sizeof ev->decision, "%s", decision);
	ev->status = status;
	snprintf(ev->reason, sizeof ev->reason, "%s", reason);
	ev->bytes_up = c->up.bytes;
	ev->bytes_down = c->down.bytes;
	np_ctx_audit(c->x, ev);
}

static void audit_flush_cb(struct np_timer *t)
{
	struct np_ctx *x = (struct np_ctx *)((char *)t - offsetof(struct np_ctx, audit_flush));
	np_auditlog_flush(x->audit);
}

void np_ctx_init(struct np_ctx *x)
{
	memset(x, 0, sizeof *x);
	np_io_init(&x->res_io, -1, NULL);
	np_timer_init(&x->audit_flush, audit_flush_cb);
}

void np_ctx_audit(struct np_ctx *x, const nono_audit_event *ev)
{
	if (np_auditlog_event(x->audit, ev) && !np_timer_armed(&x->audit_flush) &&
	    np_timer_set(x->loop, &x->audit_flush, np_loop_now(x->loop) + NP_AUDIT_FLUSH_MS) < 0)
		np_auditlog_flush(x->audit); /* no timer: write now rather than hold the line */
}

void conn_drop_upstream(struct conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->tls_want = 0;
	np_io_close(c->x->loop, &c->uio);
}

void conn_want_relay(struct conn *c)
{
	struct np_loop *l = c->x->loop;
	(void)np_io_want(l, &c->cio, (c->up.want_read ? NP_IN : 0) | (c->down.want_write ? NP_OUT : 0));
	(void)np_io_want(l, &c->uio,
			 (c->down.want_read ? NP_IN : 0) | (c->up.want_write ? NP_OUT : 0) | c->tls_want);
}

/* ---- answers and the linger after them ---- */

static void sanitize_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = ' ';
}

void conn_answer(struct conn *c, int status, const char *phrase, const char *code, const char *reason)
{
	char r[NONO_REASON_MAX], head[1024];
	if (c->socks) { /* a SOCKS5 client gets a reply code; the reason is in the audit event */
		uint8_t rep[10] = {5, socks5_reply_code(status, code), 0, 1};
		/* before its request was complete there is nothing to answer: just close */
		if (!c->socks_go || c->ev.target[0] == '\0' || outq_set(&c->cq, rep, sizeof rep) < 0)
			outq_reset(&c->cq);
		conn_closing(c);
		return;
	}
	snprintf(r, sizeof r, "%s", reason ? reason : "");
	sanitize_line(r);
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s%s%s\r\n"
			 "%s%s%s"
			 "%s"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s\n",
			 status, phrase, r[0] ? ": " : "", r, code ? "X-Nono-Denial: " : "",
			 code ? code : "", code ? "\r\n" : "",
			 status == 407 ? "Proxy-Authenticate: Basic realm=\"nono\"\r\n" : "",
			 strlen(r) + 1, r);
	if (n < 0 || (size_t)n >= sizeof head)
		n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			     status, phrase);
	if (outq_set(&c->cq, head, (size_t)n) < 0)
		outq_reset(&c->cq); /* no memory: close without an answer rather than not at all */
	conn_closing(c);
}

static void closing_event(struct np_io *io, uint32_t what)
{
	struct conn *c = CONN_OF(io, cio);
	if (what & NP_OUT) {
		int r = outq_flush(c->cio.fd, &c->cq, NULL);
		if (r < 0) {
			conn_close(c);
			return;
		}
		if (r == 1) {
			shutdown(c->cio.fd, SHUT_WR);
			(void)np_io_want(c->x->loop, &c->cio, NP_IN);
		}
		return;
	}
	/* Drain what the client still sends (a body we refused) so our close is a FIN, not an RST
	 * that could destroy the answer before the client reads it. */
	char buf[4096];
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(c->cio.fd, buf, sizeof buf, 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
}

void conn_closing(struct conn *c)
{
	conn_drop_upstream(c);
	np_resolver_cancel(c->x->res, c->req);
	c->req = NULL;
	c->st = C_CLOSING;
	conn_wait_enter(c);
	c->cio.fn = closing_event;
	c->on_timeout = conn_close;
	conn_set_deadline(c, conn_now(c) + NP_LINGER_MS);
	int r = outq_flush(c->cio.fd, &c->cq, NULL);
	if (r < 0)
		outq_reset(&c->cq);
	if (r != 0)
		shutdown(c->cio.fd, SHUT_WR);
	(void)np_io_want(c->x->loop, &c->cio, r == 0 ? NP_OUT : NP_IN);
}

/* ---- pipe pool: a tunnel holds a pipe only while bytes sit in it, so 10,000 idle tunnels cost
 * 2 fds each, not 6 ---- */

int np_pipe_get(struct np_pipe_pool *pool, int fds[2])
{
	if (pool->n) {
		pool->n--;
		fds[0] = pool->fds[pool->n][0];
		fds[1] = pool->fds[pool->n][1];
		return 0;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* A larger pipe moves more per splice call (fewer wake-ups); failure keeps the default. */
	(void)fcntl(fds[0], F_SETPIPE_SZ, NP_PIPE_SIZE);
	return 0;
}

void np_pipe_put(struct np_pipe_pool *pool, struct relay *r)
{
	if (r->pipe[0] < 0 || r->pipe_bytes)
		return;
	if (pool->n < NP_PIPE_POOL) {
		pool->fds[pool->n][0] = r->pipe[0];
		pool->fds[pool->n][1] = r->pipe[1];
		pool->n++;
	} else {
		close(r->pipe[0]);
		close(r->pipe[1]);
	}
	r->pipe[0] = r->pipe[1] = -1;
}

void np_pipe_pool_fini(struct np_pipe_pool *pool)
{
	for (unsigned i = 0; i < pool->n; i++) {
		close(pool->fds[i][0]);
		close(pool->fds[i][1]);
	}
	pool->n = 0;
}

/* ---- output queues ---- */

int np_recv_more(int fd, char *buf, size_t *len, size_t cap)
{
	for (;;) {
		ssize_t n = recv(fd, buf + *len, cap - *len, 0);
		if (n > 0) {
			*len += (size_t)n;
			return 1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -1;
		return errno == EAGAIN ? 0 : -2;
	}
}

ssize_t np_send_some(int fd, const char *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN ? 0 : -1;
	}
}

void outq_reset(struct outq *q)
{
	/* A routed request's head holds the route's secret: no copy of it outlives its use. */
	if (q->buf)
		explicit_bzero(q->buf, q->len);
	free(q->buf);
	q->buf = NULL;
	q->len = q->off = 0;
}

int outq_set(struct outq *q, const void *data, size_t len)
{
	outq_reset(q);
	if (!(q->buf = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(q->buf, data, len);
	q->len = len;
	return 0;
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

/* ---- the upstream side, plain or TLS (credential routes) ---- */

/* A TLS call that cannot go on now: 0 (would block) after noting which event it waits for, or -1. */
static int tls_blocked(struct conn *c, int rc)
{
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->tls_want |= e == SSL_ERROR_WANT_READ ? NP_IN : NP_OUT;
		return 0;
	}
	return e == SSL_ERROR_ZERO_RETURN ? -1 : -2;
}

const char *up_tls_error(const struct conn *c)
{
	unsigned long e = c->ssl ? ERR_peek_last_error() : 0;
	return e ? ERR_reason_error_string(e) : NULL;
}

int up_recv(struct conn *c, char *buf, size_t *len, size_t cap)
{
	if (!c->ssl)
		return np_recv_more(c->uio.fd, buf, len, cap);
	size_t n = 0;
	ERR_clear_error(); /* what up_tls_error reports is this call's */
	int rc = SSL_read_ex(c->ssl, buf + *len, cap - *len, &n);
	if (rc == 1) {
		*len += n;
		return 1;
	}
	return tls_blocked(c, rc);
}

ssize_t up_send(struct conn *c, const char *buf, size_t len)
{
	if (!c->ssl)
		return np_send_some(c->uio.fd, buf, len);
	size_t n = 0;
	ERR_clear_error();
	int rc = SSL_write_ex(c->ssl, buf, len, &n);
	if (rc == 1)
		return (ssize_t)n;
	return tls_blocked(c, rc) == 0 ? 0 : -1;
}

int up_flush(struct conn *c, struct outq *q, uint64_t *count)
{
	if (!c->ssl)
		return outq_flush(c->uio.fd, q, count);
	while (q->off < q->len) {
		ssize_t n = up_send(c, q->buf + q->off, q->len - q->off);
		if (n == 0)
			return 0;
		if (n < 0)
			return -EPIPE;
		q->off += (size_t)n;
		if (count)
			*count += (uint64_t)n;
	}
	outq_reset(q);
	return 1;
}
