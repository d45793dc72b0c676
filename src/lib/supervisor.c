/* supervisor.c — the seccomp user-notification supervisor for blocked and proxy-only networks:
 * its loop and lifecycle.
 *
 * The filter (seccomp.c) traps connect, bind, listen and sendto-with-an-address (and, whenever
 * Landlock applies, metadata writes and watches: supervisor_meta.c reads, decides and performs
 * those itself, on the same principles). For each network request the supervisor:
 *   1. copies what it needs from the child (the sockaddr, with process_vm_readv or /proc/TID/mem)
 *      and takes the child's socket with pidfd_getfd (5.6) — then checks
 *      SECCOMP_IOCTL_NOTIF_ID_VALID, so the copies and the fd are known to belong to the task that
 *      is still waiting (read_request below; the reading itself is supervisor_io.c);
 *   2. decides on ITS OWN COPY (the child's memory may be flipped by another thread at any time):
 *      supervisor_decide.c, which also states the policy;
 *   3. if allowed, performs the call itself on the child's socket with that copy and returns the
 *      result (EINPROGRESS included). It never answers SECCOMP_USER_NOTIF_FLAG_CONTINUE: letting
 *      the child's own syscall run would re-read the child's (mutable) memory — measured here, a
 *      flipping thread got 18% of connects to a forbidden port through a check-then-continue
 *      supervisor.
 * Requests dispatch from a closed table indexed by syscall number (supervisor_decide.c); anything
 * else is denied (EPERM). If the supervisor dies, the kernel fails every trapped call with ENOSYS:
 * closed, not open. Blocking connects that must wait (a full backlog, a slow handshake) are
 * finished by worker threads, so one child cannot stall the supervision of the others.
 *
 * Two hosts run the loop: a thread of the caller (nono_supervisor_start, for nono_exec) and the
 * helper process of in-process nono_apply (supervisor_helper.c).
 */
#include "supervisor_int.h"

#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* Take the socket and copy the address from the task. *ready: the request is ours to decide
 * (q->fd, q->domain, q->type and the address are set); otherwise the denial to answer, if any. */
static struct denial read_request(struct rq *q, const struct nono_sup_handler *h, bool *ready)
{
	*ready = false;
	/* The socket first: it also finds (or opens) this task's cache slot for the memory read. */
	q->fd = nono_sup_take_fd(q, (int)(uint32_t)q->args[0]);
	if (q->fd < 0) {
		int e = -q->fd;
		q->fd = -1;
		if (!nono_sup_id_valid(q->s, q->id))
			return SUP_DONE;
		return sup_refuse(e == EBADF ? EBADF : EPERM, "cannot take the socket (pidfd_getfd)");
	}
	if (h->addr_arg >= 0) {
		uint32_t alen = (uint32_t)q->args[h->len_arg];
		if ((int32_t)alen < 0 || alen > sizeof q->addr)
			return sup_refuse(EINVAL, "address length out of range");
		q->alen = alen;
		int r = alen ? nono_sup_fetch(q, q->args[h->addr_arg], &q->addr, alen) : 0;
		if (r < 0)
			return sup_refuse(r == -EFAULT ? EFAULT : EPERM,
					  "cannot read the address from the process");
		nono_sup_describe(q);
	}
	/* Everything above was read from the task: it is ours only if the task still waits. */
	if (!nono_sup_id_valid(q->s, q->id))
		return SUP_DONE;
	socklen_t l = sizeof q->domain;
	if (getsockopt(q->fd, SOL_SOCKET, SO_DOMAIN, &q->domain, &l) < 0)
		return sup_refuse(errno == ENOTSOCK ? ENOTSOCK : EPERM, "not a socket");
	l = sizeof q->type;
	getsockopt(q->fd, SOL_SOCKET, SO_TYPE, &q->type, &l);
	*ready = true;
	return SUP_DONE;
}

static void handle(struct nono_supervisor *s, const struct seccomp_notif *req)
{
	struct rq q;
	memset(&q, 0, sizeof q);
	q.s = s;
	q.id = req->id;
	q.tid = req->pid;
	q.fd = -1;
	q.slot = -1;
	q.sys = "unknown";
	memcpy(q.args, req->data.args, sizeof q.args);
	const struct nono_sup_handler *h = nono_sup_handler(req->data.nr, req->data.arch);
	struct denial d;
	if (!h) {
		snprintf(q.target, sizeof q.target, "syscall %d arch 0x%x", req->data.nr,
			 req->data.arch);
		d = sup_refuse(EPERM, "request not in the supervisor's table");
	} else {
		q.sys = h->name;
		/* Nothing in the task to take or read first (socket, socketpair), or the handler reads
		 * the request itself (metadata writes and watches). */
		bool ready = h->reads_itself || h->addr_arg == SUP_NO_FD;
		if (!ready)
			d = read_request(&q, h, &ready);
		if (ready)
			d = h->fn(&q);
	}
	if (d.error)
		nono_sup_deny(&q, d.error, d.reason);
	if (q.fd >= 0)
		close(q.fd);
}

void *nono_sup_main(void *arg)
{
	struct nono_supervisor *s = arg;
	/* A private cwd for fchdir-then-bind (unix pathname bind), without touching the process's. */
	s->private_fs = unshare(CLONE_FS) == 0;
	/* 6.6+: the child hands its CPU to us on notification and back on reply. */
	(void)ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	size_t rsz = s->sizes.seccomp_notif > sizeof(struct seccomp_notif)
			     ? s->sizes.seccomp_notif
			     : sizeof(struct seccomp_notif);
	cleanup_free struct seccomp_notif *req = malloc(rsz);
	if (!req)
		return NULL;
	for (;;) {
		struct pollfd p[2] = {{s->listener, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
		int n = poll(p, 2, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents || atomic_load(&s->stopping))
			break;
		if (!(p[0].revents & POLLIN)) {
			if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
				break; /* no task uses the filter any more */
			continue;
		}
		memset(req, 0, rsz);
		if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			break;
		}
		handle(s, req);
	}
	return NULL;
}

static void sup_free(struct nono_supervisor *s)
{
	if (!s)
		return;
	if (s->listener >= 0)
		close(s->listener);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	nono_sup_pidfds_close(s);
	for (size_t i = 0; i < s->nsocks; i++)
		free(s->socks[i].path);
	for (size_t i = 0; i < s->nwdirs; i++)
		free(s->wdirs[i].path);
	free(s->socks);
	free(s->wdirs);
	nono_sup_meta_free(s);
	free(s->ports);
	nono_sup_direct_free(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* Copy what the supervisor enforces from the caps: bind ports, unix connect grants (a directory
 * grant covers the sockets below it), writable directories (pathname unix bind). 0 or -ENOMEM. */
static int load_grants(struct nono_supervisor *s, const nono_caps *caps)
{
	size_t np = nono_caps_bind_port_count(caps), ns = nono_caps_unix_socket_count(caps),
	       ng = nono_caps_grant_count(caps);
	s->ports = calloc(np + 1, sizeof *s->ports);
	s->socks = calloc(ns + 1, sizeof *s->socks);
	s->wdirs = calloc(ng + 1, sizeof *s->wdirs);
	if (!s->ports || !s->socks || !s->wdirs)
		return -ENOMEM;
	for (size_t i = 0; i < np; i++)
		s->ports[s->nports++] = nono_caps_bind_port(caps, i);
	for (size_t i = 0; i < ns; i++) {
		const char *p = nono_caps_unix_socket(caps, i);
		struct stat st;
		if (!p || !(s->socks[s->nsocks].path = strdup(p)))
			return -ENOMEM;
		s->socks[s->nsocks++].dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	}
	for (size_t i = 0; i < ng; i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0 || g.is_file || !(g.access & NONO_ACCESS_WRITE))
			continue;
		if (!(s->wdirs[s->nwdirs].path = strdup(g.resolved)))
			return -ENOMEM;
		s->wdirs[s->nwdirs++].dir = true;
	}
	return nono_sup_meta_load(s, caps);
}

/* Build the supervisor state (no thread yet). Takes `listener`. */
int nono_sup_new(int listener, const nono_caps *caps, const struct nono_sup_config *cfg,
		 struct nono_supervisor **out, nono_error *err)
{
	cleanup_fd int lfd = listener;
	struct nono_supervisor *s = calloc(1, sizeof *s);
	if (!s)
		return nono_fail(err, -ENOMEM, "out of memory");
	s->listener = -1;
	s->stop_fd = -1;
	for (size_t i = 0; i < N_ELEMENTS(s->pidfds); i++)
		s->pidfds[i].pidfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	atomic_init(&s->audit_write_errors, 0);
	s->audit = cfg->ring;
	s->audit_fd = cfg->audit_fd;
	s->audit_allows = cfg->audit_allowed;
	s->mode = cfg->net;
	s->proxy_port = cfg->proxy_port;
	s->proxy_v6 = cfg->proxy_v6;
	int r;
	if (load_grants(s, caps) < 0 || nono_sup_direct_load(s, caps) < 0)
		r = nono_fail(err, -ENOMEM, "out of memory");
	else if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &s->sizes) < 0)
		r = nono_fail(err, -errno, "SECCOMP_GET_NOTIF_SIZES: %s", strerror(errno));
	else if ((s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		r = nono_fail(err, -errno, "eventfd: %s", strerror(errno));
	else
		r = 0;
	if (r < 0) {
		sup_free(s);
		return r;
	}
	s->listener = nono_steal_fd(&lfd);
	*out = s;
	return 0;
}

int nono_supervisor_start(int listener_fd, const nono_caps *caps,
			  const struct nono_sup_config *cfg, struct nono_supervisor **out,
			  nono_error *err)
{
	*out = NULL;
	if (listener_fd < 0 || !caps || !cfg) {
		if (listener_fd >= 0)
			close(listener_fd);
		return nono_fail(err, -EINVAL, "supervisor needs a listener fd and caps");
	}
	struct nono_supervisor *s;
	int r = nono_sup_new(listener_fd, caps, cfg, &s, err);
	if (r < 0)
		return r;
	/* The thread takes no signals: the caller's handlers stay the caller's business. */
	r = nono_thread_start(&s->thread, NULL, nono_sup_main, s);
	if (r != 0) {
		sup_free(s);
		return nono_fail(err, -r, "cannot start the supervisor thread: %s", strerror(r));
	}
	s->thread_started = true;
	*out = s;
	return 0;
}

uint64_t nono_supervisor_stop(struct nono_supervisor *s)
{
	if (!s)
		return 0;
	atomic_store(&s->stopping, true);
	uint64_t one = 1;
	(void)!write(s->stop_fd, &one, sizeof one);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->lock);
	while (s->workers > 0)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	/* Read after every writer (the thread, its workers) is done. */
	uint64_t lost = (uint64_t)atomic_load(&s->audit_write_errors);
	sup_free(s); /* closes the listener: trapped calls now fail with ENOSYS */
	return lost;
}

uint64_t nono_supervisor_audit_write_errors(struct nono_supervisor *s)
{
	return s ? (uint64_t)atomic_load(&s->audit_write_errors) : 0;
}
