/* tunnel.c — a CONNECT tunnel once its upstream is connected: "200 Connection established", then
 * bytes both ways with splice(2) socket → pipe → socket, so payload never enters user space. A
 * pipe is taken from the pool only while bytes sit in it, so an idle tunnel costs its two sockets
 * and no buffer at all. Half-closes are passed on (EOF from one side shuts the other side's write
 * direction); the tunnel ends when both directions have. Return convention: GONE means the
 * connection was freed. */
#include "relay.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define GONE (-1)

static int closed(struct conn *c, const char *reason)
{
	conn_audit(c, "allow", c->ev.status, reason);
	conn_close(c);
	return GONE;
}

/* Below this a read is taken to have emptied the socket: the pump stops instead of asking again
 * (an EAGAIN that costs a syscall per message on interactive traffic). If more did arrive, the
 * level-triggered loop reports the socket again. */
#define NP_SHORT_READ (16 * 1024)

/* Returns 0, or -errno when the tunnel must be torn down. */
static int tunnel_pump(struct conn *c, struct relay *r, int src, int dst, struct outq *pre)
{
	struct relay *other = r == &c->up ? &c->down : &c->up;
	bool drained = false;
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
			/* The last direction to finish needs no shutdown: closing both sockets right
			 * after sends the same FIN. */
			if (!r->shut && !(other->eof && other->shut))
				shutdown(dst, SHUT_WR);
			r->shut = true;
			np_pipe_put(&c->x->pool, r);
			return 0;
		}
		if (drained) {
			r->want_read = true;
			np_pipe_put(&c->x->pool, r);
			return 0;
		}
		if (r->pipe[0] < 0) {
			int e = np_pipe_get(&c->x->pool, r->pipe);
			if (e < 0)
				return e;
		}
		ssize_t n = splice(src, NULL, r->pipe[1], NULL, NP_PIPE_SIZE,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			r->pipe_bytes = (size_t)n;
			drained = n < NP_SHORT_READ;
			c->activity_ms = conn_now(c);
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
			np_pipe_put(&c->x->pool, r);
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
		e = tunnel_pump(c, &c->up, c->cio.fd, c->uio.fd, &c->uq);
	if (!e && down)
		e = tunnel_pump(c, &c->down, c->uio.fd, c->cio.fd, &c->cq);
	if (e < 0) {
		char reason[NONO_REASON_MAX];
		snprintf(reason, sizeof reason, "closed: %s", strerror(-e));
		return closed(c, reason);
	}
	if (c->up.eof && c->up.shut && c->down.eof && c->down.shut)
		return closed(c, "closed");
	conn_want_relay(c);
	return 0;
}

static void client_event(struct np_io *io, uint32_t what)
{
	struct conn *c = CONN_OF(io, cio);
	tunnel_step(c, what & (NP_IN | EPOLLERR | EPOLLHUP), what & NP_OUT);
}

static void upstream_event(struct np_io *io, uint32_t what)
{
	struct conn *c = CONN_OF(io, uio);
	tunnel_step(c, what & NP_OUT, what & (NP_IN | EPOLLERR | EPOLLHUP));
}

/* Idle timeout: moving bytes does not touch the timer (cheap on the hot path); it is checked
 * here and the timer re-armed for the remainder. */
static void idle_timeout(struct conn *c)
{
	int64_t at = c->activity_ms + c->x->cfg->lim.idle_timeout_ms;
	if (conn_now(c) < at) {
		conn_set_deadline(c, at);
		return;
	}
	closed(c, "closed: idle timeout");
}

void tunnel_start(struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	/* SOCKS5 success: BND.ADDR 0.0.0.0:0 (clients do not use it for CONNECT) */
	static const char socks_ok[10] = {5, 0, 0, 1};
	c->st = C_TUNNEL;
	c->cio.fn = client_event;
	c->uio.fn = upstream_event;
	c->on_timeout = idle_timeout;
	conn_set_deadline(c, c->activity_ms + c->x->cfg->lim.idle_timeout_ms);
	outq_reset(&c->uq);
	if (outq_set(&c->cq, c->socks ? socks_ok : ok, c->socks ? sizeof socks_ok : sizeof ok - 1) < 0) {
		closed(c, "closed: out of memory");
		return;
	}
	/* Bytes the client sent after the CONNECT head (e.g. an eager TLS ClientHello) go first. */
	if (c->in_len) {
		c->uq.buf = steal_pointer(&c->in);
		c->uq.len = c->in_len;
	} else {
		free(c->in);
		c->in = NULL;
	}
	c->in_len = c->in_cap = c->in_scan = c->in_body = 0;
	/* Nothing to read yet (the client waits for our 200, the upstream for the client): write the
	 * answer and any early bytes, then let the loop say when either side has something. */
	c->up.want_read = c->down.want_read = true;
	int e = outq_flush(c->cio.fd, &c->cq, NULL);
	if (e == 0)
		c->down.want_write = true;
	if (e >= 0 && c->uq.len) {
		e = outq_flush(c->uio.fd, &c->uq, &c->up.bytes);
		c->up.want_read = e != 0;
		c->up.want_write = e == 0;
	}
	if (e < 0) {
		char reason[NONO_REASON_MAX];
		snprintf(reason, sizeof reason, "closed: %s", strerror(-e));
		closed(c, reason);
		return;
	}
	c->down.want_read = !c->down.want_write;
	conn_want_relay(c);
}

