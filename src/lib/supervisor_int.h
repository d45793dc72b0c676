/* supervisor_int.h — the supervisor's own state, shared by its files and nothing else (the rest of
 * the library sees struct nono_supervisor as opaque, through internal.h):
 *   supervisor.c         the loop and lifecycle: request intake, nono_sup_new/main, start/stop;
 *   supervisor_io.c      reading the child and answering it: fetch, take_fd and the pidfd cache,
 *                        reply/deny/audit, and performing connect (with its worker threads), bind
 *                        and the child's own view of paths and umask;
 *   supervisor_decide.c  the decisions: the closed dispatch table, the h_* handlers and the pure
 *                        policy checks;
 *   supervisor_meta.c    metadata writes and watches (issue 11): their handler, which reads,
 *                        decides and performs on its own (rows with reads_itself in the table);
 *   supervisor_grants.c  the grant check on a real path for those, with its memo.
 * supervisor.c and supervisor_decide.c call into supervisor_io.c; supervisor_io.c calls neither. */
#ifndef NONO_SUPERVISOR_INT_H
#define NONO_SUPERVISOR_INT_H

#include "internal.h"
#include "uapi.h"

#include <stdatomic.h>
#include <sys/socket.h>

struct grant {
	char *path;
	bool dir;
};

/* Every filesystem grant with its access (supervisor_meta.c: metadata writes need WRITE, watches
 * READ). */
struct meta_grant {
	char *path;
	bool dir;
	unsigned access; /* NONO_ACCESS_* */
};

/* A verdict of nono_sup_meta_verdict for every child of the directory `dir` (supervisor_grants.c
 * says why it is exact). */
struct meta_memo {
	char *dir; /* NULL: empty */
	size_t len;
	unsigned need; /* NONO_ACCESS_* */
	int verdict;   /* 0, EACCES or EROFS */
	const char *why;
};

/* A recent requester: its pidfd names one task for good (a stale entry fails with ESRCH and is
 * reopened, it can never reach another process). */
struct pidfd_slot {
	uint32_t tid;
	int pidfd;
};

struct nono_supervisor {
	int listener;
	int stop_fd; /* eventfd: readable once stop was asked */
	pthread_t thread;
	bool thread_started;
	nono_audit *audit;
	int audit_fd; /* JSON lines, <= 0: none (borrowed) */
	bool audit_allows;
	atomic_uint_fast64_t audit_write_errors; /* lines lost on audit_fd (any thread) */
	nono_net_mode mode;
	uint16_t proxy_port;
	bool proxy_v6; /* the proxy is [::1]:proxy_port, else 127.0.0.1 */
	uint16_t *ports;
	size_t nports;
	struct grant *socks; /* unix connect grants */
	size_t nsocks;
	struct grant *wdirs; /* writable directory grants (pathname unix bind) */
	size_t nwdirs;
	bool private_fs; /* unshare(CLONE_FS) succeeded: fchdir is ours alone */
	struct sup_direct *direct; /* internal destinations reached directly (supervisor_net.c) */
	size_t ndirect;
	atomic_uint *bound; /* per ports[i]: bound on loopback through us (its own listener): bit 0
			       127.0.0.1, bit 1 [::1] — only the address bound is connectable */
	atomic_uint seen_sockets; /* refused socket kinds already recorded (bit per kind) */
	atomic_bool seen_routine; /* a routine miss (nscd) already recorded */
	struct meta_grant *mgrants; /* all filesystem grants (supervisor_meta.c) */
	nono_caps *view; /* a copy of the caps: deny paths and read-only binds (supervisor_meta.c) */
	size_t nmgrants;
	struct meta_memo memo[8]; /* main thread only (supervisor_grants.c) */
	unsigned memo_next;
	int fd_dir; /* /proc/thread-self/fd of the deciding thread (-1: none), once fd_dir_tried */
	bool fd_dir_tried;
	struct seccomp_notif_sizes sizes;
	struct pidfd_slot pidfds[16]; /* main thread only */
	unsigned pidfd_next;
	pthread_mutex_t lock; /* guards workers */
	pthread_cond_t cond;
	int workers;
	atomic_bool stopping;
};

/* One address a proxy-only command may connect to directly (nono_caps_allow_internal). */
struct sup_direct {
	int family;
	unsigned char addr[16];
	uint16_t port;
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
	char why[128]; /* storage for a composed denial reason */
};

/* What a step leaves to its caller: a refusal to answer (error != 0: an errno and the audit
 * reason), or nothing (SUP_DONE: the request was answered, or the task stopped waiting). */
struct denial {
	int error;
	const char *reason;
};
#define SUP_DONE ((struct denial){0, NULL})
static inline struct denial sup_refuse(int error, const char *reason)
{
	return (struct denial){error, reason};
}

/* ---- supervisor_io.c ---- */
/* Fill q->family, q->target and q->port from q->addr for the audit (printable bytes only). */
NONO_HIDDEN void nono_sup_describe(struct rq *q);
/* Record a decision: the ring, and one JSON line on the audit fd. Allowed calls only when asked. */
NONO_HIDDEN void nono_sup_audit(struct rq *q, bool allow, int status, const char *reason);
NONO_HIDDEN void nono_sup_reply(struct nono_supervisor *s, uint64_t id, long long val, int error);
NONO_HIDDEN void nono_sup_deny(struct rq *q, int error, const char *reason);
/* Audit and answer the result of a call we performed: r >= 0 the value, else -errno. */
NONO_HIDDEN void nono_sup_answer(struct rq *q, long long r, const char *failed);
/* Is the task still waiting for this request? Everything read from it counts only then. */
NONO_HIDDEN bool nono_sup_id_valid(struct nono_supervisor *s, uint64_t id);
/* Copy `len` bytes at `remote` in the task. 0 or -errno. The caller checks ID_VALID after. */
NONO_HIDDEN int nono_sup_fetch(struct rq *q, uint64_t remote, void *buf, size_t len);
/* Our copy of the task's fd `cfd` (pidfd_getfd), or -errno; sets q->slot. ID_VALID after. */
NONO_HIDDEN int nono_sup_take_fd(struct rq *q, int cfd);
NONO_HIDDEN void nono_sup_pidfds_close(struct nono_supervisor *s);
/* Resolve `path` as the task would (relative to its cwd), opened O_PATH | flags. Returns the fd
 * and its canonical path in `canon`, or -errno. */
NONO_HIDDEN int nono_sup_open_path(struct rq *q, const char *path, int flags, char *canon,
				   size_t clen);
/* The task's umask (0..0777) or -errno. */
NONO_HIDDEN int nono_sup_child_umask(struct rq *q);
/* connect(2) on our copy of the socket, answered (possibly later, by a worker thread). `pathfd`
 * (unix: the inode behind /proc/self/fd/N in `target`) is taken and kept open until done. */
NONO_HIDDEN struct denial nono_sup_perform_connect(struct rq *q,
						   const struct sockaddr_storage *target,
						   socklen_t tlen, bool is_unix, int *pathfd);
/* bind(2) of q->fd to the name `base` inside the directory `dfd`, with mode bits from `umask`.
 * 0 or -errno. Needs s->private_fs. */
NONO_HIDDEN int nono_sup_bind_at(struct rq *q, int dfd, const char *base, int umask);

/* ---- supervisor_decide.c ---- */
struct nono_sup_handler {
	int nr;
	const char *name;
	struct denial (*fn)(struct rq *q);
	int addr_arg, len_arg; /* -1: no address; SUP_NO_FD: arg 0 is not a socket either
				  (socket, socketpair): nothing is taken or read from the task */
	bool reads_itself;     /* the handler reads the request itself: no socket to take first */
};
#define SUP_NO_FD (-2)
/* The handler for a trapped syscall, or NULL: not in the closed table (denied). */
NONO_HIDDEN const struct nono_sup_handler *nono_sup_handler(int nr, uint32_t arch);
/* Pure policy checks (tests/unit/test_supervisor.c calls them too). */
NONO_HIDDEN bool nono_sup_is_loopback(const struct sockaddr_storage *a, socklen_t len,
				      uint16_t *port);
/* Is `a` the proxy: [::1]:port when `v6`, else 127.0.0.1:port (or its v4-mapped form, the same
 * IPv4 socket)? Exactly the address the proxy listens on: another program may hold the other
 * loopback address on the same port (review 2026-12-04 F2). */
NONO_HIDDEN bool nono_sup_is_proxy_addr(const struct sockaddr_storage *a, socklen_t len,
					uint16_t port, bool v6);

/* ---- supervisor_net.c: direct connects, refused socket kinds, routine misses ---- */
/* Copy the caps' internal destinations and size the bound-port flags. 0 or -ENOMEM. */
NONO_HIDDEN int nono_sup_direct_load(struct nono_supervisor *s, const nono_caps *caps);
NONO_HIDDEN void nono_sup_direct_free(struct nono_supervisor *s);
/* May a proxy-only command connect to `a` directly: an internal grant (exact address and port;
 * an IPv4 grant also in its v4-mapped form), or its own listener, i.e. a granted bind port on
 * loopback that was bound through us? */
NONO_HIDDEN bool nono_sup_direct_ok(struct nono_supervisor *s, const struct sockaddr_storage *a,
				    socklen_t len);
/* Remember that the loopback address `a` (a granted port) was bound through us. */
NONO_HIDDEN void nono_sup_mark_bound(struct nono_supervisor *s, const struct sockaddr_storage *a,
				     socklen_t len);
/* socket()/socketpair() of a kind the filter refuses (seccomp.c via_sup rows): EACCES, recorded
 * the first time per family and type. */
NONO_HIDDEN struct denial nono_sup_h_socket(struct rq *q);
/* A unix connect to a path that is a routine miss (the nscd socket glibc tries first): true
 * when it was recorded already, so the caller answers without recording again. */
NONO_HIDDEN bool nono_sup_routine_seen(struct nono_supervisor *s, const char *path);

/* ---- supervisor_meta.c: metadata writes and watches (issue 11) ---- */
/* The handler for every trapped metadata and watch syscall (chmod…, inotify_add_watch,
 * fanotify_mark): resolves the object itself, checks its real path against the grants, performs
 * the call on that object. */
NONO_HIDDEN struct denial nono_sup_meta(struct rq *q);
/* Copy every filesystem grant of `caps` (0 or -ENOMEM; nono_sup_meta_free releases either way). */
NONO_HIDDEN int nono_sup_meta_load(struct nono_supervisor *s, const nono_caps *caps);
NONO_HIDDEN void nono_sup_meta_free(struct nono_supervisor *s);
/* ---- supervisor_grants.c ---- */
/* Is canonical `canon` withheld from the command by its mount namespace: under a deny path, or
 * (for a write) under a read-only bind inside a writable grant? The supervisor resolves paths in
 * nono's own view, where those covers do not exist: every decision on a path asks this too. */
NONO_HIDDEN bool nono_sup_path_withheld(const struct nono_supervisor *s, const char *canon,
					bool write);
/* Is the canonical path `canon` inside a grant carrying all of `access`, and not withheld?
 * (tests call it too) */
NONO_HIDDEN bool nono_sup_meta_granted(const struct nono_supervisor *s, const char *canon,
				       unsigned access);
/* May a metadata change (need NONO_ACCESS_WRITE) or a watch (NONO_ACCESS_READ) touch the object
 * whose real path is `canon`? 0, or the errno to refuse with (EROFS under a read-only bind, else
 * EACCES) and *why the audit reason. Memoized by directory (s->memo; main thread only). */
NONO_HIDDEN int nono_sup_meta_verdict(struct nono_supervisor *s, const char *canon, unsigned need,
				      const char **why);
NONO_HIDDEN void nono_sup_memo_free(struct nono_supervisor *s);
/* The real path of our fd `fd` (readlink of its /proc fd link, through a kept
 * /proc/thread-self/fd of the calling thread), into `canon`; `proc` gets "/proc/self/fd/N", the
 * magic link naming exactly that object. 0 or -errno. */
NONO_HIDDEN int nono_sup_real_path(struct nono_supervisor *s, int fd, char proc[32], char *canon,
				   size_t size);
/* The magic link `proc` ("/proc/self/fd/N", from nono_sup_real_path) as a dirfd and name for an
 * *at call that follows it: N in the kept fd directory (one component to walk, not four), or
 * AT_FDCWD and `proc` without one. */
NONO_HIDDEN int nono_sup_proc_at(struct nono_supervisor *s, const char *proc, const char **name);
NONO_HIDDEN void nono_sup_fd_dir_close(struct nono_supervisor *s);

/* ---- supervisor.c ---- */
/* Lines the supervisor could not write to its audit fd (read before nono_supervisor_stop). */
NONO_HIDDEN uint64_t nono_supervisor_audit_write_errors(struct nono_supervisor *s);

#endif /* NONO_SUPERVISOR_INT_H */
