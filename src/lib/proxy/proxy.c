/* proxy.c — the filtering proxy's lifecycle and plumbing: start/stop, the event-loop thread
 * (libevent), accepting under the connection cap, connection bookkeeping, answers, timers, the splice
 * pipe pool and the audit trail. The request path is in request.c, the byte relays in relay.c.
 *
 * Threads: everything below runs on the proxy's own loop thread, except nono_proxy_start/stop and
 * the getters (caller's thread) and the resolver workers (resolve.c), which only hand results back
 * through an eventfd. The loop thread blocks every signal: a splice/send to a reset peer raises a
 * thread-directed SIGPIPE that then stays pending harmlessly instead of killing the host process.
 *
 * Audit (one ring, optional JSON-lines file): a refused request is one event (decision "deny", the
 * status we answered, the reason). An allowed request is two events: the decision when the upstream
 * connection is up (or failed: status 502 with the reason) and a close event (reason starting with
 * "closed", the final status and bytes_up/bytes_down). A connection refused at accept time over the
 * cap is one event with mode "" (no request was read) and status 503.
 *
 * Answers the proxy writes itself carry the reason in the status line ("403 Forbidden: host x is
 * not in the allowlist") and a machine-readable X-Nono-Denial code:
 *   403 host-not-allowed | internal-address | metadata | bad-host    (policy)
 *   407 auth-required          400/431/501 bad-request          408 header-timeout
 *   503 connection-limit       502 dns-failure | upstream-failure   504 upstream-timeout */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Deadlines and idle times use the monotonic clock (vDSO, cheap): a wall-clock jump must not
 * stretch a header timeout. */
int64_t np_now_ms(struct nono_proxy *p)
{
	(void)p;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void audit_write(struct nono_proxy *p, const nono_audit_event *ev)
{
	nono_audit_push(p->audit, ev);
	if (p->audit_fd < 0)
		return;
	char *line = nono_audit_event_json(ev);
	if (!line) {
		p->audit_write_errors++;
		return;
	}
	size_t n = strlen(line);
	line[n] = '\n'; /* jansson's buffer has the NUL there; one write() keeps O_APPEND lines whole */
	if (write(p->audit_fd, line, n + 1) != (ssize_t)(n + 1))
		p->audit_write_errors++;
	free(line);
}

void np_audit(struct conn *c, const char *decision, int status, const char *reason)
{
	nono_audit_event *ev = &c->ev;
	ev->timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev->source, sizeof ev->source, "proxy");
	snprintf(ev->decision, sizeof ev->decision, "%s", decision);
	ev->status = status;
	snprintf(ev->reason, sizeof ev->reason, "%s", reason);
	ev->bytes_up = c->up.bytes;
	ev->bytes_down = c->down.bytes;
	audit_write(c->p, ev);
}

/* ---- events ---- */

static void client_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void set_events(struct conn *c, bool upstream, short want)
{
	short *cur = upstream ? &c->uflags : &c->cflags;
	struct event *ev = upstream ? &c->uev : &c->cev;
	int fd = upstream ? c->ufd : c->cfd;
	if (fd < 0)
		want = 0;
	if (*cur == want)
		return;
	if (*cur)
		event_del(ev);
	*cur = want;
	if (!want)
		return;
	event_assign(ev, c->p->base, fd, (short)(want | EV_PERSIST), upstream ? upstream_cb : client_cb, c);
	event_add(ev, NULL);
}

void conn_update(struct conn *c)
{
	short cw = 0, uw = 0;
	switch (c->st) {
	case C_HEAD:
		cw = EV_READ;
		break;
	case C_RESOLVE:
		break;
	case C_DIAL:
		uw = EV_WRITE;
		break;
	case C_TUNNEL:
	case C_HTTP:
		cw = (short)((c->up.want_read ? EV_READ : 0) | (c->down.want_write ? EV_WRITE : 0));
		uw = (short)((c->down.want_read ? EV_READ : 0) | (c->up.want_write ? EV_WRITE : 0));
		break;
	case C_CLOSING:
		cw = c->cq.len > c->cq.off ? EV_WRITE : EV_READ;
		break;
	}
	set_events(c, false, cw);
	set_events(c, true, uw);
}

static void arm_timer(struct conn *c, int64_t at_ms)
{
	int64_t d = at_ms - np_now_ms(c->p);
	if (d < 0)
		d = 0;
	struct timeval tv = {.tv_sec = d / 1000, .tv_usec = (d % 1000) * 1000};
	event_add(&c->tev, &tv);
}

void conn_set_deadline(struct conn *c, int64_t at_ms)
{
	c->deadline_ms = at_ms;
	arm_timer(c, at_ms);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct conn *c = arg;
	int64_t now = np_now_ms(c->p);
	if (c->st == C_TUNNEL || c->st == C_HTTP) {
		/* Idle timeout: activity does not touch the timer (cheap on the hot path); it is
		 * checked here and the timer re-armed for the remainder. */
		int64_t at = c->activity_ms + c->p->cfg->lim.idle_timeout_ms;
		if (now < at) {
			arm_timer(c, at);
			return;
		}
	} else if (now < c->deadline_ms) {
		arm_timer(c, c->deadline_ms);
		return;
	}
	conn_on_timeout(c);
}

/* ---- connections ---- */

void conn_close(struct conn *c)
{
	struct nono_proxy *p = c->p;
	if (c->cflags)
		event_del(&c->cev);
	if (c->uflags)
		event_del(&c->uev);
	event_del(&c->tev);
	np_resolver_cancel(p->res, c->req);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	np_pipe_put(p, &c->up);
	np_pipe_put(p, &c->down);
	if (c->up.pipe[0] >= 0) { /* still holding data: cannot go back to the pool */
		close(c->up.pipe[0]);
		close(c->up.pipe[1]);
	}
	if (c->down.pipe[0] >= 0) {
		close(c->down.pipe[0]);
		close(c->down.pipe[1]);
	}
	free(c->in);
	free(c->rb);
	free(c->cq.buf);
	free(c->uq.buf);
	if (c->prev)
		c->prev->next = c->next;
	else
		p->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	p->nconn--;
	free(c);
}

static void sanitize_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = ' ';
}

void conn_answer(struct conn *c, int status, const char *phrase, const char *code, const char *reason)
{
	char r[NONO_REASON_MAX], head[1024];
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
	outq_reset(&c->cq);
	c->cq.buf = malloc((size_t)n);
	if (c->cq.buf) {
		memcpy(c->cq.buf, head, (size_t)n);
		c->cq.len = (size_t)n;
	}
	conn_closing(c);
}

void conn_closing(struct conn *c)
{
	if (c->ufd >= 0) {
		if (c->uflags)
			event_del(&c->uev);
		c->uflags = 0;
		close(c->ufd);
		c->ufd = -1;
	}
	c->st = C_CLOSING;
	conn_set_deadline(c, np_now_ms(c->p) + NP_LINGER_MS);
	/* Never frees c here (callers go on using it): a dead client shows up as an event. */
	int r = outq_flush(c->cfd, &c->cq, NULL);
	if (r < 0)
		c->cq.off = c->cq.len;
	if (r != 0)
		shutdown(c->cfd, SHUT_WR);
	conn_update(c);
}

static void closing_event(struct conn *c, short what)
{
	if (what & EV_WRITE) {
		int r = outq_flush(c->cfd, &c->cq, NULL);
		if (r < 0)
			return conn_close(c);
		if (r == 1) {
			shutdown(c->cfd, SHUT_WR);
			conn_update(c);
		}
		return;
	}
	/* Drain what the client still sends (a body we refused) so our close is a FIN, not an RST
	 * that could destroy the answer before the client reads it. */
	char buf[4096];
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(c->cfd, buf, sizeof buf, 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		return conn_close(c);
	}
}

static void client_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct conn *c = arg;
	switch (c->st) {
	case C_HEAD:
		return conn_on_client_head(c);
	case C_TUNNEL:
	case C_HTTP:
		return relay_client_event(c, what);
	case C_CLOSING:
		return closing_event(c, what);
	default:
		return;
	}
}

static void upstream_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct conn *c = arg;
	if (c->st == C_DIAL)
		return conn_on_dial(c);
	if (c->st == C_TUNNEL || c->st == C_HTTP)
		return relay_upstream_event(c, what);
}

/* ---- over the cap: 503 and a short linger, never a silent drop ---- */

struct np_linger {
	struct np_linger *prev, *next;
	struct nono_proxy *p;
	int fd;
	struct event ev;
};

static void linger_free(struct np_linger *l)
{
	event_del(&l->ev);
	close(l->fd);
	if (l->prev)
		l->prev->next = l->next;
	else
		l->p->lingers = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->p->nlinger--;
	free(l);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct np_linger *l = arg;
	char buf[4096];
	if (what & EV_READ) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n > 0 || (n < 0 && errno == EAGAIN))
			return;
	}
	linger_free(l);
}

static void reject_over_cap(struct nono_proxy *p, int fd)
{
	/* Audit first: once the client has the answer, the event must already be in the ring. */
	nono_audit_event ev = {0};
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.source, sizeof ev.source, "proxy");
	snprintf(ev.decision, sizeof ev.decision, "deny");
	ev.status = 503;
	snprintf(ev.reason, sizeof ev.reason, "connection limit (%u) reached", p->cfg->lim.max_connections);
	audit_write(p, &ev);
	char msg[256];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 503 Service Unavailable: connection limit (%u) reached\r\n"
			 "X-Nono-Denial: connection-limit\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 p->cfg->lim.max_connections);
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the peer is gone or its buffer full: the event above still records the refusal */
	}
	shutdown(fd, SHUT_WR);
	struct np_linger *l = p->nlinger < NP_MAX_LINGER ? calloc(1, sizeof *l) : NULL;
	if (!l) {
		close(fd);
		return;
	}
	l->p = p;
	l->fd = fd;
	struct timeval tv = {.tv_sec = NP_LINGER_MS / 1000, .tv_usec = (NP_LINGER_MS % 1000) * 1000};
	event_assign(&l->ev, p->base, fd, EV_READ | EV_PERSIST, linger_cb, l);
	event_add(&l->ev, &tv);
	l->next = p->lingers;
	if (p->lingers)
		p->lingers->prev = l;
	p->lingers = l;
	p->nlinger++;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct nono_proxy *p = arg;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for 100 ms instead of spinning. Pending
				 * clients wait in the backlog. */
				struct timeval tv = {0, 100000};
				event_del(p->lev);
				event_add(p->retry_ev, &tv);
			}
			return;
		}
		if (p->nconn >= p->cfg->lim.max_connections) {
			reject_over_cap(p, fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->p = p;
		c->cfd = fd;
		c->ufd = -1;
		c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
		c->st = C_HEAD;
		c->next = p->conns;
		if (p->conns)
			p->conns->prev = c;
		p->conns = c;
		p->nconn++;
		evtimer_assign(&c->tev, p->base, timer_cb, c);
		conn_set_deadline(c, np_now_ms(p) + p->cfg->lim.header_timeout_ms);
		conn_update(c);
	}
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct nono_proxy *p = arg;
	event_add(p->lev, NULL);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopbreak(((struct nono_proxy *)arg)->base);
}

static void resolved_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct nono_proxy *p = arg;
	struct np_resolve_req *r = np_resolver_done(p->res);
	while (r) {
		struct np_resolve_req *next = r->next;
		struct conn *c = r->owner;
		if (c) {
			c->req = NULL;
			conn_on_resolved(c, r);
		}
		free(r);
		r = next;
	}
}

/* ---- pipe pool: a tunnel holds a pipe only while bytes sit in it, so 10,000 idle tunnels cost
 * 2 fds each, not 6 ---- */

int np_pipe_get(struct nono_proxy *p, int fds[2])
{
	if (p->npool) {
		p->npool--;
		fds[0] = p->pool[p->npool][0];
		fds[1] = p->pool[p->npool][1];
		return 0;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* A larger pipe moves more per splice call (fewer wake-ups); failure keeps the default. */
	(void)fcntl(fds[0], F_SETPIPE_SZ, NP_PIPE_SIZE);
	return 0;
}

void np_pipe_put(struct nono_proxy *p, struct relay *r)
{
	if (r->pipe[0] < 0 || r->pipe_bytes)
		return;
	if (p->npool < NP_PIPE_POOL) {
		p->pool[p->npool][0] = r->pipe[0];
		p->pool[p->npool][1] = r->pipe[1];
		p->npool++;
	} else {
		close(r->pipe[0]);
		close(r->pipe[1]);
	}
	r->pipe[0] = r->pipe[1] = -1;
}

/* ---- lifecycle ---- */

static void *loop_main(void *arg)
{
	struct nono_proxy *p = arg;
	p->thread_tid = (pid_t)syscall(SYS_gettid); /* read by nono_proxy_stop after the join */
	event_base_dispatch(p->base);
	return NULL;
}

static void proxy_free(struct nono_proxy *p)
{
	while (p->conns)
		conn_close(p->conns);
	while (p->lingers)
		linger_free(p->lingers);
	if (p->lev)
		event_free(p->lev);
	if (p->retry_ev)
		event_free(p->retry_ev);
	if (p->stop_ev)
		event_free(p->stop_ev);
	if (p->res_ev)
		event_free(p->res_ev);
	np_resolver_free(p->res); /* closes res_fd, joins idle workers */
	for (unsigned i = 0; i < p->npool; i++) {
		close(p->pool[i][0]);
		close(p->pool[i][1]);
	}
	if (p->base)
		event_base_free(p->base);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	if (p->audit_fd >= 0)
		close(p->audit_fd);
	nono_audit_free(p->audit);
	nono_proxy_config_free(p->cfg);
	free(p);
}

static int random_token(char out[33], nono_error *err)
{
	unsigned char b[16];
	size_t got = 0;
	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return nono_fail(err, -errno, "getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

static int listen_socket(struct nono_proxy *p, nono_error *err)
{
	const struct nono_proxy_config *cfg = p->cfg;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	if (cfg->listen.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(cfg->port);
		memcpy(&s4->sin_addr, cfg->listen.b, 4);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(cfg->port);
		memcpy(&s6->sin6_addr, cfg->listen.b, 16);
		sl = sizeof *s6;
	}
	p->lfd = socket(cfg->listen.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->lfd < 0)
		return nono_fail(err, -errno, "proxy socket: %s", strerror(errno));
	int one = 1;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	char as[64];
	np_addr_format(&cfg->listen, as, sizeof as);
	if (bind(p->lfd, (struct sockaddr *)&ss, sl) < 0)
		return nono_fail(err, -errno, "proxy bind %s port %u: %s", as, cfg->port, strerror(errno));
	if (listen(p->lfd, 4096) < 0)
		return nono_fail(err, -errno, "proxy listen: %s", strerror(errno));
	if (getsockname(p->lfd, (struct sockaddr *)&ss, &sl) < 0)
		return nono_fail(err, -errno, "proxy getsockname: %s", strerror(errno));
	p->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port);
	/* The URL a child uses: a wildcard listen address is still reached through loopback. */
	const char *host = as;
	np_addr any = {.family = cfg->listen.family};
	if (memcmp(cfg->listen.b, any.b, 16) == 0)
		host = cfg->listen.family == AF_INET ? "127.0.0.1" : "::1";
	bool v6 = strchr(host, ':') != NULL;
	snprintf(p->url, sizeof p->url, "http://nono:%s@%s%s%s:%u", p->token, v6 ? "[" : "", host,
		 v6 ? "]" : "", p->port);
	return 0;
}

int nono_proxy_start(const nono_proxy_config *cfg, nono_proxy **out, nono_error *err)
{
	int rc;
	if (!cfg || !out)
		return nono_fail(err, -EINVAL, "nono_proxy_start: no config");
	*out = NULL;
	struct nono_proxy *p = calloc(1, sizeof *p);
	if (!p)
		return nono_fail(err, -ENOMEM, "out of memory");
	p->lfd = p->stop_fd = p->res_fd = p->audit_fd = -1;
	if (!(p->cfg = nono_proxy_config_clone(cfg)) || !(p->audit = nono_audit_new(NP_AUDIT_RING))) {
		rc = nono_fail(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = random_token(p->token, err)) < 0 || (rc = listen_socket(p, err)) < 0)
		goto fail;
	if (p->cfg->audit_log) {
		p->audit_fd = open(p->cfg->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (p->audit_fd < 0) {
			rc = nono_fail(err, -errno, "audit log %s: %s", p->cfg->audit_log, strerror(errno));
			goto fail;
		}
	}
	p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_fd < 0) {
		rc = nono_fail(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((rc = np_resolver_new(NP_RESOLVER_THREADS, &p->res, &p->res_fd, err)) < 0)
		goto fail;
	struct event_config *ec = event_config_new();
	if (ec) {
		/* Our fds are never shared with another base; skip libevent's internal locking. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
		p->base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (!p->base || !(p->lev = event_new(p->base, p->lfd, EV_READ | EV_PERSIST, accept_cb, p)) ||
	    !(p->retry_ev = evtimer_new(p->base, retry_cb, p)) ||
	    !(p->stop_ev = event_new(p->base, p->stop_fd, EV_READ | EV_PERSIST, stop_cb, p)) ||
	    !(p->res_ev = event_new(p->base, p->res_fd, EV_READ | EV_PERSIST, resolved_cb, p)) ||
	    event_add(p->lev, NULL) < 0 || event_add(p->stop_ev, NULL) < 0 ||
	    event_add(p->res_ev, NULL) < 0) {
		rc = nono_fail(err, -ENOMEM, "libevent setup failed");
		goto fail;
	}
	rc = nono_thread_start(&p->thread, NULL, loop_main, p);
	if (rc) {
		rc = nono_fail(err, -rc, "proxy thread: %s", strerror(rc));
		goto fail;
	}
	p->thread_started = true;
	*out = p;
	return 0;
fail:
	proxy_free(p);
	return rc;
}

void nono_proxy_stop(nono_proxy *p)
{
	if (!p)
		return;
	if (p->thread_started) {
		uint64_t one = 1;
		while (write(p->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
			;
		pthread_join(p->thread, NULL);
		np_wait_task_gone(p->thread_tid);
	}
	/* proxy_free joins the idle resolver workers: when stop returns, only a worker stuck in a
	 * getaddrinfo call may remain (resolve.c explains why it is not waited for). */
	proxy_free(p);
}

uint16_t nono_proxy_port(const nono_proxy *p)
{
	return p ? p->port : 0;
}

const char *nono_proxy_token(const nono_proxy *p)
{
	return p ? p->token : NULL;
}

const char *nono_proxy_url(const nono_proxy *p)
{
	return p ? p->url : NULL;
}

nono_audit *nono_proxy_audit(nono_proxy *p)
{
	return p ? p->audit : NULL;
}
