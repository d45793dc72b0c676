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
	NONO_NET_BLOCKED = 1,    /* as an empty netns: TCP sockets reach nothing, no UDP/raw/packet */
	NONO_NET_PROXY_ONLY = 2, /* TCP to 127.0.0.1/::1 on the proxy port, nothing else */
} nono_net_mode;

typedef struct nono_caps nono_caps;

/* Where a grant came from: the caller (the default), a named policy group, or a system set nono
 * adds itself (the CLI's system paths). Carried through clone, deduplicate (the first grant's
 * source wins) and JSON; shown by front ends, never used to decide access. */
typedef enum nono_source {
	NONO_SOURCE_USER = 0,
	NONO_SOURCE_GROUP = 1,
	NONO_SOURCE_SYSTEM = 2,
} nono_source;

/* One filesystem grant. Strings are borrowed from the capability set. */
typedef struct nono_grant {
	const char *original; /* the path as the caller gave it */
	const char *resolved; /* canonical absolute path (symlinks resolved) */
	nono_access access;
	bool is_file; /* true: a single file; false: a directory and everything under it */
	nono_source source; /* where the grant came from (NONO_SOURCE_USER unless set) */
	const char *group;  /* the policy group's name for NONO_SOURCE_GROUP, else NULL */
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

/* Deny `path` (and everything below it) even inside a grant. Landlock cannot take a path back out
 * of a granted tree, so nono_exec enforces such denials in a private mount namespace of the
 * command (a user namespace too when unprivileged): before Landlock applies, a denied directory is
 * covered by an empty read-only tmpfs with mode 000 and a denied file by a read-only, nodev bind of
 * /dev/null (opening it fails with EACCES); a command running as root loses CAP_DAC_OVERRIDE and
 * CAP_DAC_READ_SEARCH, so the modes hold. A read-only grant inside a writable grant is bound
 * read-only there as well. The plan refuses such a policy with -EOPNOTSUPP where no namespace can be made
 * (best effort: a downgrade in the report); nono_apply refuses deny paths inside grants (it cannot
 * move the calling process into a new namespace after threads may exist). A deny path outside every
 * grant needs nothing: Landlock denies it already. The path is made absolute and canonicalised if it
 * exists (a missing one is kept as written and only matters if it appears later).
 * Errors: -EINVAL (empty or relative path), -ENAMETOOLONG, -ENOMEM. */
NONO_API int nono_caps_deny_path(nono_caps *caps, const char *path, nono_error *err);
NONO_API size_t nono_caps_deny_count(const nono_caps *caps);
NONO_API const char *nono_caps_deny(const nono_caps *caps, size_t i); /* borrowed; NULL past end */

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
/* User namespaces inside the sandbox. By default (false) the seccomp filter refuses them in every
 * mode: unshare/clone with CLONE_NEWUSER and setns → EPERM, clone3 → ENOSYS (its flags are out of
 * BPF's reach; glibc falls back to clone). Allow them only for commands that sandbox themselves
 * (Chromium, bubblewrap): a user namespace opens the kernel's namespace surface to the command.
 * NULL caps: no-op / false. */
NONO_API void nono_caps_set_user_namespaces(nono_caps *caps, bool allow);
NONO_API bool nono_caps_user_namespaces(const nono_caps *caps);
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

/* Allow direct TCP connects to one internal destination, "HOST:PORT" (IPv6 literals in brackets),
 * under proxy-only: the supervisor approves exactly these addresses and this port (performing the
 * connect on its own copy, as for the proxy), and Landlock's TCP rules (6.7+) grant the port.
 * A name is resolved now, as paths are canonicalised: "localhost" means 127.0.0.1 and ::1 without
 * a lookup; other names through getaddrinfo. Every resolved address must be internal (loopback,
 * private, link-local, ...): a cloud metadata endpoint is -EPERM (never reachable), a public
 * address -EINVAL (public hosts go through the proxy's allowlist). Adding the same HOST:PORT again
 * is a no-op. The plan refuses internal grants outside proxy-only (-EINVAL).
 * Errors: -EINVAL (syntax, no port, public address), -EPERM (metadata), -ENOENT (the name does not
 * resolve), -ENOMEM. */
NONO_API int nono_caps_allow_internal(nono_caps *caps, const char *host_port, nono_error *err);
/* One resolved address of an internal grant. Strings borrowed from the capability set. */
typedef struct nono_internal_dest {
	const char *host;  /* the host as given (a name or a literal) */
	const char *addr;  /* the resolved address, canonical text ("127.0.0.1", "::1") */
	uint16_t port;
} nono_internal_dest;
/* Number of resolved internal addresses, and address `i` (-ERANGE past the end). */
NONO_API size_t nono_caps_internal_count(const nono_caps *caps);
NONO_API int nono_caps_internal(const nono_caps *caps, size_t i, nono_internal_dest *out);
/* The NO_PROXY value for a command run under `caps`: exactly the hosts it may reach directly,
 * comma-separated: each internal grant's host as written and its addresses, and, when bind ports are
 * granted, "localhost,127.0.0.1,::1" (its own listeners). Ports are not written: curl and git match
 * NO_PROXY on the host only; a port that is not granted is refused directly and through the proxy
 * alike. "" when nothing is direct. Caller frees with free(); NULL when out of memory. */
NONO_API char *nono_caps_no_proxy(const nono_caps *caps);
/* "user", "group" or "system" (static string); NULL for a value outside the enum. */
NONO_API const char *nono_source_name(nono_source source);
/* Record where grant `i` came from. `group` names the policy group and is required for
 * NONO_SOURCE_GROUP (copied; non-empty, no control characters), NULL otherwise.
 * Errors: -ERANGE (no grant i), -EINVAL, -ENOMEM. */
NONO_API int nono_caps_set_grant_source(nono_caps *caps, size_t i, nono_source source,
					const char *group, nono_error *err);

/* A raw platform rule in macOS Seatbelt syntax, e.g. `(deny file-write* (subpath "/work/.git"))`.
 * Validated on every platform: one balanced form `(allow|deny OPERATION FILTER...)` with a known
 * operation shape, printable ASCII, at most 1024 bytes; an `allow` that is unscoped or whose filter
 * covers "/" is dangerous and refused. Linux has no Seatbelt, so the rule is not enforced here: it is
 * recorded (copied, kept by clone and JSON) and every plan reports it (nono_report.platform_rules)
 * instead of dropping it silently. Errors: -EINVAL (malformed or dangerous; the message says which),
 * -ENOMEM. */
NONO_API int nono_caps_add_platform_rule(nono_caps *caps, const char *rule, nono_error *err);
NONO_API size_t nono_caps_platform_rule_count(const nono_caps *caps);
NONO_API const char *nono_caps_platform_rule(const nono_caps *caps, size_t i); /* borrowed */

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
	/* A stable tag for programs (static string, never NULL after a successful query):
	 * "granted_path", "path_not_granted", "path_denied" (a deny path covers it),
	 * "insufficient_access", "network_allowed", "network_blocked", "network_proxy_only". */
	const char *code;
	nono_access requested; /* path queries: the access asked for */
	nono_access granted;   /* path queries: the access the covering grants hold (0 if none) */
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
	bool mount_ns;            /* a private mount namespace can be made for nono_exec's command
	                             (deny paths and read-only grants inside grants, mounts.c) */
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
	bool supervisor;          /* user-notification supervisor decides network syscalls, and (with
	                             Landlock) metadata writes and watches */
	bool userns_refused;      /* the filter refuses user namespaces (nono_caps_set_user_namespaces) */
	bool no_new_privs;
	nono_net_mode net_requested;
	nono_net_mode net_enforced;   /* what the kernel really enforces (best effort may tighten) */
	uint16_t proxy_port;          /* proxy-only requested: the port asked for (0 = chosen when the
	                                 proxy starts); reachable only if net_enforced is proxy-only */
	size_t bind_ports;            /* TCP ports the command may bind (loopback), as enforced */
	size_t unix_sockets;          /* unix socket grants honoured (0 without a supervisor) */
	size_t deny_mounts;           /* deny paths inside grants covered in a private mount
	                                 namespace (nono_caps_deny_path); nono_exec only */
	size_t ro_binds;              /* read-only grants inside writable grants bound read-only
	                                 there (so they are really read-only) */
	bool downgraded;              /* something asked for was not enforced (best effort only) */
	unsigned n_downgrades;        /* entries in downgrades[] */
	char downgrades[NONO_REPORT_DOWNGRADES_MAX][NONO_REASON_MAX]; /* one reason each */
	char text[1536];              /* one line a layer, human readable, rendered from the fields */
	size_t platform_rules;        /* platform (Seatbelt) rules recorded, not enforced on Linux */
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
 * enforced. Whenever a supervisor is needed — proxy-only or blocked with grants, and metadata writes and
 * watches whenever Landlock applies (issue 11) — a supervisor helper process is forked first; it
 * exits with this process. Under Yama ptrace_scope >= 1 (without CAP_SYS_PTRACE) the helper can read
 * only the applying process: its descendants' supervised calls (metadata writes and watches
 * included) fail closed with EPERM.
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
	/* Credential routes only (mode "reverse", route_id set); nono-py's NetworkAuditEvent fields.
	 * Never the secret or the placeholder. */
	char route_id[64];         /* the route's prefix, "/openai" */
	char injection_mode[16];   /* nono_inject_mode_name; "" when the route has no credential */
	char auth_mechanism[16];   /* "phantom_header" | "phantom_path" | "phantom_query" |
	                              "phantom_basic" | "" */
	char auth_outcome[12];     /* "succeeded" | "failed" | "" */
	bool managed_credential_active; /* the real secret was injected into this request */
	char endpoint_decision[8]; /* "allow" | "deny" | "" (the route has no endpoint rules) */
	char denial_category[24];  /* "authentication_failed" | "endpoint_policy" | "host_denied" |
	                              "bad_request" | "upstream_tls" | "" */
} nono_audit_event;

/* The supervisor records every denial, and allowed calls too when asked (nono_exec_opts
 * audit_allowed). The proxy records every decision and a close event with the bytes.
 *
 * A bounded, thread-safe ring of events. When full, the oldest event is dropped and counted.
 * Its memory follows use: slots are allocated as events arrive (up to `capacity`) and given back
 * as they are drained, so a large capacity costs nothing until it is needed.
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
 * port, method, path, status, reason, bytes_up, bytes_down, and for a routed request (route_id set)
 * then route_id, injection_mode, auth_mechanism, auth_outcome, managed_credential_active,
 * endpoint_decision, denial_category. Each string field is read up to its
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
	bool fs_audit;                /* also report filesystem denials: read the kernel audit's
	                                 Landlock records of this command's domain (Landlock ABI 7,
	                                 6.15+; audit enabled; CAP_AUDIT_READ) into `audit` and
	                                 `audit_fd` as events with source "landlock", mode "fs",
	                                 target the path, reason "blockers: fs.read_file,...". The
	                                 audit configuration is never changed. After the command has
	                                 exited, nono_exec waits for the domain's last record (up to
	                                 ~1 s; ~40 ms when nothing was denied). */
	const char *remove_dir;       /* optional (borrowed): a directory the command used, e.g. a
	                                 private temp dir the caller granted it. Removed with
	                                 everything in it, following no symlink, by nono_exec's reaper
	                                 once the command and every process it started have exited:
	                                 before nono_exec returns, and also when the caller dies (even
	                                 by SIGKILL). What could not be removed stays; the caller may
	                                 check. Not removed if the command never started. */
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
	int fs_audit;         /* opts.fs_audit: 1 filesystem denials were read; 0 not asked; else
	                         why they are not visible: -EOPNOTSUPP (Landlock below ABI 7),
	                         -ENOPROTOOPT (kernel audit disabled), -EPERM (no CAP_AUDIT_READ),
	                         -EPROTONOSUPPORT (no audit in this kernel), other -errno */
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
 * truncated, and `result` keeps what was captured up to the cap, so free it in this case too),
 * -ENOMEM, other errno from fork/pipe. `result` must be freed with nono_exec_result_free. */
NONO_API int nono_exec(const nono_caps *caps, const char *const *argv, const nono_exec_opts *opts,
		       nono_exec_result *result, nono_error *err);
NONO_API void nono_exec_result_free(nono_exec_result *result);

/* Is `name` (without "=value") a loader-control variable we refuse (LD_*, DYLD_*, …)? */
NONO_API bool nono_env_name_is_loader(const char *name);

/* ---- The command's environment (the one rule for the CLI, the C API and the bindings) ---- */

typedef enum nono_env_base {
	NONO_ENV_BASIC = 0,   /* from the caller: PATH HOME USER LOGNAME SHELL TERM COLORTERM LANG
	                         LANGUAGE LC_* TZ (each when set) */
	NONO_ENV_CLEAR = 1,   /* nothing from the caller */
	NONO_ENV_INHERIT = 2, /* all of the caller's variables but the loader variables */
} nono_env_base;

/* Is `name` (without "=value") in the basic set above? */
NONO_API bool nono_env_name_is_basic(const char *name);

/* The environment for a sandboxed command, from the caller's (environ): the `base` set, then the
 * caller's value of each name in `copy` (NULL-terminated names, may be NULL), then `set`
 * (NULL-terminated "NAME=VALUE", may be NULL; a later entry wins). Loader variables never pass:
 * dropped from the base, -EINVAL in `copy`/`set`. `reserved` (NULL-terminated names, may be NULL)
 * are the variables the caller will set itself afterwards (e.g. nono_proxy_env_names()): -EINVAL
 * when asked for in `copy`/`set` (a silent overwrite would be a no-op flag), withheld from the
 * base. *out: NULL-terminated vector, free with nono_strv_free; pass it as nono_exec_opts.env with
 * inherit_env false. `dropped` (optional) receives the names the base withheld (loader and reserved
 * variables), a possibly empty vector freed with nono_strv_free.
 * Errors: -EINVAL (bad base, malformed entry, loader or reserved name), -ENOENT (a `copy` name the
 * caller does not have), -ENOMEM. */
NONO_API int nono_env_compose(nono_env_base base, const char *const *copy, const char *const *set,
			      const char *const *reserved, char ***out, char ***dropped,
			      nono_error *err);

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
	unsigned max_pending_heads;    /* connections without a complete request head (reading one,
	                                  idle between keep-alive requests, or closing after an
	                                  answer): past this bound the OLDEST such connection is
	                                  closed, never the newcomer, so clients that never finish a
	                                  head cannot starve the others. Default max_connections / 4,
	                                  at least 8; shared evenly by the proxy's loop threads */
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
/* The proxy's answer for HOST on PORT, without running it and without DNS (what `nono why --host`
 * shows). `code`: "allowed", "host-not-allowed" (off the list), "port-not-allowed" (the host is listed for
 * other ports only), "internal-address" (an internal literal or name not granted by
 * allow_internal), "metadata" (never), "bad-host". `port` 0 means "no particular port": a host
 * listed with ports only is then "port-not-allowed". A name that is allowed may still be refused when it
 * resolves to an internal or metadata address (decided per request). `flag` names the CLI flag
 * that would allow it ("--allow-domain HOST", "--allow-internal HOST:PORT"), "" when none can.
 * Errors: -EINVAL (NULL argument). */
typedef struct nono_host_decision {
	bool allowed;
	char code[24];
	char reason[NONO_REASON_MAX];
	char flag[NONO_REASON_MAX];
} nono_host_decision;
NONO_API int nono_proxy_config_query_host(const nono_proxy_config *cfg, const char *host,
					  uint16_t port, nono_host_decision *out, nono_error *err);
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
/* Send allowed traffic on through an external (corporate) HTTP proxy:
 * "[http://][user[:password]@]host:port" (credentials percent-decoded, sent as Basic
 * Proxy-Authorization). The proxy's own checks (allowlist, internal and metadata addresses, token)
 * still run first and unchanged, so the target's name is still resolved locally; then the proxy
 * asks the external one for a tunnel with CONNECT host:port (plain HTTP too goes through such a
 * tunnel). The external proxy's name is resolved once by nono_proxy_start; its address is not
 * classified (an internal one is fine). Copies; the credentials never appear in messages, audit
 * events or the child's environment. Errors: -EINVAL (the message says why, without echoing the
 * URL), -ENOMEM. */
NONO_API int nono_proxy_config_set_external_proxy(nono_proxy_config *cfg, const char *url,
						  nono_error *err);
/* A host reached directly, not through the external proxy: allowlist pattern syntax ("host",
 * "host:port", "*.suffix"). It must still be allowed by the policy. Bypass hosts without an external
 * proxy are refused by nono_proxy_config_check. Copies. Errors: -EINVAL, -ENOMEM. */
NONO_API int nono_proxy_config_add_bypass_host(nono_proxy_config *cfg, const char *pattern,
					       nono_error *err);

/* TLS interception: write the per-session CA certificate into `dir` (an existing directory,
 * absolute path) when the proxy starts — DIR/nono-ca.pem and DIR/nono-ca-bundle.pem (the system
 * trust bundle followed by the session CA), both removed by nono_proxy_stop. The CA's private key
 * never leaves the proxy's memory. A CONNECT to the host:port of an https route's upstream is then
 * terminated with a leaf certificate from that CA and re-encrypted to the real upstream (verified
 * as the route verifies it: its tls_ca or the system trust store, its client certificate). Each
 * request inside gets the route: it must lie under the upstream's base path (else 403), present the
 * route's placeholder where the credential belongs (the client sends it where the real key would
 * go; else 401), and pass the endpoint rules (403); the client's credential is replaced by the
 * secret. Answers are given inside TLS with X-Nono-Denial; audit events have mode "intercept" and
 * the route's fields. Every other host is tunnelled untouched. nono_proxy_env points SSL_CERT_FILE,
 * NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE at the bundle; a sandboxed command
 * needs read access to `dir`. Copies. Errors: -EINVAL (relative), -ENOENT, -ENOTDIR, -ENOMEM. */
NONO_API int nono_proxy_config_set_intercept_ca_dir(nono_proxy_config *cfg, const char *dir,
						    nono_error *err);

/* Start the proxy on its own thread. The config is copied. *out freed by nono_proxy_stop.
 * Errors: -EADDRINUSE, -EINVAL, -ENOMEM, errno from socket/bind/thread creation, -EHOSTUNREACH
 * when an external proxy's name does not resolve. */
NONO_API int nono_proxy_start(const nono_proxy_config *cfg, nono_proxy **out, nono_error *err);
/* Stop the thread, close every connection and free. Returns after the proxy's threads have exited;
 * a DNS lookup in flight finishes in the background (glibc's getaddrinfo cannot be cancelled
 * safely). NULL is a no-op. */
NONO_API void nono_proxy_stop(nono_proxy *p);
NONO_API uint16_t nono_proxy_port(const nono_proxy *p);
/* The session token (borrowed) and the URL "http://nono:TOKEN@127.0.0.1:PORT" (borrowed). */
NONO_API const char *nono_proxy_token(const nono_proxy *p);
NONO_API const char *nono_proxy_url(const nono_proxy *p);
/* With TLS interception: the CA bundle's path (system roots + session CA) and the session CA
 * certificate's path (borrowed, valid until nono_proxy_stop); NULL without interception. */
NONO_API const char *nono_proxy_ca_bundle(const nono_proxy *p);
NONO_API const char *nono_proxy_ca_cert(const nono_proxy *p);
/* The proxy's audit ring (borrowed): drain it with nono_audit_drain. */
NONO_API nono_audit *nono_proxy_audit(nono_proxy *p);
/* Child environment: HTTP_PROXY, HTTPS_PROXY (+ lowercase), ALL_PROXY and all_proxy as
 * socks5h://nono:TOKEN@HOST:PORT (SOCKS5 on the same port), NO_PROXY, NODE_USE_ENV_PROXY=1, and
 * with TLS interception SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE
 * naming the CA bundle; merged after `extra` ("NAME=VALUE", NULL-terminated, may be NULL). One of
 * these variables in `extra` is -EINVAL naming it (it would be silently overwritten), as are loader
 * variables. *out is a NULL-terminated
 * malloc'd vector; free with nono_strv_free. */
NONO_API int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out,
			    nono_error *err);
/* The names nono_proxy_env and nono_proxy_env_url set (static NULL-terminated list), for
 * nono_env_compose's `reserved`. */
NONO_API const char *const *nono_proxy_env_names(void);
/* The same variables for a proxy given by URL (e.g. a shared 'nono proxy' and its token):
 * "http://[USER:PASS@]HOST:PORT" with HOST a literal loopback address, 127.0.0.1 or [::1].
 * NO_PROXY as nono_proxy_env_for with `caps` (borrowed), or nono_proxy_env's loopback list when
 * `caps` is NULL. A variable of nono_proxy_env_names() in `extra` is -EINVAL (it would be
 * overwritten). Errors: -EINVAL (not such a URL, loader variable or proxy variable in `extra`),
 * -ENOMEM. */
NONO_API int nono_proxy_env_url(const char *url, const nono_caps *caps, const char *const *extra,
				char ***out, nono_error *err);
/* Check such a URL and return its address ("127.0.0.1" or "::1", static) and port, e.g. to pin
 * nono_caps_set_network / nono_caps_set_proxy_address to it. Errors: -EINVAL with the reason. */
NONO_API int nono_proxy_url_parse(const char *url, const char **addr, uint16_t *port,
				  nono_error *err);

/* As nono_proxy_env, for a command that runs under `caps`: NO_PROXY (and no_proxy) list exactly
 * what `caps` lets it reach directly (nono_caps_no_proxy: its internal grants and, with bind
 * ports, loopback), "" when nothing; everything else goes through the proxy. `caps` is borrowed.
 * Errors: -EINVAL (NULL argument, loader variable in `extra`), -ENOMEM. */
NONO_API int nono_proxy_env_for(const nono_proxy *p, const nono_caps *caps,
				const char *const *extra, char ***out, nono_error *err);

/* ------------------------------------------------------------------------------------------------
 * Policy groups (policy.c, policy_resolve.c; the embedded document is policy_embedded.c)
 *
 * A policy document names groups of grants: {"groups": {NAME: GROUP}, "never_grant": [PATH...],
 * "base_groups": [NAME...], "meta": {...}}. A GROUP holds "description", "required" (it may not be
 * excluded), "platform" ("linux" or "macos": a group for another platform resolves to nothing),
 * "allow" {"read", "write", "readwrite": [PATH...]}, "deny" {"access": [PATH...], "unlink": bool,
 * "unlink_override_for_user_writable": bool} and "network" {"block": bool, "allow_domain" (alias
 * "allow_proxy"): [HOST...], "max_connections": N, "external_proxy": "HOST:PORT",
 * "custom_credentials": {NAME: {"prefix", "upstream", "credential_key", "inject_header",
 * "credential_format", "env_var"}}}. A PATH is absolute, or starts with "~", "$HOME", "$TMPDIR",
 * "$XDG_CONFIG_HOME", "$XDG_CACHE_HOME", "$XDG_DATA_HOME" or "$XDG_STATE_HOME" (expanded when
 * resolved; the XDG ones fall back to their defaults under $HOME).
 * Parsing is strict: an unknown field anywhere, a wrong type, or a group name in base_groups that no
 * group defines is -EINVAL naming the field ("groups.g: unknown field \"sandbox\"").
 * ---------------------------------------------------------------------------------------------- */

typedef struct nono_policy nono_policy;
typedef struct nono_policy_resolved nono_policy_resolved;

/* Parse and validate a policy document. Returns a new policy (free with nono_policy_free) or NULL
 * with `err` set (-EINVAL bad JSON or schema, -ENOMEM). */
NONO_API nono_policy *nono_policy_load(const char *json, size_t len, nono_error *err);
/* nono's own embedded policy (docs/policy.md lists its groups). NULL only when out of memory. */
NONO_API nono_policy *nono_policy_load_embedded(nono_error *err);
/* The embedded document's JSON text (static string). */
NONO_API const char *nono_policy_embedded_json(void);
NONO_API void nono_policy_free(nono_policy *p);

/* Group names in sorted order: count, and name `i` (borrowed; NULL past the end). */
NONO_API size_t nono_policy_group_count(const nono_policy *p);
NONO_API const char *nono_policy_group_name(const nono_policy *p, size_t i);
/* A group's description (borrowed), NULL for an unknown group or one without a description. */
NONO_API const char *nono_policy_group_description(const nono_policy *p, const char *name);
/* True when the group exists and is marked "required". */
NONO_API bool nono_policy_group_required(const nono_policy *p, const char *name);
/* "base_groups": count and name `i` (borrowed; NULL past the end). */
NONO_API size_t nono_policy_base_group_count(const nono_policy *p);
NONO_API const char *nono_policy_base_group(const nono_policy *p, size_t i);
/* Refuse to exclude required groups, or groups the policy does not define.
 * Errors: -EINVAL naming the first such group. */
NONO_API int nono_policy_validate_exclusions(const nono_policy *p, const char *const *names,
					     size_t n, nono_error *err);

/* Resolve groups into `caps`: allow paths become grants (a directory with nono_caps_allow_path, a
 * file with nono_caps_allow_file; a path that does not exist is skipped and listed in the result),
 * "network.block" true blocks the network, and a group that allows domains blocks direct network
 * too (proxy-only is for the caller to set once its proxy runs: fail closed until then). Groups for
 * another platform are skipped. All or nothing: on error `caps` is unchanged. `out` (optional)
 * receives what was done, with each grant's group (free with nono_policy_resolved_free).
 * Errors: -EINVAL unknown group, a path inside "never_grant", HOME unset for a "~" path; the
 * errors of nono_caps_allow_path other than -ENOENT; -ENOMEM. */
NONO_API int nono_policy_resolve(const nono_policy *p, const char *const *names, size_t n,
				 nono_caps *caps, nono_policy_resolved **out, nono_error *err);

/* One grant made (or skipped) by nono_policy_resolve. Strings borrowed from the result. */
typedef struct nono_policy_grant {
	const char *path;    /* expanded path */
	const char *group;   /* the group it came from */
	nono_access access;
	bool is_file;
	bool skipped;        /* not granted: the path does not exist */
} nono_policy_grant;

/* One deny path: expanded, with its group (borrowed). */
typedef struct nono_policy_deny {
	const char *path;
	const char *group;
} nono_policy_deny;

NONO_API void nono_policy_resolved_free(nono_policy_resolved *r);
/* Groups applied (platform-filtered), in the order given. */
NONO_API size_t nono_policy_resolved_group_count(const nono_policy_resolved *r);
NONO_API const char *nono_policy_resolved_group(const nono_policy_resolved *r, size_t i);
/* True when a resolved group asks for unlink overrides (nono_policy_apply_unlink_overrides). */
NONO_API bool nono_policy_resolved_needs_unlink_overrides(const nono_policy_resolved *r);
NONO_API size_t nono_policy_resolved_grant_count(const nono_policy_resolved *r);
NONO_API int nono_policy_resolved_grant(const nono_policy_resolved *r, size_t i,
					nono_policy_grant *out); /* -ERANGE past the end */
NONO_API size_t nono_policy_resolved_deny_count(const nono_policy_resolved *r);
NONO_API int nono_policy_resolved_deny(const nono_policy_resolved *r, size_t i,
				       nono_policy_deny *out); /* -ERANGE past the end */
/* Domains the resolved groups allow through the proxy, deduplicated, in order (borrowed). */
NONO_API size_t nono_policy_resolved_domain_count(const nono_policy_resolved *r);
NONO_API const char *nono_policy_resolved_domain(const nono_policy_resolved *r, size_t i);
/* True when a resolved group set "network.block": true. */
NONO_API bool nono_policy_resolved_network_block(const nono_policy_resolved *r);

/* Expand the path forms policy documents use ("~", "$HOME", "$TMPDIR", "$XDG_CONFIG_HOME", ...; an
 * absolute path is copied) from this process's environment. *out: caller frees with free().
 * Errors: -EINVAL (another form, or HOME unset for a form that needs it), -ENOMEM. */
NONO_API int nono_policy_expand_path(const char *path, char **out, nono_error *err);

/* The expanded deny.access paths of the named groups (platform-filtered), deduplicated. *out is a
 * NULL-terminated vector (free with nono_strv_free). Errors: -EINVAL unknown group / HOME unset,
 * -ENOMEM. */
NONO_API int nono_policy_deny_paths(const nono_policy *p, const char *const *names, size_t n,
				    char ***out, nono_error *err);

/* Landlock only grants: it cannot take a path back out of a granted tree. Refuse deny paths that lie
 * inside (or are) a grant of `caps`, the first one named with its grant.
 * Errors: -EOPNOTSUPP (an overlap), -EINVAL (empty or relative path). */
NONO_API int nono_policy_validate_deny_overlaps(const char *const *deny_paths, size_t n,
						const nono_caps *caps, nono_error *err);
/* Compatibility with nono-py: a group's "deny.unlink" is a macOS (Seatbelt) rule; Landlock rights in
 * nono are per grant (write includes removing), so on Linux there is nothing to override. Checks
 * its argument and returns 0 (-EINVAL for NULL). */
NONO_API int nono_policy_apply_unlink_overrides(nono_caps *caps, nono_error *err);

/* Proxy settings of the named groups' "network" sections. */
typedef struct nono_policy_route {
	char *name, *prefix, *upstream, *credential_key, *inject_header, *credential_format, *env_var;
} nono_policy_route; /* NULL fields were not given */

typedef struct nono_policy_proxy {
	char **hosts;            /* NULL-terminated, deduplicated, in order */
	size_t nhosts;
	unsigned max_connections; /* 0: not given */
	char *upstream_proxy;    /* "external_proxy", NULL when none */
	nono_policy_route *routes;
	size_t nroutes;
} nono_policy_proxy;

/* *out is NULL (return 0) when no named group has proxy settings, else a new value freed with
 * nono_policy_proxy_free. Errors: -EINVAL unknown group, conflicting "external_proxy" values
 * ("Conflicting upstream_proxy values"), conflicting max_connections; -ENOMEM. */
NONO_API int nono_policy_resolve_proxy(const nono_policy *p, const char *const *names, size_t n,
				       nono_policy_proxy **out, nono_error *err);
NONO_API void nono_policy_proxy_free(nono_policy_proxy *px);

/* ---- Credential routes (reverse proxy, phantom credentials) ----
 * A route maps a prefix on the proxy to an upstream base URL: a plain-HTTP request from the command
 * for http://PROXY/PREFIX/REST goes to UPSTREAM/REST (https:// upstreams over TLS, verified against
 * the system trust store or the route's tls_ca). When the route has a credential, the command holds
 * only a per-session placeholder (nono_proxy_credential_env); a request is forwarded only when it
 * presents that placeholder where the credential belongs, and the proxy replaces it with the real
 * secret. The secret lives only in the proxy's memory (wiped when freed) and never appears in the
 * command's environment, audit events or messages. The upstream's name still passes the metadata and
 * internal-address checks (an internal upstream needs nono_proxy_config_allow_internal); the route
 * itself allows its upstream host:port for routed requests only (not for CONNECT). */
typedef enum nono_inject_mode {
	NONO_INJECT_HEADER = 0,      /* inject_header: credential_format with "{}" = the secret */
	NONO_INJECT_URL_PATH = 1,    /* path_pattern "{}" (placeholder) -> path_replacement "{}" (secret) */
	NONO_INJECT_QUERY_PARAM = 2, /* query parameter query_param_name=secret (URL-encoded) */
	NONO_INJECT_BASIC_AUTH = 3,  /* Authorization: Basic base64(secret); the secret is "user:password" */
} nono_inject_mode;

/* Static name ("header", "url_path", "query_param", "basic_auth"); NULL outside the enum. */
NONO_API const char *nono_inject_mode_name(nono_inject_mode mode);

typedef struct nono_route_spec {
	const char *prefix;          /* "openai" or "/openai" (segments of [A-Za-z0-9._~-]) */
	const char *upstream;        /* "https://api.openai.com" or with a base path, "http://…" too */
	const char *credential_key;  /* "env://VAR" (nono's own environment), "file://PATH" (one trailing
	                                newline dropped), "keyring://NAME" or a bare NAME (the desktop
	                                secret service's item service=nono username=NAME, the Rust
	                                nono's convention), "keyring://SERVICE/ACCOUNT" (either
	                                with "?decode=go-keyring": the item holds
	                                "go-keyring-base64:" + base64, decoded; any other query is
	                                -EINVAL when the route is added), or NULL */
	const char *credential_value;/* the secret itself (wins over credential_key's source; then
	                                credential_key, if given, only names it); NULL: none */
	nono_inject_mode inject_mode;
	const char *inject_header;   /* header mode; NULL = "Authorization" */
	const char *credential_format; /* header mode; NULL = "Bearer {}"; "{}" exactly once */
	const char *path_pattern;    /* url_path mode, e.g. "/bot{}/" ("{}" exactly once) */
	const char *path_replacement;/* url_path mode; NULL = path_pattern */
	const char *query_param_name;/* query_param mode */
	const char *env_var;         /* variable holding the placeholder; NULL = the key's name upper-cased
	                                (env://VAR -> VAR, file://…/openai-key -> OPENAI_KEY) */
	const char *tls_ca;          /* PEM file of CAs to trust instead of the system store; NULL: system */
	const char *tls_client_cert; /* PEM client certificate (with tls_client_key) or NULL */
	const char *tls_client_key;
} nono_route_spec;

/* Zero the spec (header mode, all strings NULL). */
NONO_API void nono_route_spec_init(nono_route_spec *spec);
/* Add a route. Everything is copied. A credential_value is kept in the config (wiped by
 * nono_proxy_config_free); a credential_key source is read by nono_proxy_start into the running
 * proxy's memory only (wiped by nono_proxy_stop), as are the TLS files. Errors here: -EINVAL bad
 * prefix/upstream/format/mode fields, a value with a control character, or a duplicate prefix;
 * -ENOMEM. nono_proxy_start then fails with -ENOENT (unset variable, missing file, no such keyring
 * item), -EACCES (unreadable file, locked keyring collection), -ENOTSUP (keyring:// or a bare key
 * name: no session bus, no secret service on it, or libsecret not installed), -ENOTUNIQ (several
 * keyring items match), -ETIMEDOUT (the secret service did not answer in 30 s), -EIO (another
 * D-Bus error) or -EINVAL (empty secret, bad TLS file, unknown source scheme). A keyring lookup
 * forks a short-lived helper process (it loads libsecret; the caller never loads GLib) and waits
 * for it. Messages name the source, never the secret. */
NONO_API int nono_proxy_config_add_route(nono_proxy_config *cfg, const nono_route_spec *spec,
					 nono_error *err);
/* Allow only listed endpoints on route `prefix`: `method` ("GET", or "*" for any) and a path
 * pattern matched against the path after the prefix ("/v1/models", "*" = one segment, "**" = any
 * rest). With no rule every endpoint is allowed; with rules anything else gets 403
 * (X-Nono-Denial: endpoint-denied). Errors: -ENOENT no such route, -EINVAL bad method or pattern. */
NONO_API int nono_proxy_config_add_endpoint_rule(nono_proxy_config *cfg, const char *prefix,
						 const char *method, const char *path_pattern,
						 nono_error *err);
/* The routes' variables for the command: "{PREFIX}_BASE_URL=http://127.0.0.1:PORT/prefix" for each
 * route and "ENV_VAR=placeholder" for each route with a credential. NULL-terminated malloc'd vector
 * (free with nono_strv_free); an empty vector when there are no routes. Errors: -EINVAL, -ENOMEM. */
NONO_API int nono_proxy_credential_env(const nono_proxy *p, char ***out, nono_error *err);
/* Describe route i of a config for a dry run ("/openai -> https://api.openai.com, header
 * Authorization, credential env://OPENAI_API_KEY"): the secret's source, never its value. Returns
 * the number of bytes written (snprintf-like) or -ENOENT past the last route. */
NONO_API int nono_proxy_config_describe_route(const nono_proxy_config *cfg, size_t i, char *buf,
					      size_t len);

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
	/* n_roots flags: true for a tracked file (a root that is one regular file, not a tree; its
	 * one entry, if it exists, has the root as its path and the root's name as its relative
	 * path). NULL when every root is a tree. */
	bool *root_is_file;
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

/* Open (creating if needed, mode 0700) the store in `session_dir` for the tracked paths `tracked`
 * (n of them, each canonicalised): a directory is tracked as a tree, a regular file as itself
 * (restored byte for byte and mode for mode, deleted when it did not exist in the snapshot; a
 * symlink is never followed, the same as in a tree). Each must exist, except a file tracked by the
 * store's latest snapshot (a file the command deleted); anything else is -ENOTDIR. Refuses a
 * session_dir inside a tracked tree or a tracked path inside it, and overlapping tracked paths
 * (-EINVAL). Resumes an existing store: the count
 * and the latest manifest come from disk. Errors: -ENOENT, -ENOTDIR, -EINVAL, -EACCES, -ENOMEM, I/O.
 * *out is freed with nono_snap_free. */
NONO_API int nono_snap_open(const char *session_dir, const char *const *tracked, size_t n,
			    const nono_snap_options *opts, nono_snap **out, nono_error *err);
NONO_API void nono_snap_free(nono_snap *s);
/* Snapshots stored (the next snapshot's number). */
NONO_API uint32_t nono_snap_count(const nono_snap *s);
NONO_API const char *nono_snap_session_dir(const nono_snap *s); /* borrowed */
/* The latest snapshot's Merkle root into root, without the copy of its entries that the manifest
 * out-parameters make (nono run --rollback needs only the root). Its number, or -ENOENT before
 * the baseline. */
NONO_API int64_t nono_snap_latest_root(const nono_snap *s, uint8_t root[32]);

/* Before the baseline: take the latest snapshot of another session that uses the same objects
 * directory and the same tracked roots as the baseline's reference, so that files whose size,
 * mtime, ctime and inode are unchanged since are neither read nor copied again. The other
 * session's manifest is read, and its Merkle root checked, by the baseline (alongside its walk): a
 * damaged one fails the baseline (-EBADMSG); one with other roots, or gone since, seeds nothing.
 * Returns 0 (also when `other_session_dir` has no snapshot), or -errno. */
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
