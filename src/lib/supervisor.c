/* supervisor.c — the seccomp user-notification supervisor for blocked and proxy-only networks.
 *
 * The filter (seccomp.c) traps connect, bind, listen and sendto-with-an-address. For each request
 * this module:
 *   1. copies what it needs from the child (the sockaddr, with process_vm_readv) and takes the
 *      child's socket with pidfd_getfd (5.6) — then checks SECCOMP_IOCTL_NOTIF_ID_VALID, so the
 *      copies and the fd are known to belong to the task that is still waiting;
 *   2. decides on ITS OWN COPY (the child's memory may be flipped by another thread at any time);
 *   3. if allowed, performs the call itself on the child's socket with that copy and returns the
 *      result (EINPROGRESS included). It never answers SECCOMP_USER_NOTIF_FLAG_CONTINUE: letting
 *      the child's own syscall run would re-read the child's (mutable) memory — measured here, a
 *      flipping thread got 18% of connects to a forbidden port through a check-then-continue
 *      supervisor.
 * Requests dispatch from a closed table indexed by syscall number; anything else is denied (EPERM).
 * If the supervisor dies, the kernel fails every trapped call with ENOSYS: closed, not open.
 *
 * Policy (EACCES for every denial unless the kernel would have said something more specific):
 * - proxy-only: TCP connect to 127.0.0.1:PORT, [::1]:PORT or [::ffff:127.0.0.1]:PORT only.
 *   AF_UNSPEC (disconnect) is allowed.
 * - unix connect (blocked and proxy-only): pathname sockets inside an explicit grant only. The
 *   path (relative ones against the child's cwd, /proc/TID/cwd) is opened O_PATH by us, the
 *   opened inode's canonical path is checked against the grants, and we connect to
 *   /proc/self/fd/N — the very inode we checked, so no symlink swap can redirect us. Abstract and
 *   unnamed (autobind) addresses are denied (Landlock ABI 6 scopes them too, where present).
 *   Side effect, documented: the server's SO_PEERCRED shows the supervisor's pid (same uid).
 * - bind: TCP only on 127.0.0.1/::1 and a granted port (nono_caps_allow_bind). Pathname unix
 *   sockets only inside a granted WRITABLE directory (what Landlock's MAKE_SOCK would allow the
 *   child): we open the parent directory, check its canonical path, fchdir to it on this thread
 *   (after unshare(CLONE_FS)) and bind the base name — race-free; getsockname then shows the base
 *   name rather than the child's full path. Abstract and autobind are denied (an abstract listener
 *   is reachable from every process on the host). Netlink: without multicast groups.
 * - listen: only on sockets bound through us (a loopback granted port, or a pathname): listen()
 *   on an unbound socket would auto-bind INADDR_ANY:ephemeral or an abstract unix address.
 * - sendto with an address: netlink to the kernel (nl_pid 0, no groups: glibc's getaddrinfo and
 *   getifaddrs do this) is performed by us on a copy of the data (at most 64 KiB). On stream
 *   sockets the kernel ignores or rejects the address: refused (use send). Nothing else can carry
 *   an address here (seccomp.c refuses UDP, raw, packet and unix datagram sockets).
 * - Blocking connects are performed with a 50 ms send timeout set on the socket for the attempt
 *   (restored after); if that runs out (a full backlog, a slow handshake) a worker thread finishes
 *   the wait, so one child cannot stall the supervision of the others.
 */
#include "internal.h"
#include "uapi.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

#define QUICK_CONNECT_US 50000 /* in-line attempt for blocking connects */
#define MAX_WORKERS 32
#define MAX_NETLINK_SEND 65536

/* Pure policy helpers, also used by tests/unit/test_supervisor.c. */
NONO_HIDDEN bool nono_sup_is_proxy_addr(const struct sockaddr_storage *a, socklen_t len,
					uint16_t port);
NONO_HIDDEN bool nono_sup_is_loopback(const struct sockaddr_storage *a, socklen_t len,
				      uint16_t *port);
NONO_HIDDEN bool nono_sup_path_in(const char *path, const char *grant, bool grant_is_dir);

struct grant {
	char *path;
	bool dir;
};

struct nono_supervisor {
	int listener;
	int stop_fd; /* eventfd: readable once stop was asked */
	pthread_t thread;
	bool thread_started;
	nono_audit *audit;
	int audit_fd; /* JSON lines, <= 0: none (borrowed) */
	bool audit_allows;
	nono_net_mode mode;
	uint16_t proxy_port;
	uint16_t *ports;
	size_t nports;
	struct grant *socks; /* unix connect grants */
	size_t nsocks;
	struct grant *wdirs; /* writable directory grants (pathname unix bind) */
	size_t nwdirs;
	bool private_fs; /* unshare(CLONE_FS) succeeded: fchdir is ours alone */
	struct seccomp_notif_sizes sizes;
	/* pidfds of recent requesters (main thread only). A pidfd names one task for good: a stale
	 * entry fails with ESRCH and is reopened, it can never reach another process. */
	struct {
		uint32_t tid;
		int pidfd;
		int memfd; /* /proc/TID/mem, opened on first use: pread is ~3x cheaper than
			    * process_vm_readv here. It names one mm for good: after an exec
			    * or a reuse of the tid it reads nothing (EIO) and is reopened. */
	} pidfds[16];
	unsigned pidfd_next;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int workers;
	atomic_bool stopping;
};

/* One request being decided. */
struct rq {
	struct nono_supervisor *s;
	uint64_t id;
	uint32_t tid;
	const char *sys;
	int slot; /* pidfd cache slot of this task, -1 if none */
	uint64_t args[6];
	int fd; /* our copy of the child's socket, -1 if none */
	int domain, type;
	struct sockaddr_storage addr;
	socklen_t alen;
	char family[8];
	char target[256];
	uint16_t port;
};

/* ---- pure policy ---- */

bool nono_sup_is_loopback(const struct sockaddr_storage *a, socklen_t len, uint16_t *port)
{
	if (a->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)a;
		*port = ntohs(in->sin_port);
		return in->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	}
	if (a->ss_family == AF_INET6 && len >= 24 /* SIN6_LEN_RFC2133 */) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0,
							 0, 0, 0xff, 0xff, 127, 0, 0, 1};
		*port = ntohs(in6->sin6_port);
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       memcmp(&in6->sin6_addr, mapped, 16) == 0;
	}
	return false;
}

bool nono_sup_is_proxy_addr(const struct sockaddr_storage *a, socklen_t len, uint16_t port)
{
	uint16_t p = 0;
	return port != 0 && nono_sup_is_loopback(a, len, &p) && p == port;
}

bool nono_sup_path_in(const char *path, const char *grant, bool grant_is_dir)
{
	size_t gl = strlen(grant);
	if (!grant_is_dir)
		return strcmp(path, grant) == 0;
	if (gl == 1 && grant[0] == '/')
		return path[0] == '/';
	return strncmp(path, grant, gl) == 0 && (path[gl] == '/' || path[gl] == '\0');
}

/* ---- plumbing ---- */

static void describe(struct rq *q)
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
		if (q->alen >= 24) {
			const struct sockaddr_in6 *in6 = (const void *)a;
			inet_ntop(AF_INET6, &in6->sin6_addr, q->target, sizeof q->target);
			q->port = ntohs(in6->sin6_port);
		}
		break;
	case AF_UNIX: {
		snprintf(q->family, sizeof q->family, "unix");
		const struct sockaddr_un *un = (const void *)a;
		size_t n = q->alen > offsetof(struct sockaddr_un, sun_path)
				   ? q->alen - offsetof(struct sockaddr_un, sun_path)
				   : 0;
		if (n == 0)
			snprintf(q->target, sizeof q->target, "(unnamed)");
		else if (un->sun_path[0] == '\0')
			snprintf(q->target, sizeof q->target, "@%.*s", (int)(n - 1 > 200 ? 200 : n - 1),
				 un->sun_path + 1);
		else
			snprintf(q->target, sizeof q->target, "%.*s", (int)strnlen(un->sun_path, n),
				 un->sun_path);
		break;
	}
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

static void audit(struct rq *q, bool allow, int status, const char *reason)
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
	if (s->audit_fd > 0) {
		/* One write a line (O_APPEND): lines of several writers never interleave. */
		char line[NONO_AUDIT_LINE_MAX];
		int n = nono_audit_event_format(&ev, line, sizeof line);
		if (n > 0)
			(void)!write(s->audit_fd, line, (size_t)n);
	}
}

static void reply(struct nono_supervisor *s, uint64_t id, long long val, int error)
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

static void deny(struct rq *q, int error, const char *reason)
{
	audit(q, false, error, reason);
	reply(q->s, q->id, 0, error);
}

static bool id_valid(struct nono_supervisor *s, uint64_t id)
{
	return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Copy `len` bytes at `remote` in the task. 0 or -errno. The caller checks ID_VALID after. */
static int fetch(struct rq *q, uint64_t remote, void *buf, size_t len)
{
	if (q->slot >= 0 && remote <= (uint64_t)INT64_MAX - len) {
		__typeof__(q->s->pidfds[0]) *e = &q->s->pidfds[q->slot];
		for (int attempt = 0; attempt < 2; attempt++) {
			if (e->memfd < 0) {
				char p[64];
				snprintf(p, sizeof p, "/proc/%u/mem", q->tid);
				e->memfd = open(p, O_RDONLY | O_CLOEXEC);
				if (e->memfd < 0)
					break;
			}
			if (pread(e->memfd, buf, len, (off_t)remote) == (ssize_t)len)
				return 0;
			close(e->memfd); /* stale mm, or a bad address: retry fresh, then ask */
			e->memfd = -1;
		}
	}
	struct iovec l = {buf, len}, r = {(void *)(uintptr_t)remote, len};
	ssize_t n = process_vm_readv((pid_t)q->tid, &l, 1, &r, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* pidfd_getfd of the child's fd `cfd`: a pidfd for the thread itself (PIDFD_THREAD, 6.9) or, on
 * older kernels, for its thread group (read from /proc/TID/status). ID_VALID is checked by the
 * caller after this, which proves the pid was not recycled in between. */
static int open_pidfd(struct rq *q, bool *cacheable)
{
	*cacheable = true;
	int pidfd = (int)syscall(__NR_pidfd_open, q->tid, PIDFD_THREAD);
	if (pidfd >= 0 || errno != EINVAL)
		return pidfd < 0 ? -errno : pidfd;
	pidfd = (int)syscall(__NR_pidfd_open, q->tid, 0); /* a leader, before 6.9 */
	if (pidfd >= 0 || errno != EINVAL)
		return pidfd < 0 ? -errno : pidfd;
	/* A non-leader thread before 6.9: its thread group's pidfd (not cached: the tid may later
	 * name a thread of another group). */
	*cacheable = false;
	char p[64], line[128];
	snprintf(p, sizeof p, "/proc/%u/status", q->tid);
	FILE *f = fopen(p, "re");
	long tgid = -1;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "Tgid:", 5) == 0)
			tgid = strtol(line + 5, NULL, 10);
	if (f)
		fclose(f);
	if (tgid <= 0)
		return -ESRCH;
	pidfd = (int)syscall(__NR_pidfd_open, (pid_t)tgid, 0);
	return pidfd < 0 ? -errno : pidfd;
}

/* pidfd_getfd of the child's fd `cfd`. ID_VALID is checked by the caller after this, which
 * proves the tid was not recycled in between. */
static int take_fd(struct rq *q, int cfd)
{
	struct nono_supervisor *s = q->s;
	const unsigned n = sizeof s->pidfds / sizeof s->pidfds[0];
	for (unsigned i = 0; i < n; i++) {
		if (s->pidfds[i].pidfd < 0 || s->pidfds[i].tid != q->tid)
			continue;
		int fd = (int)syscall(__NR_pidfd_getfd, s->pidfds[i].pidfd, cfd, 0);
		if (fd >= 0 || errno != ESRCH) {
			q->slot = (int)i;
			return fd < 0 ? -errno : fd;
		}
		close(s->pidfds[i].pidfd); /* that task is gone: the tid is someone new */
		s->pidfds[i].pidfd = -1;
		if (s->pidfds[i].memfd >= 0)
			close(s->pidfds[i].memfd);
		s->pidfds[i].memfd = -1;
	}
	bool cacheable;
	int pidfd = open_pidfd(q, &cacheable);
	if (pidfd < 0)
		return pidfd;
	int fd = (int)syscall(__NR_pidfd_getfd, pidfd, cfd, 0);
	int e = errno;
	if (cacheable) {
		unsigned i = s->pidfd_next++ % n;
		if (s->pidfds[i].pidfd >= 0)
			close(s->pidfds[i].pidfd);
		if (s->pidfds[i].memfd >= 0)
			close(s->pidfds[i].memfd);
		s->pidfds[i].tid = q->tid;
		s->pidfds[i].pidfd = pidfd;
		s->pidfds[i].memfd = -1;
		q->slot = (int)i;
	} else {
		close(pidfd);
	}
	return fd < 0 ? -e : fd;
}

static void set_sndtimeo(int fd, long us)
{
	struct timeval tv = {us / 1000000, us % 1000000};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ---- slow path: a worker finishes a blocking connect ---- */

struct work {
	struct rq q;
	bool is_unix;
	struct sockaddr_storage target; /* what we connect to (unix: /proc/self/fd/N) */
	socklen_t tlen;
	int pathfd; /* unix: the O_PATH fd behind /proc/self/fd/N */
	long child_timeo_us; /* the child's SO_SNDTIMEO, 0 = none */
};

static void *worker_main(void *arg)
{
	struct work *w = arg;
	struct nono_supervisor *s = w->q.s;
	int64_t waited_ms = 0;
	int result = -EINPROGRESS;
	for (;;) {
		if (atomic_load(&s->stopping) || !id_valid(s, w->q.id)) {
			result = -EINTR;
			break;
		}
		if (w->child_timeo_us && waited_ms * 1000 >= w->child_timeo_us) {
			result = w->is_unix ? -EAGAIN : -EINPROGRESS;
			break;
		}
		if (w->is_unix) {
			set_sndtimeo(w->q.fd, 200000);
			int r = connect(w->q.fd, (struct sockaddr *)&w->target, w->tlen) < 0 ? -errno : 0;
			set_sndtimeo(w->q.fd, w->child_timeo_us);
			waited_ms += 200;
			if (r != -EAGAIN) {
				result = r;
				break;
			}
		} else {
			struct pollfd p[2] = {{w->q.fd, POLLOUT, 0}, {s->stop_fd, POLLIN, 0}};
			int n = poll(p, 2, 200);
			waited_ms += 200;
			if (n > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
				int soerr = 0;
				socklen_t sl = sizeof soerr;
				getsockopt(w->q.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				result = -soerr;
				break;
			}
		}
	}
	if (result == -EINTR) {
		/* Nobody is waiting any more (or we are stopping): nothing to answer. */
	} else {
		audit(&w->q, result == 0, -result,
		      result == 0 ? "allowed: performed by the supervisor" : "connect failed");
		reply(s, w->q.id, 0, -result);
	}
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

/* Hands the request (and our fds) to a worker. On failure answers EAGAIN itself. */
static void start_worker(struct rq *q, bool is_unix, const struct sockaddr_storage *target,
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
		deny(q, EAGAIN, "too many connects waiting in the supervisor");
		return;
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
	if (r != 0) {
		q->fd = w->q.fd;
		if (w->pathfd >= 0)
			close(w->pathfd);
		free(w);
		pthread_mutex_lock(&s->lock);
		s->workers--;
		pthread_mutex_unlock(&s->lock);
		deny(q, EAGAIN, "cannot start a supervisor worker");
	}
}

/* Perform connect(2) on our copy of the child's socket and answer. `pathfd` (unix) is kept open
 * until the connect is done. */
static void perform_connect(struct rq *q, const struct sockaddr_storage *target, socklen_t tlen,
			    bool is_unix, int *pathfd)
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
		if ((r == -EINPROGRESS && !is_unix) || (r == -EAGAIN && is_unix)) {
			start_worker(q, is_unix, target, tlen, pathfd, old_us);
			return;
		}
	}
	audit(q, r == 0 || r == -EINPROGRESS, -r,
	      r == 0 || r == -EINPROGRESS ? "allowed: performed by the supervisor" : "connect failed");
	reply(q->s, q->id, 0, -r);
}

/* Resolve a unix socket path as the child would (relative to its cwd), opening it O_PATH.
 * Returns the fd and its canonical path in `canon`, or -errno. */
static int open_unix_path(struct rq *q, const char *path, int flags, char *canon, size_t clen)
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

/* The sun_path bytes the kernel would use: at most sizeof sun_path (a longer addrlen is EINVAL
 * in unix_validate_addr, and is refused by the callers). */
static const char *unix_path(struct rq *q, size_t *n)
{
	const struct sockaddr_un *un = (const void *)&q->addr;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	*n = q->alen > off ? q->alen - off : 0;
	if (*n > sizeof un->sun_path)
		*n = sizeof un->sun_path;
	return un->sun_path;
}

/* ---- handlers ---- */

static void connect_unix(struct rq *q)
{
	size_t n;
	const char *p = unix_path(q, &n);
	if (q->addr.ss_family != AF_UNIX)
		return deny(q, EACCES, "unix socket: non-unix address");
	if (q->alen > sizeof(struct sockaddr_un))
		return deny(q, EINVAL, "unix address longer than struct sockaddr_un");
	if (n == 0 || p[0] == '\0')
		return deny(q, EACCES, n == 0 ? "unnamed unix address refused"
					      : "abstract unix sockets are not granted");
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	size_t pl = strnlen(p, n);
	memcpy(path, p, pl);
	path[pl] = '\0';
	char canon[NONO_PATH_MAX];
	cleanup_fd int pfd = open_unix_path(q, path, 0, canon, sizeof canon);
	if (pfd < 0)
		return deny(q, -pfd, "unix socket path cannot be resolved");
	struct stat st;
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return deny(q, ECONNREFUSED, "not a socket");
	bool ok = false;
	for (size_t i = 0; i < q->s->nsocks && !ok; i++)
		ok = nono_sup_path_in(canon, q->s->socks[i].path, q->s->socks[i].dir);
	snprintf(q->target, sizeof q->target, "%.250s", canon);
	if (!ok)
		return deny(q, EACCES, "unix socket not granted (--allow-unix-socket)");
	struct sockaddr_storage t;
	memset(&t, 0, sizeof t);
	struct sockaddr_un *tu = (void *)&t;
	tu->sun_family = AF_UNIX;
	int l = snprintf(tu->sun_path, sizeof tu->sun_path, "/proc/self/fd/%d", pfd);
	perform_connect(q, &t, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)l + 1),
			true, &pfd);
}

/* Why the child's TCP socket would not go where its checked address says, or NULL. The filter
 * refuses setting these options under blocked and proxy-only (seccomp.c setsockopt_deny[]), but a
 * socket created before the sandbox (nono_apply's caller, an inherited fd) may already carry them:
 * an IPv6 routing/hop-by-hop/destination-options header (review F10: an SRH sends "[::1]:P" to its
 * first hop), IPv4 options (source routing) or a bound device (F11: "127.0.0.1" sent out of
 * another interface). Read back on our copy of the socket; anything unreadable is refused (fail
 * closed). An already connected socket is not our business (connect says EISCONN). */
static const char *rerouting_option(int fd, int domain)
{
	unsigned char buf[256];
	socklen_t l = sizeof buf;
	char dev[IFNAMSIZ + 1];
	socklen_t dl = sizeof dev;
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) < 0)
		return "cannot read SO_BINDTODEVICE";
	if (dl > 0 && dev[0] != '\0')
		return "socket is bound to a device (SO_BINDTODEVICE)";
	if (getsockopt(fd, IPPROTO_IP, IP_OPTIONS, buf, &l) < 0)
		return "cannot read IP_OPTIONS";
	if (l > 0)
		return "socket carries IP options (IP_OPTIONS)";
	if (domain != AF_INET6)
		return NULL;
	static const int v6opts[] = {54 /* IPV6_HOPOPTS */, 55 /* IPV6_RTHDRDSTOPTS */,
				     57 /* IPV6_RTHDR */, 59 /* IPV6_DSTOPTS */};
	for (size_t i = 0; i < sizeof v6opts / sizeof v6opts[0]; i++) {
		l = sizeof buf;
		if (getsockopt(fd, IPPROTO_IPV6, v6opts[i], buf, &l) < 0)
			return "cannot read the IPv6 extension headers";
		if (l > 0)
			return "socket carries an IPv6 routing/options header";
	}
	return NULL;
}

static void h_connect(struct rq *q)
{
	struct nono_supervisor *s = q->s;
	if (q->domain == AF_UNIX)
		return connect_unix(q);
	if (q->domain == AF_NETLINK) {
		const struct sockaddr_nl *nl = (const void *)&q->addr;
		if (q->addr.ss_family != AF_NETLINK || q->alen < sizeof *nl || nl->nl_pid != 0 ||
		    nl->nl_groups != 0)
			return deny(q, EACCES, "netlink: only the kernel (pid 0, no groups)");
		return perform_connect(q, &q->addr, q->alen, false, &(int){-1});
	}
	if (q->domain == AF_INET || q->domain == AF_INET6) {
		if (s->mode != NONO_NET_PROXY_ONLY)
			return deny(q, EACCES, "network blocked");
		if (q->type != SOCK_STREAM)
			return deny(q, EACCES, "proxy-only: TCP only");
		if (q->addr.ss_family == AF_UNSPEC && q->alen >= sizeof(sa_family_t))
			return perform_connect(q, &q->addr, q->alen, false, &(int){-1});
		if (q->addr.ss_family != q->domain ||
		    !nono_sup_is_proxy_addr(&q->addr, q->alen, s->proxy_port))
			return deny(q, EACCES, "proxy-only: only the proxy on loopback is reachable");
		const char *why = rerouting_option(q->fd, q->domain);
		if (why)
			return deny(q, EACCES, why);
		return perform_connect(q, &q->addr, q->alen, false, &(int){-1});
	}
	deny(q, EACCES, "socket family not allowed");
}

/* The task's umask, from /proc/TID/status (4.7+). */
static int child_umask(struct rq *q)
{
	char p[64], line[128];
	snprintf(p, sizeof p, "/proc/%u/status", q->tid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -errno;
	long um = -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Umask:", 6) == 0)
			um = strtol(line + 6, NULL, 8);
	fclose(f);
	return um >= 0 && um <= 0777 ? (int)um : -ENOSYS;
}

static void h_bind(struct rq *q)
{
	struct nono_supervisor *s = q->s;
	int r;
	if (q->domain == AF_INET || q->domain == AF_INET6) {
		uint16_t port = 0;
		if (q->addr.ss_family != q->domain || !nono_sup_is_loopback(&q->addr, q->alen, &port))
			return deny(q, EACCES, "bind: loopback addresses only");
		bool ok = false;
		for (size_t i = 0; i < s->nports && !ok; i++)
			ok = s->ports[i] == port;
		if (!ok)
			return deny(q, EACCES, "bind: port not granted (--allow-bind)");
		r = bind(q->fd, (struct sockaddr *)&q->addr, q->alen) < 0 ? -errno : 0;
	} else if (q->domain == AF_NETLINK) {
		const struct sockaddr_nl *nl = (const void *)&q->addr;
		if (q->addr.ss_family != AF_NETLINK || q->alen < sizeof *nl || nl->nl_groups != 0)
			return deny(q, EACCES, "netlink bind: no multicast groups");
		r = bind(q->fd, (struct sockaddr *)&q->addr, q->alen) < 0 ? -errno : 0;
	} else if (q->domain == AF_UNIX) {
		size_t n;
		const char *p = unix_path(q, &n);
		if (q->addr.ss_family != AF_UNIX || n == 0 || p[0] == '\0')
			return deny(q, EACCES, "bind: abstract and autobind unix addresses refused");
		if (q->alen > sizeof(struct sockaddr_un))
			return deny(q, EINVAL, "unix address longer than struct sockaddr_un");
		if (!s->private_fs)
			return deny(q, EACCES, "bind: supervisor cannot bind pathname sockets here");
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
		size_t pl = strnlen(p, n);
		memcpy(path, p, pl);
		path[pl] = '\0';
		char *slash = strrchr(path, '/');
		const char *base = slash ? slash + 1 : path;
		char dir[sizeof path];
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else if (slash == path)
			snprintf(dir, sizeof dir, "/");
		else
			snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
			return deny(q, EINVAL, "bind: bad unix socket name");
		char canon[NONO_PATH_MAX];
		cleanup_fd int dfd = open_unix_path(q, dir, O_DIRECTORY, canon, sizeof canon);
		if (dfd < 0)
			return deny(q, -dfd, "bind: directory cannot be resolved");
		bool ok = false;
		for (size_t i = 0; i < s->nwdirs && !ok; i++)
			ok = nono_sup_path_in(canon, s->wdirs[i].path, true);
		snprintf(q->target, sizeof q->target, "%.150s/%.100s", canon, base);
		if (!ok)
			return deny(q, EACCES, "bind: unix socket outside the writable grants");
		struct sockaddr_un b;
		memset(&b, 0, sizeof b);
		b.sun_family = AF_UNIX;
		memcpy(b.sun_path, base, strlen(base)); /* shorter than sun_path: it came from one */
		/* This thread has its own cwd and umask (unshare(CLONE_FS) at start): bind where
		 * we checked, with the child's umask (ssh-agent & co. set 0177 to keep their socket
		 * private; ours could be wider). */
		int um = child_umask(q);
		if (um < 0)
			return deny(q, -um, "bind: cannot read the process's umask");
		if (fchdir(dfd) < 0)
			return deny(q, errno, "bind: fchdir");
		mode_t old = umask((mode_t)um);
		r = bind(q->fd, (struct sockaddr *)&b,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(base) + 1)) < 0
			    ? -errno
			    : 0;
		umask(old);
		(void)!chdir("/");
	} else {
		return deny(q, EACCES, "bind: socket family not allowed");
	}
	audit(q, r == 0, -r, r == 0 ? "allowed: performed by the supervisor" : "bind failed");
	reply(s, q->id, 0, -r);
}

static void h_listen(struct rq *q)
{
	struct nono_supervisor *s = q->s;
	struct sockaddr_storage me;
	socklen_t ml = sizeof me;
	memset(&me, 0, sizeof me);
	if (getsockname(q->fd, (struct sockaddr *)&me, &ml) < 0)
		return deny(q, errno, "listen: getsockname failed");
	q->addr = me;
	q->alen = ml;
	describe(q);
	bool ok = false;
	if (q->domain == AF_INET || q->domain == AF_INET6) {
		uint16_t port = 0;
		if (nono_sup_is_loopback(&me, ml, &port))
			for (size_t i = 0; i < s->nports && !ok; i++)
				ok = port != 0 && s->ports[i] == port;
	} else if (q->domain == AF_UNIX) {
		size_t n;
		const char *p = unix_path(q, &n);
		ok = n > 0 && p[0] != '\0';
	}
	if (!ok)
		return deny(q, EACCES, "listen: socket not bound to a granted address");
	int r = listen(q->fd, (int)(uint32_t)q->args[1]) < 0 ? -errno : 0;
	audit(q, r == 0, -r, r == 0 ? "allowed: performed by the supervisor" : "listen failed");
	reply(s, q->id, 0, -r);
}

static void h_sendto(struct rq *q)
{
	struct nono_supervisor *s = q->s;
	if (q->domain != AF_NETLINK)
		return deny(q, EACCES,
			    q->type == SOCK_STREAM || q->type == SOCK_SEQPACKET
				    ? "sendto with an address on a stream socket (use send)"
				    : "sendto with an address: only netlink to the kernel");
	const struct sockaddr_nl *nl = (const void *)&q->addr;
	if (q->addr.ss_family != AF_NETLINK || q->alen < sizeof *nl || nl->nl_pid != 0 ||
	    nl->nl_groups != 0)
		return deny(q, EACCES, "netlink: only the kernel (pid 0, no groups)");
	size_t len = (size_t)q->args[2];
	if (len > MAX_NETLINK_SEND)
		return deny(q, EMSGSIZE, "netlink message larger than the supervisor copies");
	cleanup_free char *buf = malloc(len ? len : 1);
	if (!buf)
		return deny(q, ENOMEM, "out of memory");
	int r = len ? fetch(q, q->args[1], buf, len) : 0;
	if (r < 0)
		return deny(q, -r, "cannot read the message");
	if (!id_valid(s, q->id))
		return;
	int flags = ((int)(uint32_t)q->args[3] & ~MSG_FASTOPEN) | MSG_DONTWAIT;
	ssize_t n = sendto(q->fd, buf, len, flags, (struct sockaddr *)&q->addr, q->alen);
	int e = n < 0 ? errno : 0;
	audit(q, n >= 0, e, n >= 0 ? "allowed: performed by the supervisor" : "sendto failed");
	reply(s, q->id, n < 0 ? 0 : n, e);
}

/* The closed dispatch table: syscall → handler, and where its address lives. */
static const struct handler {
	int nr;
	const char *name;
	void (*fn)(struct rq *q);
	int addr_arg, len_arg; /* -1: no address */
} handlers[] = {
	{__NR_connect, "connect", h_connect, 1, 2},
	{__NR_bind, "bind", h_bind, 1, 2},
	{__NR_listen, "listen", h_listen, -1, -1},
	{__NR_sendto, "sendto", h_sendto, 4, 5},
};

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
	const struct handler *h = NULL;
	for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
		if (handlers[i].nr == req->data.nr)
			h = &handlers[i];
	if (req->data.arch != AUDIT_ARCH_X86_64 || !h) {
		snprintf(q.target, sizeof q.target, "syscall %d arch 0x%x", req->data.nr,
			 req->data.arch);
		return deny(&q, EPERM, "request not in the supervisor's table");
	}
	q.sys = h->name;
	/* The socket first: it also finds (or opens) this task's cache slot for the memory read. */
	q.fd = take_fd(&q, (int)(uint32_t)q.args[0]);
	if (q.fd < 0) {
		int e = -q.fd;
		q.fd = -1;
		if (!id_valid(s, q.id))
			return;
		return deny(&q, e == EBADF ? EBADF : EPERM, "cannot take the socket (pidfd_getfd)");
	}
	if (h->addr_arg >= 0) {
		uint32_t alen = (uint32_t)q.args[h->len_arg];
		if ((int32_t)alen < 0 || alen > sizeof q.addr) {
			close(q.fd);
			q.fd = -1;
			return deny(&q, EINVAL, "address length out of range");
		}
		q.alen = alen;
		if (alen) {
			int r = fetch(&q, q.args[h->addr_arg], &q.addr, alen);
			if (r < 0) {
				close(q.fd);
				q.fd = -1;
				return deny(&q, r == -EFAULT ? EFAULT : EPERM,
					    "cannot read the address from the process");
			}
		}
		describe(&q);
	}
	/* Everything above was read from the task: it is ours only if the task still waits. */
	if (!id_valid(s, q.id)) {
		close(q.fd);
		return;
	}
	socklen_t l = sizeof q.domain;
	if (getsockopt(q.fd, SOL_SOCKET, SO_DOMAIN, &q.domain, &l) < 0) {
		int e = errno;
		close(q.fd);
		q.fd = -1;
		return deny(&q, e == ENOTSOCK ? ENOTSOCK : EPERM, "not a socket");
	}
	l = sizeof q.type;
	getsockopt(q.fd, SOL_SOCKET, SO_TYPE, &q.type, &l);
	h->fn(&q);
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
	for (size_t i = 0; i < sizeof s->pidfds / sizeof s->pidfds[0]; i++) {
		if (s->pidfds[i].pidfd >= 0)
			close(s->pidfds[i].pidfd);
		if (s->pidfds[i].memfd >= 0)
			close(s->pidfds[i].memfd);
	}
	for (size_t i = 0; i < s->nsocks; i++)
		free(s->socks[i].path);
	for (size_t i = 0; i < s->nwdirs; i++)
		free(s->wdirs[i].path);
	free(s->socks);
	free(s->wdirs);
	free(s->ports);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
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
	for (size_t i = 0; i < sizeof s->pidfds / sizeof s->pidfds[0]; i++)
		s->pidfds[i].pidfd = s->pidfds[i].memfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->audit = cfg->ring;
	s->audit_fd = cfg->audit_fd;
	s->audit_allows = cfg->audit_allowed;
	s->mode = cfg->net;
	s->proxy_port = cfg->proxy_port;
	int r = -ENOMEM;
	size_t np = nono_caps_bind_port_count(caps), ns = nono_caps_unix_socket_count(caps),
	       ng = nono_caps_grant_count(caps);
	s->ports = calloc(np + 1, sizeof *s->ports);
	s->socks = calloc(ns + 1, sizeof *s->socks);
	s->wdirs = calloc(ng + 1, sizeof *s->wdirs);
	if (!s->ports || !s->socks || !s->wdirs)
		goto fail;
	for (size_t i = 0; i < np; i++)
		s->ports[s->nports++] = nono_caps_bind_port(caps, i);
	for (size_t i = 0; i < ns; i++) {
		const char *p = nono_caps_unix_socket(caps, i);
		struct stat st;
		if (!p || !(s->socks[s->nsocks].path = strdup(p)))
			goto fail;
		s->socks[s->nsocks++].dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	}
	for (size_t i = 0; i < ng; i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0 || g.is_file || !(g.access & NONO_ACCESS_WRITE))
			continue;
		if (!(s->wdirs[s->nwdirs].path = strdup(g.resolved)))
			goto fail;
		s->wdirs[s->nwdirs++].dir = true;
	}
	if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &s->sizes) < 0) {
		r = nono_fail(err, -errno, "SECCOMP_GET_NOTIF_SIZES: %s", strerror(errno));
		sup_free(s);
		return r;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		r = nono_fail(err, -errno, "eventfd: %s", strerror(errno));
		sup_free(s);
		return r;
	}
	s->listener = nono_steal_fd(&lfd);
	*out = s;
	return 0;
fail:
	sup_free(s);
	return nono_fail(err, -ENOMEM, "out of memory");
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

void nono_supervisor_stop(struct nono_supervisor *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, true);
	uint64_t one = 1;
	(void)!write(s->stop_fd, &one, sizeof one);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->lock);
	while (s->workers > 0)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	sup_free(s); /* closes the listener: trapped calls now fail with ENOSYS */
}
