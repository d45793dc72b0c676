/* supervisor_io.c — the supervisor's hands: reading the child (its memory, its fds, its cwd and
 * umask), answering it, recording decisions, and performing the calls it was allowed. No policy
 * here: supervisor_decide.c decides, and calls these. */
#include "supervisor_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#define QUICK_CONNECT_US 50000 /* in-line attempt for blocking connects */
#define WORKER_STEP_US 200000  /* a worker re-checks the request this often */
#define MAX_WORKERS 32

/* ---- recording and answering ---- */

static void describe_unix(struct rq *q)
{
	const struct sockaddr_un *un = (const void *)&q->addr;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	size_t n = q->alen > off ? q->alen - off : 0;
	if (n == 0)
		snprintf(q->target, sizeof q->target, "(unnamed)");
	else if (un->sun_path[0] == '\0')
		snprintf(q->target, sizeof q->target, "@%.*s", (int)(n - 1 > 200 ? 200 : n - 1),
			 un->sun_path + 1);
	else
		snprintf(q->target, sizeof q->target, "%.*s", (int)strnlen(un->sun_path, n),
			 un->sun_path);
}

void nono_sup_describe(struct rq *q)
{
	const struct sockaddr_storage *a = &q->addr;
	q->target[0] = '\0';
	q->port = 0;
	switch (a->ss_family) {
	case AF_INET:
		snprintf(q->family, sizeof q->family, "inet");
		if (q->alen >= sizeof(struct sockaddr_in)) {
			const struct sockaddr_in *in = (const void *)a;
			inet_ntop(AF_INET, &in->sin_addr, q->target, sizeof q->target);
			q->port = ntohs(in->sin_port);
		}
		break;
	case AF_INET6:
		snprintf(q->family, sizeof q->family, "inet6");
		if (q->alen >= 24 /* SIN6_LEN_RFC2133 */) {
			const struct sockaddr_in6 *in6 = (const void *)a;
			inet_ntop(AF_INET6, &in6->sin6_addr, q->target, sizeof q->target);
			q->port = ntohs(in6->sin6_port);
		}
		break;
	case AF_UNIX:
		snprintf(q->family, sizeof q->family, "unix");
		describe_unix(q);
		break;
	case AF_NETLINK:
		snprintf(q->family, sizeof q->family, "netlink");
		break;
	case AF_UNSPEC:
		snprintf(q->family, sizeof q->family, "unspec");
		break;
	default:
		snprintf(q->family, sizeof q->family, "%u", (unsigned)a->ss_family);
	}
	/* Audit strings are printable only: a hostile path must not inject control bytes. */
	for (char *c = q->target; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* The audit fd gets one write(2) per line, from the supervisor thread and from connect workers
 * alike. Opened O_APPEND (the caller's job, nono_exec_opts.audit_fd), each line lands whole at the
 * end of a regular file, also with other writers (the CLI, the proxy) on the same file: the kernel
 * moves the offset and copies under one inode lock (NFS excepted). On a pipe, a line up to
 * PIPE_BUF (4096) bytes is atomic; a supervisor line is well under (printable target <= 255
 * bytes, no method or path). A line that cannot be written (a full disk, a non-blocking pipe that
 * is full: the supervisor never waits for its log) is lost and counted
 * (nono_supervisor_audit_write_errors); a short write can leave a partial last line. */
static int write_line(int fd, const nono_audit_event *ev)
{
	char line[NONO_AUDIT_LINE_MAX];
	int n = nono_audit_event_format(ev, line, sizeof line);
	if (n < 0)
		return n;
	ssize_t w;
	do /* EINTR: nothing was written (the supervisor's threads block signals anyway) */
		w = write(fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

void nono_sup_audit(struct rq *q, bool allow, int status, const char *reason)
{
	struct nono_supervisor *s = q->s;
	if ((!s->audit && s->audit_fd <= 0) || (allow && !s->audit_allows))
		return;
	nono_audit_event ev;
	memset(&ev, 0, sizeof ev);
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.source, sizeof ev.source, "supervisor");
	snprintf(ev.mode, sizeof ev.mode, "%s", q->sys);
	snprintf(ev.decision, sizeof ev.decision, "%s", allow ? "allow" : "deny");
	snprintf(ev.family, sizeof ev.family, "%s", q->family);
	snprintf(ev.target, sizeof ev.target, "%s", q->target);
	ev.port = q->port;
	ev.status = status;
	snprintf(ev.reason, sizeof ev.reason, "%s", reason);
	if (s->audit)
		nono_audit_push(s->audit, &ev);
	if (s->audit_fd > 0 && write_line(s->audit_fd, &ev) < 0)
		atomic_fetch_add(&s->audit_write_errors, 1);
}

void nono_sup_reply(struct nono_supervisor *s, uint64_t id, long long val, int error)
{
	struct seccomp_notif_resp resp;
	memset(&resp, 0, sizeof resp);
	resp.id = id;
	resp.val = error ? -1 : val;
	resp.error = error ? -error : 0;
	resp.flags = 0; /* never SECCOMP_USER_NOTIF_FLAG_CONTINUE */
	/* ENOENT: the task died or was interrupted meanwhile; nothing to answer. */
	while (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno == EINTR)
		;
}

void nono_sup_deny(struct rq *q, int error, const char *reason)
{
	nono_sup_audit(q, false, error, reason);
	nono_sup_reply(q->s, q->id, 0, error);
}

void nono_sup_answer(struct rq *q, long long r, const char *failed)
{
	/* EINPROGRESS: the connect was made and goes on in the kernel, as the child's own would. */
	bool done = r >= 0 || r == -EINPROGRESS;
	int error = r < 0 ? (int)-r : 0;
	nono_sup_audit(q, done, error, done ? "allowed: performed by the supervisor" : failed);
	nono_sup_reply(q->s, q->id, r < 0 ? 0 : r, error);
}

bool nono_sup_id_valid(struct nono_supervisor *s, uint64_t id)
{
	return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* ---- reading the child ---- */

/* The task's memory, read with process_vm_readv at the time of the request: it reads the mm the
 * thread `tid` has now. A cached /proc/TID/mem fd was ~1 us cheaper but names the mm it was opened
 * on for good, and that mm can outlive the thread's use of it: a vfork child that execs, or a
 * thread that exits while its process lives on and whose tid a new process then gets, had its
 * arguments read from the other process's memory (review of 2026-12-05 d, #1 and #2: a chmod
 * acted on another granted file than the one named, and reported success). */
int nono_sup_fetch(struct rq *q, uint64_t remote, void *buf, size_t len)
{
	struct iovec l = {buf, len}, r = {(void *)(uintptr_t)remote, len};
	ssize_t n = process_vm_readv((pid_t)q->tid, &l, 1, &r, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* A pidfd for the requesting thread itself (PIDFD_THREAD, 6.9) or, on older kernels, for its
 * thread group. ID_VALID is checked by the caller after use, which proves the tid was not
 * recycled in between. */
static int open_pidfd(struct rq *q, bool *cacheable)
{
	*cacheable = true;
	if (q->tid == 0) /* not visible in our pid namespace; and never "ourselves" below */
		return -ESRCH;
	int pidfd = (int)syscall(__NR_pidfd_open, q->tid, PIDFD_THREAD);
	if (pidfd >= 0 || errno != EINVAL)
		return pidfd < 0 ? -errno : pidfd;
	pidfd = (int)syscall(__NR_pidfd_open, q->tid, 0); /* a leader, before 6.9 */
	if (pidfd >= 0 || errno != EINVAL)
		return pidfd < 0 ? -errno : pidfd;
	/* A non-leader thread before 6.9: its thread group's pidfd (not cached: the tid may later
	 * name a thread of another group). */
	*cacheable = false;
	long tgid = -1;
	if (nono_proc_status_field((pid_t)q->tid, "Tgid", 10, &tgid) < 0 || tgid <= 0)
		return -ESRCH;
	pidfd = (int)syscall(__NR_pidfd_open, (pid_t)tgid, 0);
	return pidfd < 0 ? -errno : pidfd;
}

static void slot_clear(struct pidfd_slot *e)
{
	if (e->pidfd >= 0)
		close(e->pidfd);
	e->pidfd = -1;
}

void nono_sup_pidfds_close(struct nono_supervisor *s)
{
	for (size_t i = 0; i < N_ELEMENTS(s->pidfds); i++)
		slot_clear(&s->pidfds[i]);
}

static void slot_keep(struct rq *q, int pidfd)
{
	struct nono_supervisor *s = q->s;
	unsigned i = s->pidfd_next++ % N_ELEMENTS(s->pidfds);
	slot_clear(&s->pidfds[i]);
	s->pidfds[i].tid = q->tid;
	s->pidfds[i].pidfd = pidfd;
	q->slot = (int)i;
}

int nono_sup_take_fd(struct rq *q, int cfd)
{
	struct nono_supervisor *s = q->s;
	for (unsigned i = 0; i < N_ELEMENTS(s->pidfds); i++) {
		if (s->pidfds[i].pidfd < 0 || s->pidfds[i].tid != q->tid)
			continue;
		int fd = (int)syscall(__NR_pidfd_getfd, s->pidfds[i].pidfd, cfd, 0);
		if (fd >= 0 || errno != ESRCH) {
			q->slot = (int)i;
			return fd < 0 ? -errno : fd;
		}
		slot_clear(&s->pidfds[i]); /* that task is gone: the tid is someone new */
	}
	bool cacheable;
	int pidfd = open_pidfd(q, &cacheable);
	if (pidfd < 0)
		return pidfd;
	int fd = (int)syscall(__NR_pidfd_getfd, pidfd, cfd, 0);
	int e = errno;
	if (cacheable) {
		slot_keep(q, pidfd);
	} else {
		close(pidfd);
	}
	return fd < 0 ? -e : fd;
}

int nono_sup_open_path(struct rq *q, const char *path, int flags, char *canon, size_t clen)
{
	int base = AT_FDCWD;
	cleanup_fd int cwd = -1;
	if (path[0] != '/') {
		char p[64];
		snprintf(p, sizeof p, "/proc/%u/cwd", q->tid);
		cwd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0)
			return -errno;
		base = cwd;
	}
	int fd = openat(base, path, O_PATH | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, canon, clen - 1);
	if (n < 0 || (size_t)n >= clen - 1) {
		int e = n < 0 ? errno : ENAMETOOLONG;
		close(fd);
		return -e;
	}
	canon[n] = '\0';
	return fd;
}

/* From /proc/TID/status (the Umask field is 4.7+; ENOSYS before). */
int nono_sup_child_umask(struct rq *q)
{
	if (q->tid == 0)
		return -ESRCH;
	long um = -1;
	int r = nono_proc_status_field((pid_t)q->tid, "Umask", 8, &um);
	if (r == -ENOENT || r == -EINVAL || (r == 0 && (um < 0 || um > 0777)))
		return -ENOSYS;
	return r < 0 ? r : (int)um;
}

/* ---- performing ---- */

static void set_sndtimeo(int fd, long us)
{
	struct timeval tv = {us / 1000000, us % 1000000};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* The slow path: a worker finishes a blocking connect, so that one child cannot stall the
 * supervision of the others. */
struct work {
	struct rq q;
	bool is_unix;
	struct sockaddr_storage target; /* what we connect to (unix: /proc/self/fd/N) */
	socklen_t tlen;
	int pathfd;          /* unix: the O_PATH fd behind /proc/self/fd/N */
	long child_timeo_us; /* the child's SO_SNDTIMEO, 0 = none */
};

/* Wait for the connect to finish: 0 or -errno for the child, -EINTR when nobody waits any more
 * (the task was interrupted or died, or we are stopping). */
static int worker_wait(struct work *w)
{
	struct nono_supervisor *s = w->q.s;
	long waited_us = 0;
	for (;;) {
		if (atomic_load(&s->stopping) || !nono_sup_id_valid(s, w->q.id))
			return -EINTR;
		if (w->child_timeo_us && waited_us >= w->child_timeo_us)
			return w->is_unix ? -EAGAIN : -EINPROGRESS; /* as the kernel's own timeout */
		waited_us += WORKER_STEP_US;
		if (w->is_unix) {
			set_sndtimeo(w->q.fd, WORKER_STEP_US);
			int r = connect(w->q.fd, (struct sockaddr *)&w->target, w->tlen) < 0 ? -errno : 0;
			set_sndtimeo(w->q.fd, w->child_timeo_us);
			if (r != -EAGAIN)
				return r;
		} else {
			struct pollfd p[2] = {{w->q.fd, POLLOUT, 0}, {s->stop_fd, POLLIN, 0}};
			int n = poll(p, 2, WORKER_STEP_US / 1000);
			if (n > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
				int soerr = 0;
				socklen_t sl = sizeof soerr;
				getsockopt(w->q.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				return -soerr;
			}
		}
	}
}

static void *worker_main(void *arg)
{
	struct work *w = arg;
	struct nono_supervisor *s = w->q.s;
	int result = worker_wait(w);
	if (result != -EINTR)
		nono_sup_answer(&w->q, result, "connect failed");
	close(w->q.fd);
	if (w->pathfd >= 0)
		close(w->pathfd);
	free(w);
	pthread_mutex_lock(&s->lock);
	s->workers--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Hand the request (and our fds) to a worker. */
static struct denial start_worker(struct rq *q, bool is_unix, const struct sockaddr_storage *target,
				  socklen_t tlen, int *pathfd, long child_timeo_us)
{
	struct nono_supervisor *s = q->s;
	struct work *w = calloc(1, sizeof *w);
	pthread_mutex_lock(&s->lock);
	bool room = w && s->workers < MAX_WORKERS;
	if (room)
		s->workers++;
	pthread_mutex_unlock(&s->lock);
	if (!room) {
		free(w);
		return sup_refuse(EAGAIN, "too many connects waiting in the supervisor");
	}
	w->q = *q;
	w->is_unix = is_unix;
	w->target = *target;
	w->tlen = tlen;
	w->pathfd = nono_steal_fd(pathfd);
	w->child_timeo_us = child_timeo_us;
	q->fd = -1; /* the worker owns it now */
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int r = pthread_create(&t, &at, worker_main, w);
	pthread_attr_destroy(&at);
	if (r == 0)
		return SUP_DONE;
	q->fd = w->q.fd;
	if (w->pathfd >= 0)
		close(w->pathfd);
	free(w);
	pthread_mutex_lock(&s->lock);
	s->workers--;
	pthread_mutex_unlock(&s->lock);
	return sup_refuse(EAGAIN, "cannot start a supervisor worker");
}

/* Blocking connects are tried in line with a short send timeout set on the socket for the attempt
 * (restored after); if that runs out (a full backlog, a slow handshake) a worker finishes the wait.
 * Non-blocking ones are answered as the kernel answers them. */
struct denial nono_sup_perform_connect(struct rq *q, const struct sockaddr_storage *target,
				       socklen_t tlen, bool is_unix, int *pathfd)
{
	int fl = fcntl(q->fd, F_GETFL);
	int r;
	if (fl >= 0 && (fl & O_NONBLOCK)) {
		r = connect(q->fd, (const struct sockaddr *)target, tlen) < 0 ? -errno : 0;
	} else {
		struct timeval old = {0, 0};
		socklen_t ol = sizeof old;
		getsockopt(q->fd, SOL_SOCKET, SO_SNDTIMEO, &old, &ol);
		set_sndtimeo(q->fd, QUICK_CONNECT_US);
		r = connect(q->fd, (const struct sockaddr *)target, tlen) < 0 ? -errno : 0;
		long old_us = (long)old.tv_sec * 1000000 + old.tv_usec;
		set_sndtimeo(q->fd, old_us);
		if ((r == -EINPROGRESS && !is_unix) || (r == -EAGAIN && is_unix))
			return start_worker(q, is_unix, target, tlen, pathfd, old_us);
	}
	nono_sup_answer(q, r, "connect failed");
	return SUP_DONE;
}

int nono_sup_bind_at(struct rq *q, int dfd, const char *base, int um)
{
	struct sockaddr_un b;
	memset(&b, 0, sizeof b);
	b.sun_family = AF_UNIX;
	size_t n = strlen(base);
	if (n >= sizeof b.sun_path)
		return -ENAMETOOLONG;
	memcpy(b.sun_path, base, n);
	/* This thread has its own cwd and umask (unshare(CLONE_FS) at start): bind where we checked,
	 * with the child's umask (ssh-agent & co. set 0177 to keep their socket private; ours could
	 * be wider). */
	if (fchdir(dfd) < 0)
		return -errno;
	mode_t old = umask((mode_t)um);
	int r = bind(q->fd, (struct sockaddr *)&b,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1)) < 0
			? -errno
			: 0;
	umask(old);
	(void)!chdir("/");
	return r;
}
