/* nono.h — the public C interface of libnono, a capability sandbox for untrusted processes.
 *
 * Conventions (all functions):
 * - Functions that can fail return 0 on success or a negative errno from the set documented on the
 *   function. When `err` is non-NULL it receives the code and a one-line human message; `err` is always
 *   caller-owned (usually on the stack). The library never prints and never aborts.
 * - "Copies" means the library keeps its own copy of an argument; "borrowed" means a returned pointer
 *   stays owned by the object it came from and is valid until that object is changed or freed;
 *   "caller frees with free()" means the returned buffer was allocated with malloc().
 * - Every fd the library opens is O_CLOEXEC; none is ever inherited by a sandboxed child.
 */
#ifndef NONO_H
#define NONO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NONO_BUILDING_LIB)
#define NONO_API __attribute__((visibility("default")))
#else
#define NONO_API
#endif

/* ------------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------------- */

#define NONO_ERROR_MSG_MAX 512

/* Caller-owned error detail. `code` is the same negative errno the function returned. */
typedef struct nono_error {
	int code;
	char message[NONO_ERROR_MSG_MAX];
} nono_error;

/* ------------------------------------------------------------------------------------------------
 * Capability sets
 * ---------------------------------------------------------------------------------------------- */

typedef enum nono_access {
	NONO_ACCESS_READ = 1,
	NONO_ACCESS_WRITE = 2,
	NONO_ACCESS_READ_WRITE = 3,
} nono_access;

typedef enum nono_net_mode {
	NONO_NET_ALLOWED = 0,    /* default: network not restricted */
	NONO_NET_BLOCKED = 1,    /* no IP socket of any kind, no packet sockets */
	NONO_NET_PROXY_ONLY = 2, /* TCP to 127.0.0.1/::1 on the proxy port, nothing else */
} nono_net_mode;

typedef struct nono_caps nono_caps;

/* One filesystem grant. Strings are borrowed from the capability set. */
typedef struct nono_grant {
	const char *original; /* the path as the caller gave it */
	const char *resolved; /* canonical absolute path (symlinks resolved) */
	nono_access access;
	bool is_file; /* true: a single file; false: a directory and everything under it */
} nono_grant;

/* Names used everywhere (CLI, JSON, reports, bindings): "read", "write", "read-write" and
 * "allowed", "blocked", "proxy-only". Static strings; NULL for a value outside the enum. */
NONO_API const char *nono_access_name(nono_access access);
NONO_API const char *nono_net_mode_name(nono_net_mode mode);

/* New empty set: no paths, network allowed. Returns NULL only when out of memory.
 * Free with nono_caps_free(). */
NONO_API nono_caps *nono_caps_new(void);
/* Frees the set; NULL is a no-op. */
NONO_API void nono_caps_free(nono_caps *caps);
/* Deep copy; NULL when out of memory. */
NONO_API nono_caps *nono_caps_clone(const nono_caps *caps);

/* Grant a directory (and everything below it). The path is copied and canonicalised now.
 * Errors: -ENOENT missing path, -ENOTDIR path is not a directory, -EINVAL bad mode or empty path,
 * -ENAMETOOLONG, -EACCES/-ELOOP from resolving, -ENOMEM. */
NONO_API int nono_caps_allow_path(nono_caps *caps, const char *path, nono_access access,
				  nono_error *err);
/* Grant a single non-directory file. Errors as nono_caps_allow_path, but -EISDIR for a directory. */
NONO_API int nono_caps_allow_file(nono_caps *caps, const char *path, nono_access access,
				  nono_error *err);
/* Number of grants, and grant `i` (0-based). nono_caps_grant returns -ERANGE past the end. */
NONO_API size_t nono_caps_grant_count(const nono_caps *caps);
NONO_API int nono_caps_grant(const nono_caps *caps, size_t i, nono_grant *out);
/* Merge grants with the same resolved path and kind (access modes are united), keeping first order. */
NONO_API void nono_caps_deduplicate(nono_caps *caps);
/* True when `path` (canonicalised if it exists, else made absolute lexically) lies inside a grant. */
NONO_API bool nono_caps_path_covered(const nono_caps *caps, const char *path);

/* Network mode. For NONO_NET_PROXY_ONLY `proxy_port` is the proxy's port (1..65535), or 0 for "chosen
 * when the proxy starts": a plan (nono_plan_report) accepts 0 and reports the port as not yet known,
 * while nono_apply and nono_exec refuse it (-EINVAL). For the other modes it must be 0.
 * The last call wins. Errors: -EINVAL. */
NONO_API int nono_caps_set_network(nono_caps *caps, nono_net_mode mode, uint16_t proxy_port,
				   nono_error *err);
/* The loopback address the proxy listens on, for proxy-only: "127.0.0.1" (the default) or "::1".
 * Only that address on the proxy port is reachable (for 127.0.0.1 also its v4-mapped form
 * ::ffff:127.0.0.1, the same socket): another program's listener on the other loopback address and
 * the same port is not. Errors: -EINVAL (any other address). */
NONO_API int nono_caps_set_proxy_address(nono_caps *caps, const char *addr, nono_error *err);
/* "127.0.0.1" or "::1" (static string). */
NONO_API const char *nono_caps_proxy_address(const nono_caps *caps);
/* Current mode; stores the proxy port in *proxy_port when non-NULL (0 unless proxy-only). */
NONO_API nono_net_mode nono_caps_network(const nono_caps *caps, uint16_t *proxy_port);

/* Allow connect() to one pathname unix socket, or to any socket inside a directory. Without such a
 * grant, pathname unix connects are denied under `blocked` and `proxy-only`.
 * Errors: -ENOENT, -EINVAL, -ENOMEM. */
NONO_API int nono_caps_allow_unix_socket(nono_caps *caps, const char *path, nono_error *err);
/* Allow bind()/listen() on one TCP port, loopback only. Errors: -EINVAL (port 0), -ENOMEM. */
NONO_API int nono_caps_allow_bind(nono_caps *caps, uint16_t port, nono_error *err);
NONO_API size_t nono_caps_unix_socket_count(const nono_caps *caps);
NONO_API const char *nono_caps_unix_socket(const nono_caps *caps, size_t i); /* borrowed */
NONO_API size_t nono_caps_bind_port_count(const nono_caps *caps);
NONO_API uint16_t nono_caps_bind_port(const nono_caps *caps, size_t i);

/* One-line human summary, e.g. "2 paths (1 read, 1 read-write), network: proxy-only(3128)".
 * Caller frees with free(); NULL when out of memory. */
NONO_API char *nono_caps_summary(const nono_caps *caps);

/* ---- Queries (no enforcement, pure policy) ---- */

#define NONO_REASON_MAX 256
#define NONO_PATH_MAX 4096

typedef struct nono_decision {
	bool allowed;
	char reason[NONO_REASON_MAX];   /* why, in one line */
	char grant[NONO_PATH_MAX];      /* resolved path of the grant that decided it, "" if none */
} nono_decision;

/* May `path` be accessed with `access`? Rights add up along the hierarchy, as Landlock does: a write
 * under a read-write directory is allowed even when a nearer grant is read-only. `grant` names the
 * nearest grant holding all requested rights, else the nearest covering grant.
 * Errors: -EINVAL (bad mode / empty path), -ENOENT / -ENOMEM (relative path with a deleted cwd). */
NONO_API int nono_caps_query_path(const nono_caps *caps, const char *path, nono_access access,
				  nono_decision *out, nono_error *err);
/* Is (general outbound) network allowed? */
NONO_API void nono_caps_query_network(const nono_caps *caps, nono_decision *out);

/* ---- JSON (jansson) ---- */

/* Serialise. Caller frees with free(). Errors: -ENOMEM, -EINVAL (a resolved path that is not valid
 * UTF-8 cannot be written as JSON; the message names the field). */
NONO_API char *nono_caps_to_json(const nono_caps *caps, nono_error *err);
/* Parse and strictly validate (unknown keys, wrong types, bad modes, NUL bytes, missing paths are
 * errors). Returns a new set (free with nono_caps_free) or NULL with `err` set (-EINVAL, -ENOENT…). */
NONO_API nono_caps *nono_caps_from_json(const char *json, size_t len, nono_error *err);

/* ------------------------------------------------------------------------------------------------
 * Kernel support
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_support {
	char kernel_release[65];
	int landlock_abi_kernel;  /* what the kernel offers; 0 = no Landlock */
	int landlock_abi_cap;     /* the configured cap (0 = none; -1 = NONO_MAX_LANDLOCK_ABI holds an
	                             invalid value, and every plan/apply/exec is refused) */
	int landlock_abi;         /* what the library will use: min(kernel, cap) */
	bool landlock_fs;         /* abi >= 1 */
	bool landlock_refer;      /* abi >= 2 */
	bool landlock_truncate;   /* abi >= 3 */
	bool landlock_tcp;        /* abi >= 4 */
	bool landlock_ioctl_dev;  /* abi >= 5 */
	bool landlock_scopes;     /* abi >= 6 */
	bool landlock_log_flags;  /* abi >= 7 */
	bool seccomp_filter;
	bool seccomp_user_notif;  /* 5.0 */
	bool pidfd_getfd;         /* 5.6 */
	bool wait_killable_recv;  /* 5.19 */
	bool sync_wakeup;         /* 6.6 */
	bool x86_64;              /* running on x86_64 (i386/x32 checks apply) */
} nono_support;

/* Probe the running kernel (cheap; not cached). Always fills *out; returns 0. */
NONO_API int nono_support_query(nono_support *out);
/* Multi-line human report. Caller frees with free(); NULL when out of memory. */
NONO_API char *nono_support_text(const nono_support *s);
/* JSON object text. Caller frees with free(); NULL when out of memory. */
NONO_API char *nono_support_json(const nono_support *s);

/* Cap the Landlock ABI this process will use (a test knob: it makes the pre-6.7 enforcement path run
 * on a new kernel). 0 removes the cap. The environment variable NONO_MAX_LANDLOCK_ABI=N is read once
 * at the first query if no cap was set through this call: unset, empty or "0" means no cap, "1".."64"
 * caps; anything else fails closed (every plan, apply and exec is refused with -EINVAL naming the
 * variable), so a typo cannot silently move a test onto another enforcement path.
 * Errors: -EINVAL (abi < 0 or > 64). */
NONO_API int nono_set_max_landlock_abi(int abi);

/* ------------------------------------------------------------------------------------------------
 * Enforcement
 * ---------------------------------------------------------------------------------------------- */

/* Downgrade instead of refusing when the kernel lacks something; the report says what was enforced. */
#define NONO_FLAG_BEST_EFFORT (1u << 0)

#define NONO_REPORT_DOWNGRADES_MAX 6

/* What a plan enforces, as structured fields; `text` and nono_report_json() are rendered from them
 * (never the other way round). */
typedef struct nono_report {
	int landlock_abi;         /* ABI applied; 0 = Landlock not applied */
	int landlock_abi_kernel;  /* ABI the kernel offers; 0 = none */
	char landlock_cap[48];    /* what capped the ABI, e.g. "NONO_MAX_LANDLOCK_ABI=3"; "" = nothing */
	uint64_t fs_handled;      /* Landlock FS rights handled by the ruleset */
	uint64_t fs_unenforced;   /* rights our policy wanted restricted that this ABI cannot handle */
	size_t grants;            /* filesystem grants (Landlock rules) */
	bool landlock_tcp;        /* Landlock TCP port rules applied (ABI 4) */
	bool landlock_scopes;     /* signal scope applied (ABI 6) */
	bool scope_abstract_unix; /* abstract unix sockets scoped too (network restricted, ABI 6) */
	bool seccomp;             /* seccomp-bpf filter installed */
	bool truncate_by_filter;  /* below ABI 3: the filter closes truncation that needs no write fd */
	bool supervisor;          /* user-notification supervisor decides network syscalls */
	bool no_new_privs;
	nono_net_mode net_requested;
	nono_net_mode net_enforced;   /* what the kernel really enforces (best effort may tighten) */
	uint16_t proxy_port;          /* proxy-only requested: the port asked for (0 = chosen when the
	                                 proxy starts); reachable only if net_enforced is proxy-only */
	size_t bind_ports;            /* TCP ports the command may bind (loopback), as enforced */
	size_t unix_sockets;          /* unix socket grants honoured (0 without a supervisor) */
	bool downgraded;              /* something asked for was not enforced (best effort only) */
	unsigned n_downgrades;        /* entries in downgrades[] */
	char downgrades[NONO_REPORT_DOWNGRADES_MAX][NONO_REASON_MAX]; /* one reason each */
	char text[1536];              /* one line a layer, human readable, rendered from the fields */
} nono_report;

/* The report as a JSON object (keys are the field names above; fs rights as arrays of names, the
 * network modes by nono_net_mode_name, proxy_port null when not chosen yet, `text` as an array of
 * lines). Caller frees with free(); NULL when out of memory or `r` is NULL. */
NONO_API char *nono_report_json(const nono_report *r);

/* The capability set is an allow-list and Landlock is always applied: an empty set means no
 * filesystem access at all. Best effort never opens the network: proxy-only without a seccomp
 * listener becomes blocked; without Landlock the filesystem stays unrestricted, and fs_unenforced
 * says so.
 *
 * Sandbox the calling process, irreversibly. Refuses with -EBUSY if the process has more than one
 * thread, and with -EOPNOTSUPP (message names the missing layer) if the policy needs something this
 * kernel cannot enforce and NONO_FLAG_BEST_EFFORT is not set. `report` (optional) receives what was
 * enforced. For proxy-only, a supervisor helper process is forked first; it exits with this process.
 * -EINVAL also for combinations that mean nothing, refused alike by every front end: unix-socket or
 * bind grants with the network allowed, bind grants under blocked, a datagram/raw socket on stdio
 * under a restricted network, and proxy-only with port 0 (not chosen yet).
 * Errors: -EBUSY, -EOPNOTSUPP, -EINVAL, -ENOMEM, and errno values of the failing syscall. */
NONO_API int nono_apply(const nono_caps *caps, unsigned flags, nono_report *report, nono_error *err);

/* Describe, without applying, what nono_apply / nono_exec would enforce on this kernel. Fills
 * `report` the same way, also when it refuses. Returns the error nono_apply would return (-EOPNOTSUPP
 * for a missing layer, -EINVAL for a refused combination), with a message. Unlike them it accepts
 * proxy-only with port 0 and reports proxy_port 0 ("chosen when the proxy starts"). */
NONO_API int nono_plan_report(const nono_caps *caps, unsigned flags, nono_report *report,
			      nono_error *err);

/* ------------------------------------------------------------------------------------------------
 * Audit events (shared by the proxy and the network supervisor)
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_audit nono_audit;

typedef struct nono_audit_event {
	int64_t timestamp_unix_ms;
	char source[12];       /* "proxy" | "supervisor" */
	char mode[16];         /* proxy: "connect" | "http"; supervisor: the syscall name */
	char decision[8];      /* "allow" | "deny" */
	char family[8];        /* "inet" | "inet6" | "unix" | "" */
	char target[256];      /* host name or address, or unix socket path */
	uint16_t port;
	char method[16];
	char path[512];
	int status;            /* HTTP status (proxy), or errno returned (supervisor), 0 if none */
	char reason[NONO_REASON_MAX];
	uint64_t bytes_up;     /* client -> upstream, on close */
	uint64_t bytes_down;   /* upstream -> client, on close */
} nono_audit_event;

/* The supervisor records every denial, and allowed calls too when asked (nono_exec_opts
 * audit_allowed). The proxy records every decision and a close event with the bytes.
 *
 * A bounded, thread-safe ring of events. When full, the oldest event is dropped and counted.
 * Returns NULL when out of memory or capacity == 0. */
NONO_API nono_audit *nono_audit_new(size_t capacity);
NONO_API void nono_audit_free(nono_audit *a);
/* Move up to `max` oldest events into `out`; returns how many. */
NONO_API size_t nono_audit_drain(nono_audit *a, nono_audit_event *out, size_t max);
/* Events dropped because the ring was full, since creation. */
NONO_API uint64_t nono_audit_dropped(const nono_audit *a);
/* Record one event (the library uses this; harnesses may too). Thread-safe. */
NONO_API void nono_audit_push(nono_audit *a, const nono_audit_event *ev);

/* The one JSON form of an event, used by the proxy's and the supervisor's audit logs and the CLI:
 * a single line ending in '\n', keys in this order: ts_ms, source, mode, decision, family, target,
 * port, method, path, status, reason, bytes_up, bytes_down. Each string field is read up to its
 * size (no NUL needed); bytes that are not valid UTF-8 become '?', so no event is ever dropped for
 * its bytes. Writes into `buf` (NUL-terminated) and returns the line's length without the NUL;
 * NONO_AUDIT_LINE_MAX always suffices. Errors: -EINVAL (NULL argument), -ENOSPC (`len` too small:
 * nothing usable is written). */
#define NONO_AUDIT_LINE_MAX 8192
NONO_API int nono_audit_event_format(const nono_audit_event *ev, char *buf, size_t len);

/* ------------------------------------------------------------------------------------------------
 * Sandboxed exec
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_exec_opts {
	const char *cwd;              /* NULL: the caller's cwd */
	const char *const *env;       /* NULL-terminated "NAME=VALUE" list, copied; may be NULL */
	bool inherit_env;             /* start from the caller's environment (loader vars removed) */
	double timeout_secs;          /* 0: none. On expiry the whole process group is killed */
	bool capture;                 /* capture stdout/stderr into the result; else pass through */
	bool pass_stdin;              /* child reads our stdin; else /dev/null */
	unsigned flags;               /* NONO_FLAG_BEST_EFFORT */
	nono_audit *audit;            /* optional: receives supervisor events (borrowed) */
	int audit_fd;                 /* optional: the supervisor appends each event to this fd as a
	                                 JSON line (nono_audit_event_format), from its own thread;
	                                 borrowed, the caller opens it (O_APPEND) and closes it after
	                                 nono_exec returns. nono_exec_opts_init sets -1; 0 and
	                                 negative values mean none (stdin is never an audit log) */
	bool audit_allowed;           /* record allowed supervised calls too (default: denials) */
	bool foreground;              /* CLI: give the child the terminal (interactive commands). Takes
	                                 effect only when the child's stdin/stdout are ours and our fds 0
	                                 and 1 are the terminal in the foreground; then the child gets
	                                 its own process group as the terminal's foreground group, ^Z is
	                                 followed, and the terminal is given back afterwards. */
	bool forward_signals;         /* pass SIGTERM, SIGHUP, SIGINT and SIGQUIT sent to the caller
	                                 while the command runs on to the command's process group
	                                 (from nono_exec's own wait loop, through a signalfd: no
	                                 thread, no handler). The caller must block these four in
	                                 every thread first (pthread_sigmask, before it starts any
	                                 thread), else -EINVAL. Signals that arrive when no command
	                                 runs (before the fork, after it ended) stay pending for the
	                                 caller. Default false: they are the caller's business. */
} nono_exec_opts;

typedef struct nono_exec_result {
	int exit_code;        /* exit status; 124 on timeout; -signo when killed by a signal */
	int term_signal;      /* signal that ended the child, 0 if it exited */
	bool timed_out;
	unsigned char *out;   /* captured stdout (malloc'd, may be NULL when empty) */
	size_t out_len;
	unsigned char *err;   /* captured stderr */
	size_t err_len;
	nono_report report;   /* what was enforced */
	uint64_t audit_lost;  /* supervisor events that could not be written to opts.audit_fd (the
	                         ring's drops are nono_audit_dropped's); 0 when all were written */
} nono_exec_result;

/* Zero-initialise options (all defaults). */
NONO_API void nono_exec_opts_init(nono_exec_opts *opts);

/* Run argv[0] (searched in PATH of the child's environment, else the default path) under `caps`.
 * Environment variables that control the loader (LD_*, DYLD_*, …) are rejected in `env` (-EINVAL);
 * with inherit_env they are dropped from the inherited set. The command runs in a new session (or,
 * with `foreground`, its own process group); when it exits, what it left in that group is killed.
 * Returns 0 when the program ran (whatever its exit status). Errors: -ENOENT program not found,
 * -EACCES program not executable (or not executable under this policy), -EINVAL bad arguments or a
 * bad cwd or a grant path that vanished, -EOPNOTSUPP the kernel cannot enforce the policy (or
 * entering it failed in the child, e.g. EBUSY under another supervisor: the command never runs
 * unsupervised), -EFBIG a captured stream passed 64 MiB (the child was killed; nothing is silently
 * truncated), -ENOMEM, other errno from fork/pipe. `result` must be freed with
 * nono_exec_result_free. */
NONO_API int nono_exec(const nono_caps *caps, const char *const *argv, const nono_exec_opts *opts,
		       nono_exec_result *result, nono_error *err);
NONO_API void nono_exec_result_free(nono_exec_result *result);

/* Is `name` (without "=value") a loader-control variable we refuse (LD_*, DYLD_*, …)? */
NONO_API bool nono_env_name_is_loader(const char *name);

/* ------------------------------------------------------------------------------------------------
 * The filtering proxy
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_proxy_config nono_proxy_config;
typedef struct nono_proxy nono_proxy;

typedef struct nono_proxy_limits {
	size_t max_header_bytes;       /* default 32 KiB */
	unsigned header_timeout_ms;    /* default 10000 (slowloris) */
	unsigned idle_timeout_ms;      /* default 300000 for tunnels */
	unsigned max_connections;      /* default 256; excess get 503 */
} nono_proxy_limits;

/* Defaults: deny every host, listen 127.0.0.1 on an ephemeral port, token required. */
NONO_API nono_proxy_config *nono_proxy_config_new(void);
NONO_API void nono_proxy_config_free(nono_proxy_config *cfg);
/* "host", "host:port", "*.suffix", "*.suffix:port". Copies. Errors: -EINVAL (message says why). */
NONO_API int nono_proxy_config_allow_host(nono_proxy_config *cfg, const char *pattern,
					  nono_error *err);
/* Like nono_proxy_config_allow_host, but the host may be reached only through CONNECT tunnels,
 * never with plain (absolute-form) HTTP. Copies. Errors: -EINVAL. */
NONO_API int nono_proxy_config_allow_host_connect_only(nono_proxy_config *cfg, const char *pattern,
						       nono_error *err);
/* Allow one internal (loopback/private) "host:port" explicitly. Metadata endpoints are refused
 * (-EPERM). Errors: -EINVAL, -EPERM. */
NONO_API int nono_proxy_config_allow_internal(nono_proxy_config *cfg, const char *host_port,
					      nono_error *err);
/* Allow every public host (internal addresses stay denied). Not together with an allowlist
 * (nono_proxy_config_check). */
NONO_API void nono_proxy_config_allow_all_hosts(nono_proxy_config *cfg, bool on);
/* Refuse options that contradict each other (an allowlist together with allow-all-hosts): the one
 * check every front end gets, also made by nono_proxy_start. Errors: -EINVAL with the message. */
NONO_API int nono_proxy_config_check(const nono_proxy_config *cfg, nono_error *err);
/* Listen address (IPv4/IPv6 literal) and port (0 = ephemeral). Errors: -EINVAL. */
NONO_API int nono_proxy_config_set_listen(nono_proxy_config *cfg, const char *addr, uint16_t port,
					  nono_error *err);
/* Copies the limits; zero fields keep their defaults. */
NONO_API void nono_proxy_config_set_limits(nono_proxy_config *cfg, const nono_proxy_limits *lim);
/* Append JSON lines to `path` (opened O_APPEND|O_CLOEXEC at start). Copies. */
NONO_API int nono_proxy_config_set_audit_log(nono_proxy_config *cfg, const char *path,
					     nono_error *err);
/* Compatibility: accept CONNECT without the token (plain HTTP still needs it). Default off. */
NONO_API void nono_proxy_config_set_connect_without_token(nono_proxy_config *cfg, bool on);

/* Start the proxy on its own thread. The config is copied. *out freed by nono_proxy_stop.
 * Errors: -EADDRINUSE, -EINVAL, -ENOMEM, errno from socket/bind/thread creation. */
NONO_API int nono_proxy_start(const nono_proxy_config *cfg, nono_proxy **out, nono_error *err);
/* Stop the thread, close every connection and free. Returns after the proxy's threads have exited;
 * a DNS lookup in flight finishes in the background (glibc's getaddrinfo cannot be cancelled
 * safely). NULL is a no-op. */
NONO_API void nono_proxy_stop(nono_proxy *p);
NONO_API uint16_t nono_proxy_port(const nono_proxy *p);
/* The session token (borrowed) and the URL "http://nono:TOKEN@127.0.0.1:PORT" (borrowed). */
NONO_API const char *nono_proxy_token(const nono_proxy *p);
NONO_API const char *nono_proxy_url(const nono_proxy *p);
/* The proxy's audit ring (borrowed): drain it with nono_audit_drain. */
NONO_API nono_audit *nono_proxy_audit(nono_proxy *p);
/* Child environment: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (+ lowercase), NO_PROXY,
 * NODE_USE_ENV_PROXY=1, merged after `extra` ("NAME=VALUE", NULL-terminated, may be NULL) — the
 * proxy's own variables win. Loader variables in `extra` → -EINVAL. *out is a NULL-terminated
 * malloc'd vector; free with nono_strv_free. */
NONO_API int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out,
			    nono_error *err);

/* Free a NULL-terminated vector returned by the library. */
NONO_API void nono_strv_free(char **v);

/* ------------------------------------------------------------------------------------------------
 * Snapshots and rollback (snapshot*.c)
 *
 * A per-session, content-addressed store under `session_dir`: objects/xx/<sha256> hold each file's
 * bytes once, snapshots/<n>.manifest the state of every tracked entry (path, type, mode, size,
 * mtime, content hash; symlinks as their target text, never followed) with a Merkle root over it.
 * Snapshot 0 is the baseline; each later one re-hashes only the files whose size, mtime or inode
 * changed. Objects are written before the manifest that names them, each by rename, so an
 * interrupted snapshot leaves the store as it was. Restore writes each file beside its target and
 * renames it into place, and never opens a path through a symlink.
 * ---------------------------------------------------------------------------------------------- */

#define NONO_SNAP_DEFAULT_MAX_ENTRIES 300000u
#define NONO_SNAP_DEFAULT_MAX_BYTES (2ull << 30)

typedef struct nono_snap nono_snap;

/* What a snapshot leaves out. Strings and vectors are borrowed for the nono_snap_open call only.
 * - use_defaults: skip directories named node_modules, target, .venv, venv, __pycache__, build,
 *   dist, .tox, .gradle, .mypy_cache, .pytest_cache (nono_snap_default_excludes lists them).
 * - use_gitignore: honour .gitignore files in the tracked trees (patterns, `!` negation, trailing
 *   `/` for directories, leading or inner `/` anchoring, `**`), each scoped to its directory.
 * - exclude_patterns: exact entry names ("node_modules"), at any depth.
 * - exclude_globs: globs matched against the entry's name, or against its path relative to the
 *   tracked root when the glob holds a `/` (`*` and `?` stop at `/`, `**` does not).
 * - force_include: names or globs as above; an entry that matches one is kept whatever excludes it
 *   (a directory must itself be kept for anything below it to be seen). */
typedef struct nono_snap_exclusion {
	bool use_defaults;
	bool use_gitignore;
	const char *const *exclude_patterns; /* NULL-terminated, may be NULL */
	const char *const *exclude_globs;
	const char *const *force_include;
} nono_snap_exclusion;

typedef struct nono_snap_options {
	nono_snap_exclusion exclusion;
	uint64_t max_entries; /* entries a snapshot may hold; 0 = NONO_SNAP_DEFAULT_MAX_ENTRIES */
	uint64_t max_bytes;   /* total bytes of regular files; 0 = NONO_SNAP_DEFAULT_MAX_BYTES */
	/* Called now and then during long walks, hashes and restores (done/total entries; total 0 while
	 * unknown). May be NULL. */
	void (*progress)(void *ctx, const char *phase, uint64_t done, uint64_t total);
	void *progress_ctx;
	/* Where file contents are stored (created if needed); NULL: session_dir/objects. Sessions
	 * that share one store each file's bytes once between them (nono_snap_seed, nono_snap_gc). */
	const char *objects_dir;
} nono_snap_options;

/* Defaults: use_defaults = true, use_gitignore = false, no patterns, default limits. */
NONO_API void nono_snap_options_init(nono_snap_options *opts);
/* The default excluded names, NULL-terminated, static. */
NONO_API const char *const *nono_snap_default_excludes(void);

typedef enum nono_snap_type {
	NONO_SNAP_FILE = 'F',
	NONO_SNAP_DIR = 'D',
	NONO_SNAP_SYMLINK = 'L',
} nono_snap_type;

/* One entry of a manifest. For a symlink, `hash` is the SHA-256 of its target text and `target`
 * the text; for a directory `hash` is all zero. `path` is absolute (tracked root + relative). */
typedef struct nono_snap_entry {
	char *path;
	char *target;          /* symlinks only, else NULL */
	uint8_t hash[32];
	nono_snap_type type;
	uint32_t mode;         /* permission bits (07777) */
	uint64_t size;
	int64_t mtime_sec;
	long mtime_nsec;
	/* As last seen, to decide whether to re-hash: the ctime cannot be set back by the command, so
	 * a file whose size, mtime, ctime and inode all match is taken as unchanged. */
	uint64_t ino, dev;
	int64_t ctime_sec;
	long ctime_nsec;
	uint32_t root_index;   /* into the manifest's roots */
	uint32_t rel_offset;   /* path + rel_offset: the path relative to its root */
} nono_snap_entry;

typedef struct nono_snap_manifest {
	uint32_t number;
	int64_t parent;        /* -1 for the baseline */
	char timestamp[32];    /* ISO 8601 UTC, "2026-12-04T20:30:00Z" */
	uint8_t merkle_root[32];
	size_t n_roots;
	char **roots;          /* the tracked roots, canonical */
	size_t n_entries;
	nono_snap_entry *entries; /* sorted by (root, relative path) */
} nono_snap_manifest;

typedef enum nono_snap_change_type {
	NONO_SNAP_CREATED = 1,
	NONO_SNAP_MODIFIED = 2,
	NONO_SNAP_DELETED = 3,
	NONO_SNAP_PERMISSIONS = 4, /* mode only */
} nono_snap_change_type;

typedef struct nono_snap_change {
	char *path;                /* absolute */
	nono_snap_change_type type;
	nono_snap_type entry_type;
	bool has_size_delta;
	int64_t size_delta;        /* new size - old size, for files */
} nono_snap_change;

/* Open (creating if needed, mode 0700) the store in `session_dir` for the tracked directories
 * `tracked` (n of them; each canonicalised, must exist and be a directory). Refuses a session_dir
 * inside a tracked tree or a tracked tree inside it (-EINVAL). Resumes an existing store: the count
 * and the latest manifest come from disk. Errors: -ENOENT, -ENOTDIR, -EINVAL, -EACCES, -ENOMEM, I/O.
 * *out is freed with nono_snap_free. */
NONO_API int nono_snap_open(const char *session_dir, const char *const *tracked, size_t n,
			    const nono_snap_options *opts, nono_snap **out, nono_error *err);
NONO_API void nono_snap_free(nono_snap *s);
/* Snapshots stored (the next snapshot's number). */
NONO_API uint32_t nono_snap_count(const nono_snap *s);
NONO_API const char *nono_snap_session_dir(const nono_snap *s); /* borrowed */

/* Before the baseline: take the latest snapshot of another session that uses the same objects
 * directory and the same tracked roots as the baseline's reference, so that files whose size,
 * mtime, ctime and inode are unchanged since are neither read nor copied again. Returns 0 (also
 * when `other_session_dir` has no snapshot or other roots: then nothing is seeded), or -errno. */
NONO_API int nono_snap_seed(nono_snap *s, const char *other_session_dir, nono_error *err);
/* Delete the objects in `objects_dir` that no manifest of the sessions `session_dirs[0..n)` names
 * (and leftovers of interrupted writes). Run it with no snapshot being taken into that directory.
 * *removed (may be NULL) gets the count. Returns 0 or -errno (-EBADMSG: a manifest is damaged;
 * then nothing is deleted). */
NONO_API int nono_snap_gc(const char *objects_dir, const char *const *session_dirs, size_t n,
			  uint64_t *removed, nono_error *err);
/* Take snapshot 0. -EEXIST when one exists. -EFBIG when the tree passes max_entries or max_bytes
 * (nothing is stored; the message says which limit, and by how much). *out (may be NULL) is the
 * manifest, freed with nono_snap_manifest_free. */
NONO_API int nono_snap_baseline(nono_snap *s, nono_snap_manifest **out, nono_error *err);
/* Take the next snapshot against the latest one (-ENOENT without a baseline). *changes (may be
 * NULL) receives what changed since it, freed with nono_snap_changes_free. */
NONO_API int nono_snap_incremental(nono_snap *s, nono_snap_manifest **out,
				   nono_snap_change **changes, size_t *n_changes, nono_error *err);
NONO_API int nono_snap_load_manifest(const nono_snap *s, uint32_t number, nono_snap_manifest **out,
				     nono_error *err);
/* What restore_to(number) would do to the trees as they are now, changing nothing. Types are from
 * the restore's point of view: "created" = restore will create it. */
NONO_API int nono_snap_restore_diff(nono_snap *s, uint32_t number, nono_snap_change **changes,
				    size_t *n_changes, nono_error *err);
/* Bring the tracked trees back to snapshot `number`: contents, modes and mtimes of files,
 * directories and symlinks; entries created since are deleted. Each file is written beside its
 * target and renamed over it. A restore interrupted at any point is finished by running it again.
 * *changes (may be NULL) receives what was done. */
NONO_API int nono_snap_restore(nono_snap *s, uint32_t number, nono_snap_change **changes,
			       size_t *n_changes, nono_error *err);
/* The snapshot an interrupted restore was bringing back (run nono_snap_restore to it again to
 * finish), or -1 when none was interrupted. */
NONO_API long nono_snap_restore_pending(const nono_snap *s);
/* Check the store: every manifest parses, its Merkle root matches its entries, and every object it
 * names exists and hashes to its name. Returns 0, or -EBADMSG with the first problem in err. */
NONO_API int nono_snap_verify(nono_snap *s, nono_error *err);
NONO_API void nono_snap_manifest_free(nono_snap_manifest *m);
NONO_API void nono_snap_changes_free(nono_snap_change *c, size_t n);
NONO_API const char *nono_snap_change_name(nono_snap_change_type t); /* "created", ... */
/* Lower-case hex of a 32-byte hash into buf (65 bytes). */
NONO_API void nono_sha256_hex(const uint8_t hash[32], char buf[65]);
/* SHA-256 of a file's contents (opened O_NOFOLLOW). Returns 0 or -errno. */
NONO_API int nono_sha256_file(const char *path, uint8_t out[32], nono_error *err);

/* ------------------------------------------------------------------------------------------------
 * The session ledger (ledger*.c)
 *
 * An append-only file of JSON lines, one record each ({"data","hash","kind","prev","seq","ts_ms"},
 * keys sorted, compact): "hash" is the SHA-256 of the record without it, "prev" the previous
 * record's hash (null for the first), so editing, dropping, inserting or reordering a record breaks
 * the chain. The last record, "session_end", holds the count of the records before it and their
 * Merkle root. The file is written with one write(2) per record (O_APPEND).
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_ledger nono_ledger;

typedef struct nono_ledger_summary {
	uint64_t records;        /* all records, session_end included */
	bool finished;           /* the last record is session_end */
	char chain_head[65];     /* hash of the last record (hex) */
	char merkle_root[65];    /* over the records before session_end (hex) */
} nono_ledger_summary;

/* Create a new ledger file at `path` (must not exist; mode 0600). Errors: -EEXIST, -ENOENT, I/O. */
NONO_API int nono_ledger_create(const char *path, nono_ledger **out, nono_error *err);
/* Append a record of `kind` (not "session_end") whose data is the JSON object text `data_json`
 * (NULL: {}). -EINVAL for a bad kind or data; I/O errors. */
NONO_API int nono_ledger_append(nono_ledger *l, const char *kind, const char *data_json,
				nono_error *err);
/* Append an audit event (nono_audit_event_format's object) as an "audit_event" record. */
NONO_API int nono_ledger_append_event(nono_ledger *l, const nono_audit_event *ev, nono_error *err);
/* Append session_end: `data_json` (NULL: {}) plus "count" and "merkle_root". *out (may be NULL)
 * gets the summary. The ledger stays open (free it with nono_ledger_free). */
NONO_API int nono_ledger_finish(nono_ledger *l, const char *data_json, nono_ledger_summary *out,
				nono_error *err);
NONO_API void nono_ledger_free(nono_ledger *l);
/* Check a ledger file. 0 when intact and finished; -EBADMSG with "record N: what is wrong" for an
 * edited, dropped, inserted, reordered or appended record, a cut-short file or a missing
 * session_end. *out (may be NULL) gets what was read. */
NONO_API int nono_ledger_verify(const char *path, nono_ledger_summary *out, nono_error *err);
/* SHA-256 of a buffer. 0 or -EIO. */
NONO_API int nono_sha256_buf(const void *data, size_t len, uint8_t out[32]);
/* The program nono_exec would run for argv0 (execvp's search in the PATH of the environment built
 * from env/inherit_env, relative to cwd), canonicalised, and the SHA-256 of its contents, taken
 * before launch. *path is malloc'd. Errors: -ENOENT, -EACCES, I/O. */
NONO_API int nono_exec_identity(const char *argv0, const char *const *env, bool inherit_env,
				const char *cwd, char **path, uint8_t sha256[32], nono_error *err);
/* The same, with the hashes remembered in the directory `cache_dir` (NULL: none; it must exist and
 * be the caller's own): a program whose size, mtime and ctime are unchanged is not read again. */
NONO_API int nono_exec_identity_cached(const char *argv0, const char *const *env, bool inherit_env,
				       const char *cwd, const char *cache_dir, char **path,
				       uint8_t sha256[32], nono_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NONO_H */
