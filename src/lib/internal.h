/* internal.h — shared by the library's modules; never installed. */
#ifndef NONO_INTERNAL_H
#define NONO_INTERNAL_H

#include "nono.h"

#include <sys/types.h>
#include <errno.h>
#include <linux/filter.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define NONO_HIDDEN __attribute__((visibility("hidden")))

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- error.c ---- */
/* Fill `err` (may be NULL) and return `code` (a negative errno). printf-style message. */
NONO_HIDDEN int nono_fail(nono_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
NONO_HIDDEN void nono_error_clear(nono_error *err);

/* ---- cleanup helpers (bubblewrap style) ---- */
static inline void nono_freep(void *p) { free(*(void **)p); }
static inline void nono_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define cleanup_free __attribute__((cleanup(nono_freep)))
#define cleanup_fd __attribute__((cleanup(nono_closep)))
static inline void *nono_steal_ptr(void *pp)
{
	void **p = pp, *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) nono_steal_ptr(pp)
static inline int nono_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* ---- caps.c: read-only views for the enforcement modules ---- */
/* Resolved path of grant i via nono_caps_grant (public).
 * The one "path inside a grant" test: `path` and `grant` are canonical absolute paths. A directory
 * grant covers itself and everything below it ("/a" covers "/a/b", not "/ab"); a file grant covers
 * exactly itself. */
NONO_HIDDEN bool nono_path_within(const char *path, const char *grant, bool grant_is_dir);
/* The device and inode grant i's resolved path named when the grant was made (0 or -ERANGE). */
NONO_HIDDEN int nono_caps_grant_id(const nono_caps *caps, size_t i, dev_t *dev, ino_t *ino);

/* ---- json.c ---- */
/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF): the rule jansson applies
 * to every string it creates, and Rust's String. s[0..len) may hold NUL bytes. */
NONO_HIDDEN bool nono_utf8_valid(const unsigned char *s, size_t len);

/* ---- proc.c ---- */
/* One field of /proc/TID/status ("Threads", "Umask", "Tgid", … without the colon), parsed as a
 * number in `base` (Umask is octal). tid 0 = the calling process (/proc/self/status).
 * Returns 0, or -errno (-ENOENT: no such field; -EINVAL: not a number). */
NONO_HIDDEN int nono_proc_status_field(pid_t tid, const char *key, int base, long *out);
/* Several fields in one read of the file (exec.c wants two before every fork). Each f[i].key and
 * .base are in; .value and .rc (0, -ENOENT, -EINVAL as above) are out. Returns 0 when every field
 * was read, else the first field's error, or -errno when the file cannot be opened. */
struct nono_proc_field {
	const char *key;
	int base;
	long value;
	int rc;
};
NONO_HIDDEN int nono_proc_status_fields(pid_t tid, struct nono_proc_field *f, size_t n);

/* ---- sockopt.c: the socket options that re-route an approved connection (review F10, F11) ----
 * seccomp.c refuses setting each of them under blocked and proxy-only; the supervisor reads back
 * those marked `readable` on a socket it is about to connect, and refuses one that carries any. */
struct nono_sockopt {
	int level, optname;
	bool readable; /* getsockopt returns what was set (length 0 when unset) */
	const char *why;
};
NONO_HIDDEN extern const struct nono_sockopt nono_rerouting_sockopts[];
NONO_HIDDEN extern const size_t nono_rerouting_sockopts_n;

/* ---- landlock.c: the one table of Landlock ABI facts (kernel-facts.md) ---- */
struct nono_landlock_abi_row {
	int abi;
	const char *kernel;   /* first Linux release with it */
	const char *what;     /* what the ABI added, for reports */
	uint64_t fs_rights;   /* filesystem rights it added (0: none) */
};
NONO_HIDDEN extern const struct nono_landlock_abi_row nono_landlock_abis[];
#define NONO_LANDLOCK_ABI_KNOWN 7 /* rows in nono_landlock_abis; a newer kernel is used at 7 */
#define NONO_LANDLOCK_ABI_TCP 4    /* 6.7: TCP bind/connect port rules */
#define NONO_LANDLOCK_ABI_SCOPES 6 /* 6.12: abstract unix socket and signal scopes */
#define NONO_LANDLOCK_ABI_TRUNCATE 3
/* FS rights the kernel handles at `abi`, and those our model wants that `abi` cannot handle. */
NONO_HIDDEN uint64_t nono_landlock_fs_handled(int abi);
NONO_HIDDEN uint64_t nono_landlock_fs_unenforced(int abi);
/* Comma-separated names of FS rights ("read_file,truncate"), "none" for 0. */
NONO_HIDDEN void nono_landlock_rights_text(uint64_t rights, char *buf, size_t len);

/* ---- support.c: what this kernel and process offer, the only place that probes ---- */
struct nono_kernel {
	int landlock_abi;         /* what we will use: min(kernel, known, cap); -1: the cap is invalid */
	int landlock_abi_kernel;  /* what the kernel offers */
	char landlock_cap[48];    /* what capped it ("NONO_MAX_LANDLOCK_ABI=3"), "" if nothing */
	bool seccomp_filter;      /* CONFIG_SECCOMP_FILTER */
	bool x86_64;              /* the only architecture our filter is written for */
	int user_notif;           /* a listener can be had: 0, -EOPNOTSUPP (< 5.0), -EBUSY (another
	                             supervisor already watches this process) */
	bool pidfd_getfd;         /* 5.6 */
	bool wait_killable_recv;  /* 5.19 */
	int stdio_dgram_fd;       /* process fact: the first of fds 0-2 holding a datagram, raw or
	                             packet socket, else -1 */
	bool mount_ns;            /* a private mount namespace (with a user namespace when
	                             unprivileged) and a tmpfs can be made here (mounts.c) */
};
NONO_HIDDEN void nono_kernel_probe(struct nono_kernel *k);
/* Can a private mount namespace be made here (mounts.c)? Probed once, on first use (a fork). */
NONO_HIDDEN bool nono_kernel_mount_ns(void);
/* Effective Landlock ABI (kernel ABI, capped by nono_set_max_landlock_abi / NONO_MAX_LANDLOCK_ABI),
 * -EINVAL when the cap is invalid. */
NONO_HIDDEN int nono_landlock_abi(void);

/* ---- plan.c: the one decision step ----
 * nono_plan_decide computes everything from the caps, the kernel facts and the flags: the enforced
 * network mode, supervisor or not, the Landlock ABI, rights and rules, the seccomp variant, and every
 * downgrade with its reason (plan->report). It makes no syscall. The builders (landlock.c,
 * seccomp.c) then build exactly what the plan says and never decide again. */

/* seccomp variant: which rules of seccomp.c's table apply (a rule applies when any of its bits is
 * set in the plan's variant). */
enum {
	NONO_SC_ALWAYS = 1u << 0,
	NONO_SC_BLOCKED = 1u << 1,  /* network blocked (supervised or not) */
	NONO_SC_PROXY = 1u << 2,    /* network proxy-only (always supervised) */
	NONO_SC_NOTIFY = 1u << 3,   /* a supervisor decides addresses */
	NONO_SC_NONOTIFY = 1u << 4, /* network restricted, no supervisor: address syscalls denied */
	NONO_SC_OLD_LL = 1u << 5,   /* Landlock ABI < 3: the filter closes truncation */
	NONO_SC_NO_USERNS = 1u << 6, /* user namespaces refused (not nono_caps_set_user_namespaces) */
	NONO_SC_META = 1u << 8,     /* Landlock on, a supervisor: metadata writes and watches go to it */
	NONO_SC_NOMETA = 1u << 9,   /* Landlock on, no supervisor: metadata writes and watches denied */
};

/* One step of the command's private mount namespace (mounts.c), applied in order. */
struct nono_mount_op {
	char kind;        /* 'r' read-only bind, 'w' writable bind, 'd' deny cover; 0 ends the list */
	const char *path; /* a grant's or deny path's canonical path (borrowed from the caps) */
};

struct nono_plan {
	/* decided (plan.c) */
	nono_net_mode net;          /* the network mode enforced (may be tighter than requested) */
	uint16_t proxy_port;        /* proxy-only: the proxy's port (0: not chosen yet; plans only) */
	bool proxy_v6;              /* proxy-only: the proxy is [::1]:proxy_port, not 127.0.0.1 */
	bool notify;                /* a supervisor decides addresses: the filter makes a listener */
	int landlock_abi;           /* 0: no Landlock */
	uint64_t fs_handled;        /* FS rights the ruleset handles */
	bool landlock_tcp;          /* TCP port rules: connect to proxy_port (proxy-only), bind ports */
	uint64_t landlock_scoped;   /* LANDLOCK_SCOPE_* */
	bool seccomp;               /* install the filter */
	unsigned seccomp_variant;   /* NONO_SC_* */
	unsigned seccomp_flags;     /* SECCOMP_FILTER_FLAG_* for seccomp(2), NEW_LISTENER excluded */
	struct nono_mount_op *mount_ops; /* the command's private mount namespace (mounts.c): an
	                               array ended by kind 0 (owned; paths borrowed from the caps),
	                               NULL when none is needed */
	nono_report report;
	/* built (landlock.c, seccomp.c) */
	int ruleset_fd;             /* Landlock ruleset, -1 if none */
	unsigned restrict_flags;    /* landlock_restrict_self flags */
	struct sock_fprog prog;     /* seccomp program (prog.filter malloc'd), len 0 if none */
};

NONO_HIDDEN int nono_plan_decide(const nono_caps *caps, const struct nono_kernel *k, unsigned flags,
				 struct nono_plan *plan, nono_error *err);
/* Probe, decide and build everything in the parent, for a plan that will be entered (a proxy-only
 * port must be known). May allocate and open fds (O_CLOEXEC). On failure returns -errno with `err`
 * set, plan->report still says what was decided, and nothing is left to release. */
NONO_HIDDEN int nono_plan_prepare(const nono_caps *caps, unsigned flags, struct nono_plan *plan,
				  nono_error *err);
/* Enter the sandbox: no_new_privs, Landlock, seccomp. Async-signal-safe (raw syscalls only), safe
 * to call between fork and execve. *listener_fd gets the notification fd when plan->notify, else -1.
 * Returns 0 or -errno. */
NONO_HIDDEN int nono_plan_enter(const struct nono_plan *plan, int *listener_fd);
NONO_HIDDEN void nono_plan_release(struct nono_plan *plan);

/* mounts.c: what Landlock's adding-up rights cannot say, made true in a private mount namespace
 * of nono_exec's command: deny paths inside grants (nono_caps_deny_path) covered, and read-only
 * grants inside writable grants bound read-only. nono_mounts_decide is the plan's step
 * (plan->mount_ops, report->deny_mounts / ro_binds where k->mount_ns; else -EOPNOTSUPP, or with
 * best effort a downgrade). nono_mounts_enter (the exec child, before Landlock) makes the
 * namespace and applies the ops, 0 or -errno. nono_mounts_probe_child (a forked child of
 * support.c) returns 0 when a namespace and a tmpfs can be made here, else an errno.
 * nono_mounts_write_blocked: would a read-only bind stop a write to canonical `p`? (caps_query.c) */
NONO_HIDDEN int nono_mounts_decide(const nono_caps *caps, const struct nono_kernel *k,
				   bool best_effort, struct nono_plan *plan, nono_error *err);
NONO_HIDDEN int nono_mounts_enter(const struct nono_mount_op *ops);
NONO_HIDDEN int nono_mounts_probe_child(void);
/* The exec child, root only: CAP_DAC_READ_SEARCH goes. Through any mount the command can reach (a
 * host bind mount under a grant, a read-only bind) open_by_handle_at, which needs it, opens any
 * file of that filesystem, and Landlock judges the disconnected path by the mount's root; reading
 * and writing files keep CAP_DAC_OVERRIDE. 0 or -errno. */
NONO_HIDDEN int nono_drop_read_search(void);
NONO_HIDDEN bool nono_mounts_write_blocked(const nono_caps *caps, const char *p);
/* caps_deny.c: the deny path covering canonical absolute `p` (equal or below), or NULL. */
NONO_HIDDEN const char *nono_caps_denied_by(const nono_caps *caps, const char *p);
/* Does `caps` need the namespace at all (a deny path or read-only grant inside a grant)? */
NONO_HIDDEN bool nono_mounts_wanted(const nono_caps *caps);

/* landlock.c: the ruleset the plan describes. *ruleset_fd = -1 when the plan has no Landlock. */
NONO_HIDDEN int nono_landlock_build(const nono_caps *caps, const struct nono_plan *plan,
				    int *ruleset_fd, nono_error *err);
/* seccomp.c: the BPF program for the plan's variant (arch check first). */
NONO_HIDDEN int nono_seccomp_build(unsigned variant, struct sock_fprog *prog, nono_error *err);

/* report.c: render plan->report's text from its fields. */
NONO_HIDDEN void nono_report_render(nono_report *r);
/* Append one downgrade reason (printf-style). Past NONO_REPORT_DOWNGRADES_MAX the last entry says
 * that more were cut. */
NONO_HIDDEN void nono_report_downgrade(nono_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- supervisor.c (loop, lifecycle), supervisor_io.c (reading and answering the child),
 * supervisor_decide.c (the dispatch table and the decisions) ---- */
struct nono_supervisor;
/* What the supervisor enforces and where its events go: `net` and `proxy_port` come from the plan
 * (the enforced mode, never the caps' request); the grants (unix sockets, bind ports, writable
 * directories) from the caps. */
struct nono_sup_config {
	nono_net_mode net;
	uint16_t proxy_port;
	bool proxy_v6;      /* the proxy's address: ::1, else 127.0.0.1 */
	nono_audit *ring;   /* borrowed, may be NULL */
	int audit_fd;       /* borrowed; JSON lines appended; <= 0: none */
	bool audit_allowed; /* record allowed calls too */
};
/* Start deciding notifications from `listener_fd` (ownership taken). Runs on its own thread. */
NONO_HIDDEN int nono_supervisor_start(int listener_fd, const nono_caps *caps,
				      const struct nono_sup_config *cfg,
				      struct nono_supervisor **out, nono_error *err);
/* Stop the thread, close the listener (trapped calls then fail with ENOSYS) and free. Returns how
 * many events could not be written to cfg->audit_fd (0 for NULL). */
NONO_HIDDEN uint64_t nono_supervisor_stop(struct nono_supervisor *s);
/* The supervisor's state and loop, shared by the thread (supervisor.c) and the in-process apply
 * helper process (supervisor_helper.c). nono_sup_new takes ownership of `listener`. */
NONO_HIDDEN int nono_sup_new(int listener, const nono_caps *caps, const struct nono_sup_config *cfg,
			     struct nono_supervisor **out, nono_error *err);
NONO_HIDDEN void *nono_sup_main(void *arg);

/* ---- supervisor_helper.c: in-process nono_apply with a supervised network ----
 * Called by nono_apply before the filter is installed: forks a helper process that will supervise
 * the caller (and exits when the caller exits). The handle carries the handoff fd (O_CLOEXEC) and
 * the helper's pid. */
struct nono_sup_helper {
	int fd;
	pid_t pid;
};
NONO_HIDDEN int nono_supervisor_helper_fork(const nono_caps *caps, const struct nono_sup_config *cfg,
					    struct nono_sup_helper *h, nono_error *err);
/* After nono_plan_enter produced `listener_fd` in the caller: give it to the helper and close the
 * caller's copies of both fds. Makes no syscall the filter traps. */
NONO_HIDDEN int nono_supervisor_helper_handoff(struct nono_sup_helper *h, int listener_fd,
					       nono_error *err);

/* ---- env.c: one builder for every child environment (exec, proxy env, bindings) ----
 * Result = (inherit ? environ minus loader variables : empty), then `extra`, then `overrides`; a later
 * NAME replaces an earlier one. Entries must be "NAME=VALUE" with a valid non-empty NAME; a loader
 * variable in `extra` or `overrides` is -EINVAL naming it. *out: malloc'd NULL-terminated vector,
 * free with nono_strv_free. */
NONO_HIDDEN int nono_env_build(bool inherit, const char *const *extra, const char *const *overrides,
			       char ***out, nono_error *err);

/* ---- error.c: threads ----
 * Start a library thread that takes no signals (all blocked while it is created, so it inherits
 * that mask): the embedding program's handlers stay on its own threads (Python runs its handlers on
 * the main thread only). Returns 0 or a positive errno, as pthread_create. */
NONO_HIDDEN int nono_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
				  void *arg);

/* ---- time ---- */
NONO_HIDDEN int64_t nono_now_unix_ms(void);

#endif /* NONO_INTERNAL_H */
