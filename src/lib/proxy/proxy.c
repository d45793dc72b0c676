/* proxy.c — the filtering proxy's lifecycle: start/stop, the loop thread, the listening socket,
 * accepting under the connection cap (503 and a short linger past it), the getters. It knows no
 * HTTP: an accepted connection goes to request_start (request.c), and from there the protocol
 * parts drive it with their own callbacks (conn.h).
 *
 * Threads: one loop thread per online CPU (at most NP_MAX_LOOPS), each with its own event loop,
 * connections and pipe pool; they share the listening socket (EPOLLEXCLUSIVE: a new connection
 * wakes one loop, which keeps it for its whole life), the connection count, the audit sink and the
 * resolver workers (resolve.c, which hand each loop its results through its own eventfd). Five
 * threads in all (NP_PROXY_THREADS), as with the single loop before. Why several: a tunnel's
 * cost is almost all kernel TCP work done in the proxy's syscalls (loopback delivery runs in the
 * sender's context), so one thread saturates a CPU long before the machine is busy.
 * nono_proxy_start/stop and the getters run on the caller's thread. Loop threads block every
 * signal: a splice/send to a reset peer raises a thread-directed SIGPIPE that then stays pending
 * harmlessly instead of killing the host process.
 *
 * Audit (auditlog.c: the ring, and an optional JSON-lines file written in batches): a refused
 * request is one event (decision "deny", the status we answered, the reason). An allowed request is
 * two events: the decision when the upstream connection is up (or failed: status 502 with the
 * reason) and a close event (reason starting with "closed", the final status and
 * bytes_up/bytes_down). A connection refused at accept time over the cap is one event with mode ""
 * (no request was read) and status 503. */
#include "request.h"
#include "route.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NP_AUDIT_RING 4096
#define NP_MAX_LINGER 64  /* over-cap connections lingering for their 503, per loop */
#define NP_ACCEPT_BATCH 64

struct np_linger {
	struct np_linger *prev, *next;
	struct np_worker *w;
	struct np_io io;
	struct np_timer timer;
};

struct np_worker {
	struct nono_proxy *p;
	struct np_ctx x;
	struct np_io lio, stop_io; /* the shared listening socket and stop eventfd */
	struct np_timer retry;     /* accepting again after EMFILE */
	struct np_linger *lingers;
	unsigned nlinger;
	pthread_t thread;
	pid_t tid;     /* set by the thread itself, read by nono_proxy_stop after the join */
	bool started;
};

struct nono_proxy {
	struct nono_proxy_config *cfg;
	int lfd, stop_fd;
	unsigned nconn;
	struct np_auditlog audit;
	nono_audit *ring;
	struct np_worker w[NP_MAX_LOOPS];
	unsigned nloops;
	struct np_resolver *res; /* shared by the loops, one result queue each */
	uint16_t port;
	char token[33];
	char url[128];
};

unsigned np_proxy_connections(const nono_proxy *p)
{
	return p ? __atomic_load_n(&p->nconn, __ATOMIC_RELAXED) : 0;
}

uint64_t np_proxy_audit_write_errors(nono_proxy *p)
{
	if (!p)
		return 0;
	pthread_mutex_lock(&p->audit.lock);
	uint64_t n = p->audit.write_errors;
	pthread_mutex_unlock(&p->audit.lock);
	return n;
}

/* ---- over the cap: 503 and a short linger, never a silent drop ---- */

static void linger_free(struct np_linger *l)
{
	struct np_worker *w = l->w;
	np_timer_cancel(w->x.loop, &l->timer);
	np_io_close(w->x.loop, &l->io);
	if (l->prev)
		l->prev->next = l->next;
	else
		w->lingers = l->next;
	if (l->next)
		l->next->prev = l->prev;
	w->nlinger--;
	free(l);
}

static void linger_event(struct np_io *io, uint32_t what)
{
	struct np_linger *l = (struct np_linger *)((char *)io - offsetof(struct np_linger, io));
	char buf[4096];
	if (what & NP_IN) {
		ssize_t n = recv(io->fd, buf, sizeof buf, 0);
		if (n > 0 || (n < 0 && errno == EAGAIN))
			return;
	}
	linger_free(l);
}

static void linger_timeout(struct np_timer *t)
{
	linger_free((struct np_linger *)((char *)t - offsetof(struct np_linger, timer)));
}

static void reject_over_cap(struct np_worker *w, int fd)
{
	unsigned max = w->p->cfg->lim.max_connections;
	/* Audit first: once the client has the answer, the event must already be in the ring. */
	nono_audit_event ev = {0};
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.source, sizeof ev.source, "proxy");
	snprintf(ev.decision, sizeof ev.decision, "deny");
	ev.status = 503;
	snprintf(ev.reason, sizeof ev.reason, "connection limit (%u) reached", max);
	np_ctx_audit(&w->x, &ev);
	char msg[256];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 503 Service Unavailable: connection limit (%u) reached\r\n"
			 "X-Nono-Denial: connection-limit\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 max);
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the peer is gone or its buffer full: the event above still records the refusal */
	}
	shutdown(fd, SHUT_WR);
	struct np_linger *l = w->nlinger < NP_MAX_LINGER ? calloc(1, sizeof *l) : NULL;
	if (!l) {
		close(fd);
		return;
	}
	l->w = w;
	np_io_init(&l->io, fd, linger_event);
	np_timer_init(&l->timer, linger_timeout);
	if (np_io_want(w->x.loop, &l->io, NP_IN) < 0 ||
	    np_timer_set(w->x.loop, &l->timer, np_loop_now(w->x.loop) + NP_LINGER_MS) < 0) {
		np_io_close(w->x.loop, &l->io);
		free(l);
		return;
	}
	l->next = w->lingers;
	if (w->lingers)
		w->lingers->prev = l;
	w->lingers = l;
	w->nlinger++;
}

/* ---- accepting ---- */

/* Take a connection slot: the loops share the cap, and it must hold exactly. At the cap, a slot held
 * by this loop's oldest connection without a complete head (or closing after an answer) is taken
 * over before the newcomer is refused: a client that opens many connections and never finishes a
 * head cannot lock others out. */
static bool take_slot(struct np_worker *w, unsigned max)
{
	for (;;) {
		if (__atomic_add_fetch(&w->p->nconn, 1, __ATOMIC_RELAXED) <= max)
			return true;
		__atomic_sub_fetch(&w->p->nconn, 1, __ATOMIC_RELAXED);
		if (!conn_evict_oldest(&w->x))
			return false;
	}
}

static void accept_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct np_worker *w = (struct np_worker *)((char *)io - offsetof(struct np_worker, lio));
	unsigned max = w->p->cfg->lim.max_connections;
	for (int i = 0; i < NP_ACCEPT_BATCH; i++) {
		/* TCP_NODELAY comes from the listening socket (Linux copies it to accepted ones). */
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for 100 ms instead of spinning. Pending
				 * clients wait in the backlog. */
				(void)np_io_want(w->x.loop, io, 0);
				(void)np_timer_set(w->x.loop, &w->retry, np_loop_now(w->x.loop) + 100);
			}
			return;
		}
		if (!take_slot(w, max)) {
			reject_over_cap(w, fd);
			continue;
		}
		struct conn *c = conn_new(&w->x, fd);
		if (!c) {
			__atomic_sub_fetch(&w->p->nconn, 1, __ATOMIC_RELAXED);
			close(fd);
			continue;
		}
		request_start(c); /* may finish (and free) c at once */
		/* Past this loop's share of connections without a complete head, the oldest goes. */
		while (w->x.nwait > w->x.max_wait && conn_evict_oldest(&w->x)) {
		}
	}
}

static void retry_timeout(struct np_timer *t)
{
	struct np_worker *w = (struct np_worker *)((char *)t - offsetof(struct np_worker, retry));
	(void)np_io_want(w->x.loop, &w->lio, NP_IN);
}

static void stop_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct np_worker *w = (struct np_worker *)((char *)io - offsetof(struct np_worker, stop_io));
	np_loop_stop(w->x.loop); /* the eventfd stays readable: every loop sees it */
}

/* ---- lifecycle ---- */

static void *loop_main(void *arg)
{
	struct np_worker *w = arg;
	w->tid = (pid_t)syscall(SYS_gettid);
	(void)np_loop_run(w->x.loop);
	return NULL;
}

static void worker_free(struct np_worker *w)
{
	struct np_ctx *x = &w->x;
	while (x->conns)
		conn_close(x->conns);
	while (w->lingers)
		linger_free(w->lingers);
	if (x->loop) {
		np_io_detach(x->loop, &w->lio);
		np_io_detach(x->loop, &w->stop_io);
		np_timer_cancel(x->loop, &w->retry);
		np_timer_cancel(x->loop, &x->audit_flush);
	}
	np_pipe_pool_fini(&x->pool);
	np_loop_free(x->loop);
	x->loop = NULL;
}

static void proxy_free(struct nono_proxy *p)
{
	for (unsigned i = 0; i < p->nloops; i++)
		worker_free(&p->w[i]);
	/* After the connections (they cancel their lookups): closes the result eventfds and joins
	 * the idle workers. */
	np_resolver_free(p->res);
	np_auditlog_fini(&p->audit); /* writes the lines still buffered */
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	nono_audit_free(p->ring);
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
	struct sockaddr_storage ss;
	socklen_t sl = np_sockaddr(&cfg->listen, cfg->port, &ss);
	int fd = socket(cfg->listen.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nono_fail(err, -errno, "proxy socket: %s", strerror(errno));
	p->lfd = fd;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char as[64];
	np_addr_format(&cfg->listen, as, sizeof as);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return nono_fail(err, -errno, "proxy bind %s port %u: %s", as, cfg->port, strerror(errno));
	if (listen(fd, 4096) < 0)
		return nono_fail(err, -errno, "proxy listen: %s", strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
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

/* One loop: its own epoll set with the shared listener and stop eventfd. */
static int worker_setup(struct nono_proxy *p, struct np_worker *w, nono_error *err)
{
	struct np_ctx *x = &w->x;
	int rc;
	w->p = p;
	np_ctx_init(x);
	np_io_init(&w->lio, p->lfd, accept_event);
	w->lio.flags = EPOLLEXCLUSIVE; /* one loop woken per new connection (Linux 4.5) */
	np_io_init(&w->stop_io, p->stop_fd, stop_event);
	np_timer_init(&w->retry, retry_timeout);
	if ((rc = np_loop_new(&x->loop)) < 0)
		return nono_fail(err, rc, "epoll: %s", strerror(-rc));
	x->cfg = p->cfg;
	x->token = p->token;
	x->self_port = p->port;
	x->audit = &p->audit;
	x->nconn = &p->nconn;
	if ((rc = np_io_want(x->loop, &w->lio, NP_IN)) < 0 ||
	    (rc = np_io_want(x->loop, &w->stop_io, NP_IN)) < 0)
		return nono_fail(err, rc, "epoll: %s", strerror(-rc));
	return 0;
}

static unsigned loops_wanted(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > NP_MAX_LOOPS ? NP_MAX_LOOPS : (unsigned)n;
}

/* Everything but the threads. */
static int proxy_setup(struct nono_proxy *p, nono_error *err)
{
	int rc;
	int audit_fd = -1;
	if (p->cfg->audit_log) {
		audit_fd = open(p->cfg->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (audit_fd < 0)
			return nono_fail(err, -errno, "audit log %s: %s", p->cfg->audit_log, strerror(errno));
	}
	p->audit.fd = audit_fd;
	if ((rc = random_token(p->token, err)) < 0 || (rc = np_routes_start(p->cfg, err)) < 0 ||
	    (rc = listen_socket(p, err)) < 0)
		return rc;
	if ((p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return nono_fail(err, -errno, "eventfd: %s", strerror(errno));
	unsigned want = loops_wanted();
	for (p->nloops = 0; p->nloops < want;)
		if ((rc = worker_setup(p, &p->w[p->nloops++], err)) < 0)
			return rc;
	int efds[NP_MAX_LOOPS];
	if ((rc = np_resolver_new(NP_PROXY_THREADS - p->nloops, p->nloops, &p->res, efds, err)) < 0)
		return rc;
	for (unsigned i = 0; i < p->nloops; i++)
		if ((rc = request_attach(&p->w[i].x, p->res, i, efds[i])) < 0)
			return nono_fail(err, rc, "epoll: %s", strerror(-rc));
	/* Connections without a complete head: each loop closes its oldest past its share. */
	unsigned pend = p->cfg->lim.max_pending_heads;
	if (!pend)
		pend = p->cfg->lim.max_connections / 4 > 8 ? p->cfg->lim.max_connections / 4 : 8;
	for (unsigned i = 0; i < p->nloops; i++)
		p->w[i].x.max_wait = pend / p->nloops ? pend / p->nloops : 1;
	return 0;
}

int nono_proxy_start(const nono_proxy_config *cfg, nono_proxy **out, nono_error *err)
{
	int rc;
	if (!cfg || !out)
		return nono_fail(err, -EINVAL, "nono_proxy_start: no config");
	*out = NULL;
	if ((rc = nono_proxy_config_check(cfg, err)) < 0)
		return rc;
	struct nono_proxy *p = calloc(1, sizeof *p);
	if (!p)
		return nono_fail(err, -ENOMEM, "out of memory");
	p->lfd = p->stop_fd = -1;
	np_auditlog_init(&p->audit, NULL, -1);
	if (!(p->cfg = nono_proxy_config_clone(cfg)) || !(p->ring = nono_audit_new(NP_AUDIT_RING))) {
		rc = nono_fail(err, -ENOMEM, "out of memory");
		goto fail;
	}
	p->audit.ring = p->ring;
	if ((rc = np_upstream_prepare(p->cfg, err)) < 0 || (rc = np_intercept_prepare(p->cfg, err)) < 0 ||
	    (rc = proxy_setup(p, err)) < 0)
		goto fail;
	for (unsigned i = 0; i < p->nloops; i++) {
		rc = nono_thread_start(&p->w[i].thread, NULL, loop_main, &p->w[i]);
		if (rc) {
			rc = nono_fail(err, -rc, "proxy thread: %s", strerror(rc));
			goto fail;
		}
		p->w[i].started = true;
	}
	*out = p;
	return 0;
fail:
	nono_proxy_stop(p);
	return rc;
}

void nono_proxy_stop(nono_proxy *p)
{
	if (!p)
		return;
	if (p->stop_fd >= 0) {
		uint64_t one = 1;
		while (write(p->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
	for (unsigned i = 0; i < p->nloops; i++) {
		if (!p->w[i].started)
			continue;
		pthread_join(p->w[i].thread, NULL);
		np_wait_task_gone(p->w[i].tid);
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

const struct nono_proxy_config *np_proxy_config(const nono_proxy *p)
{
	return p ? p->cfg : NULL;
}

nono_audit *nono_proxy_audit(nono_proxy *p)
{
	return p ? p->ring : NULL;
}
