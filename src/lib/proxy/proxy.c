/* proxy.c — the filtering proxy's lifecycle: start/stop, the loop thread, the listening socket,
 * accepting under the connection cap (503 and a short linger past it), the getters. It knows no
 * HTTP: an accepted connection goes to request_start (request.c), and from there the protocol
 * parts drive it with their own callbacks (conn.h).
 *
 * Threads: everything below runs on the proxy's own loop thread, except nono_proxy_start/stop and
 * the getters (caller's thread) and the resolver workers (resolve.c), which only hand results back
 * through an eventfd. The loop thread blocks every signal: a splice/send to a reset peer raises a
 * thread-directed SIGPIPE that then stays pending harmlessly instead of killing the host process.
 *
 * Audit (auditlog.c: the ring, and an optional JSON-lines file written in batches): a refused
 * request is one event (decision "deny", the status we answered, the reason). An allowed request is
 * two events: the decision when the upstream connection is up (or failed: status 502 with the
 * reason) and a close event (reason starting with "closed", the final status and
 * bytes_up/bytes_down). A connection refused at accept time over the cap is one event with mode ""
 * (no request was read) and status 503. */
#include "request.h"

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
#define NP_MAX_LINGER 64  /* over-cap connections lingering for their 503 */
#define NP_ACCEPT_BATCH 64

struct np_linger {
	struct np_linger *prev, *next;
	struct nono_proxy *p;
	struct np_io io;
	struct np_timer timer;
};

struct nono_proxy {
	struct np_ctx x;
	struct nono_proxy_config *cfg;
	struct np_io lio, stop_io;
	struct np_timer retry;  /* accepting again after EMFILE */
	pthread_t thread;
	pid_t thread_tid; /* the loop thread's tid, set by the thread itself */
	bool thread_started;
	nono_audit *ring;
	uint16_t port;
	char token[33];
	char url[128];
	struct np_linger *lingers;
	unsigned nlinger;
};

unsigned np_proxy_connections(const nono_proxy *p)
{
	return p ? __atomic_load_n(&p->x.nconn, __ATOMIC_RELAXED) : 0;
}

uint64_t np_proxy_audit_write_errors(const nono_proxy *p)
{
	return p ? p->x.audit.write_errors : 0;
}

/* ---- over the cap: 503 and a short linger, never a silent drop ---- */

static void linger_free(struct np_linger *l)
{
	struct np_loop *loop = l->p->x.loop;
	np_timer_cancel(loop, &l->timer);
	np_io_close(loop, &l->io);
	if (l->prev)
		l->prev->next = l->next;
	else
		l->p->lingers = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->p->nlinger--;
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

static void reject_over_cap(struct nono_proxy *p, int fd)
{
	/* Audit first: once the client has the answer, the event must already be in the ring. */
	nono_audit_event ev = {0};
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.source, sizeof ev.source, "proxy");
	snprintf(ev.decision, sizeof ev.decision, "deny");
	ev.status = 503;
	snprintf(ev.reason, sizeof ev.reason, "connection limit (%u) reached", p->cfg->lim.max_connections);
	np_auditlog_event(&p->x.audit, &ev);
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
	np_io_init(&l->io, fd, linger_event);
	np_timer_init(&l->timer, linger_timeout);
	if (np_io_want(p->x.loop, &l->io, NP_IN) < 0 ||
	    np_timer_set(p->x.loop, &l->timer, np_loop_now(p->x.loop) + NP_LINGER_MS) < 0) {
		np_io_close(p->x.loop, &l->io);
		free(l);
		return;
	}
	l->next = p->lingers;
	if (p->lingers)
		p->lingers->prev = l;
	p->lingers = l;
	p->nlinger++;
}

/* ---- accepting ---- */

static void accept_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct nono_proxy *p = (struct nono_proxy *)((char *)io - offsetof(struct nono_proxy, lio));
	for (int i = 0; i < NP_ACCEPT_BATCH; i++) {
		/* TCP_NODELAY comes from the listening socket (Linux copies it to accepted ones). */
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for 100 ms instead of spinning. Pending
				 * clients wait in the backlog. */
				(void)np_io_want(p->x.loop, io, 0);
				(void)np_timer_set(p->x.loop, &p->retry, np_loop_now(p->x.loop) + 100);
			}
			return;
		}
		if (p->x.nconn >= p->cfg->lim.max_connections) {
			reject_over_cap(p, fd);
			continue;
		}
		struct conn *c = conn_new(&p->x, fd);
		if (!c) {
			close(fd);
			continue;
		}
		request_start(c);
	}
}

static void retry_timeout(struct np_timer *t)
{
	struct nono_proxy *p = (struct nono_proxy *)((char *)t - offsetof(struct nono_proxy, retry));
	(void)np_io_want(p->x.loop, &p->lio, NP_IN);
}

static void stop_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct nono_proxy *p = (struct nono_proxy *)((char *)io - offsetof(struct nono_proxy, stop_io));
	np_loop_stop(p->x.loop);
}

/* ---- lifecycle ---- */

static void *loop_main(void *arg)
{
	struct nono_proxy *p = arg;
	p->thread_tid = (pid_t)syscall(SYS_gettid); /* read by nono_proxy_stop after the join */
	(void)np_loop_run(p->x.loop);
	return NULL;
}

static void proxy_free(struct nono_proxy *p)
{
	struct np_ctx *x = &p->x;
	while (x->conns)
		conn_close(x->conns);
	while (p->lingers)
		linger_free(p->lingers);
	request_fini(x);
	if (x->loop) {
		np_io_close(x->loop, &p->lio);
		np_io_close(x->loop, &p->stop_io);
		np_timer_cancel(x->loop, &p->retry);
	}
	np_auditlog_fini(&x->audit); /* writes the lines still buffered */
	np_pipe_pool_fini(&x->pool);
	np_loop_free(x->loop);
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
	np_io_init(&p->lio, fd, accept_event);
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

/* Combinations of options that contradict each other, refused the same way for every caller (the
 * CLI, the C API and nono_py). */
static int check_config(const nono_proxy_config *cfg, nono_error *err)
{
	if (cfg->allow_all && cfg->nallow)
		return nono_fail(err, -EINVAL, "allowed hosts cannot be combined with allow-all-hosts "
					       "(allow-all-hosts already allows every public host)");
	return 0;
}

/* Everything but the thread: loop, listener, audit sink, resolver. */
static int proxy_setup(struct nono_proxy *p, nono_error *err)
{
	struct np_ctx *x = &p->x;
	int rc;
	if ((rc = np_loop_new(&x->loop)) < 0)
		return nono_fail(err, rc, "epoll: %s", strerror(-rc));
	x->cfg = p->cfg;
	x->token = p->token;
	np_timer_init(&p->retry, retry_timeout);
	int audit_fd = -1;
	if (p->cfg->audit_log) {
		audit_fd = open(p->cfg->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (audit_fd < 0)
			return nono_fail(err, -errno, "audit log %s: %s", p->cfg->audit_log, strerror(errno));
	}
	np_auditlog_init(&x->audit, x->loop, p->ring, audit_fd);
	if ((rc = random_token(p->token, err)) < 0 || (rc = listen_socket(p, err)) < 0)
		return rc;
	int sfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0)
		return nono_fail(err, -errno, "eventfd: %s", strerror(errno));
	np_io_init(&p->stop_io, sfd, stop_event);
	if ((rc = request_init(x, err)) < 0)
		return rc;
	if ((rc = np_io_want(x->loop, &p->lio, NP_IN)) < 0 ||
	    (rc = np_io_want(x->loop, &p->stop_io, NP_IN)) < 0)
		return nono_fail(err, rc, "epoll: %s", strerror(-rc));
	return 0;
}

int nono_proxy_start(const nono_proxy_config *cfg, nono_proxy **out, nono_error *err)
{
	int rc;
	if (!cfg || !out)
		return nono_fail(err, -EINVAL, "nono_proxy_start: no config");
	*out = NULL;
	if ((rc = check_config(cfg, err)) < 0)
		return rc;
	struct nono_proxy *p = calloc(1, sizeof *p);
	if (!p)
		return nono_fail(err, -ENOMEM, "out of memory");
	np_io_init(&p->lio, -1, NULL);
	np_io_init(&p->stop_io, -1, NULL);
	np_auditlog_init(&p->x.audit, NULL, NULL, -1);
	if (!(p->cfg = nono_proxy_config_clone(cfg)) || !(p->ring = nono_audit_new(NP_AUDIT_RING))) {
		rc = nono_fail(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = proxy_setup(p, err)) < 0)
		goto fail;
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
		while (write(p->stop_io.fd, &one, sizeof one) < 0 && errno == EINTR)
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
	return p ? p->ring : NULL;
}
