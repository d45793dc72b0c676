/* support.c — what this kernel can enforce, probed honestly, and the Landlock ABI cap (a test knob).
 *
 * Every probe below is either a side-effect-free syscall on the calling process, or runs in a
 * short-lived forked child (so nothing is installed on the caller). Nothing is guessed from the
 * kernel version string.
 */
#include "internal.h"
#include "uapi.h"

#include <jansson.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define NONO_LANDLOCK_ABI_CAP_MAX 64
#define NONO_CAP_ENV "NONO_MAX_LANDLOCK_ABI"

/* ---- The ABI cap ----------------------------------------------------------------------------
 * Sources: nono_set_max_landlock_abi() (wins; 0 removes the cap), else NONO_MAX_LANDLOCK_ABI read
 * once, at the first query. In the variable, unset / empty / "0" mean "no cap" (mirroring the API),
 * "1".."64" (one or two decimal digits, nothing else) cap the ABI.
 *
 * An INVALID value ("abc", "-1", "3 ", "65", ...) fails closed: it is never ignored and never read as
 * some number. nono_landlock_abi() then returns -EINVAL, so every plan (nono_apply, nono_exec,
 * nono_plan_report) is refused with a message naming the variable, and the support report shows
 * landlock_abi_cap = -1 and says why. Reason: this knob exists to make tests run an older
 * enforcement path; a typo must not make such a test silently pass on a different path, and
 * "invalid = no Landlock" would let a typo weaken a best-effort sandbox. */
enum cap_source { CAP_NONE = 0, CAP_ENV = 1, CAP_API = 2 };

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static bool cap_resolved;
static int cap_value; /* 0 none, 1..64, -1 invalid environment value */
static enum cap_source cap_src;
static char cap_env_text[24]; /* the raw (truncated) invalid value, for the message */

static int parse_cap(const char *v)
{
	if (!v || !*v)
		return 0;
	int n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || p - v >= 2)
			return -1;
		n = n * 10 + (*p - '0');
	}
	return n > NONO_LANDLOCK_ABI_CAP_MAX ? -1 : n;
}

static void cap_get(int *value, enum cap_source *src)
{
	pthread_mutex_lock(&cap_lock);
	if (!cap_resolved) {
		const char *v = getenv(NONO_CAP_ENV);
		cap_value = parse_cap(v);
		cap_src = cap_value == 0 ? CAP_NONE : CAP_ENV;
		if (cap_value < 0)
			snprintf(cap_env_text, sizeof cap_env_text, "%s", v);
		cap_resolved = true;
	}
	*value = cap_value;
	*src = cap_src;
	pthread_mutex_unlock(&cap_lock);
}

int nono_set_max_landlock_abi(int abi)
{
	if (abi < 0 || abi > NONO_LANDLOCK_ABI_CAP_MAX)
		return -EINVAL;
	pthread_mutex_lock(&cap_lock);
	cap_resolved = true; /* the API wins over the environment, also over an invalid value */
	cap_value = abi;
	cap_src = abi ? CAP_API : CAP_NONE;
	pthread_mutex_unlock(&cap_lock);
	return 0;
}

/* Landlock ABI the kernel offers: 0 when Landlock is absent (ENOSYS, < 5.13) or disabled at boot
 * (EOPNOTSUPP). */
static int kernel_landlock_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v > 0 ? (int)v : 0;
}

static int effective_abi(int kernel, int cap)
{
	int abi = kernel < NONO_LANDLOCK_ABI_KNOWN ? kernel : NONO_LANDLOCK_ABI_KNOWN;
	if (cap > 0 && cap < abi)
		abi = cap;
	return abi;
}

int nono_landlock_abi(void)
{
	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	if (cap < 0)
		return -EINVAL;
	return effective_abi(kernel_landlock_abi(), cap);
}

/* Where the cap comes from, e.g. "NONO_MAX_LANDLOCK_ABI=3" or "nono_set_max_landlock_abi(3)"; ""
 * when no cap is set. */
static void cap_describe(char *buf, size_t len)
{
	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	if (cap <= 0)
		snprintf(buf, len, "%s", cap < 0 ? NONO_CAP_ENV " (invalid)" : "");
	else if (src == CAP_ENV)
		snprintf(buf, len, "%s=%d", NONO_CAP_ENV, cap);
	else
		snprintf(buf, len, "nono_set_max_landlock_abi(%d)", cap);
}

/* ---- seccomp probes ---- */

static bool seccomp_action_avail(uint32_t action)
{
	/* SECCOMP_GET_ACTION_AVAIL (4.14): 0 when the kernel knows the action; reads only. */
	return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

static bool seccomp_filter_supported(void)
{
	/* The classic libseccomp probe: with CONFIG_SECCOMP_FILTER, PR_SET_SECCOMP(MODE_FILTER, NULL)
	 * fails with EFAULT while copying the (NULL) program, before anything is installed; without
	 * it, EINVAL. GET_ACTION_AVAIL confirms on 4.14+. */
	errno = 0;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) == 0)
		return false; /* cannot happen: a NULL program installed */
	if (errno != EFAULT)
		return false;
	return seccomp_action_avail(SECCOMP_RET_ALLOW);
}

static bool wait_killable_recv_supported(void)
{
	/* seccomp_set_mode_filter() rejects unknown flags with EINVAL first, then copies the program
	 * from user memory: with a NULL program a known flag set yields EFAULT and installs nothing.
	 * WAIT_KILLABLE_RECV (5.19) must be combined with NEW_LISTENER. */
	long r = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			 SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
			 NULL);
	return r < 0 && errno == EFAULT;
}

/* Child-side probe of user notification: installs an allow-everything filter with a listener in a
 * forked child (never in the caller) and tries SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP) on it.
 * This is the only honest probe for sync wake-up (6.6): the ioctl needs a live listener fd.
 * It also proves NEW_LISTENER works here — it fails with EBUSY when an ancestor's filter already
 * has a listener (e.g. we run under another supervisor). Exit status bits: 1 = listener ok,
 * 2 = sync wake-up ok, 4 = the listener was refused with EBUSY. A probe that cannot run (fork
 * fails, the child is reaped by someone else) reports nothing available: fail closed. */
#define PROBE_LISTENER 1
#define PROBE_SYNC 2
#define PROBE_BUSY 4

static int probe_child(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return 0;
	long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			  &prog);
	if (fd < 0)
		return errno == EBUSY ? PROBE_BUSY : 0;
	int res = PROBE_LISTENER;
	/* The flags travel by value in the ioctl argument (not through a pointer), despite the
	 * SECCOMP_IOW(4, __u64) encoding: see seccomp_notify_set_flags() in kernel/seccomp.c. */
	if (syscall(SYS_ioctl, (int)fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
		    (unsigned long)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0)
		res |= PROBE_SYNC;
	return res;
}

static int run_listener_probe(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0)
		_exit(probe_child());
	int st = 0;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return 0;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

static bool pidfd_getfd_supported(void)
{
	/* pidfd_open (5.3) on ourselves, then pidfd_getfd (5.6) of that very fd: a real call, on our
	 * own process, whose only effect is a duplicate fd we close at once. */
	int pidfd = (int)syscall(__NR_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return false;
	int dup_fd = (int)syscall(__NR_pidfd_getfd, pidfd, pidfd, 0);
	bool ok = dup_fd >= 0;
	if (ok)
		close(dup_fd);
	close(pidfd);
	return ok;
}

/* Does our own process already sit under a seccomp filter? PR_GET_SECCOMP: 0 none, 2 filter
 * mode. Used to decide whether a listener could be refused with EBUSY. Unknown counts as yes. */
static bool under_seccomp_filter(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0;
}

/* Can THIS process get a seccomp listener right now? Cheap when no filter is installed (no ancestor
 * listener can exist then); otherwise asks a forked child (EBUSY under another supervisor).
 * Returns 0, or -EOPNOTSUPP / -EBUSY. */
static int user_notif_available(void)
{
	if (!seccomp_action_avail(SECCOMP_RET_USER_NOTIF))
		return -EOPNOTSUPP;
	if (!under_seccomp_filter())
		return 0;
	int r = run_listener_probe();
	if (r & PROBE_LISTENER)
		return 0;
	return (r & PROBE_BUSY) ? -EBUSY : -EOPNOTSUPP;
}

/* Facts that cannot change while we run, probed once. */
static pthread_once_t static_once = PTHREAD_ONCE_INIT;
static struct {
	int landlock_abi_kernel;
	bool seccomp_filter, notif_action, pidfd_getfd, wait_killable_recv;
} facts;

/* Can a private mount namespace be made here (mounts.c)? Asked once, in a forked child: user
 * namespaces may be disabled (sysctl, AppArmor) or refused by a filter we already sit under. */
static bool mount_ns_supported(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(nono_mounts_probe_child() ? 1 : 0);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void probe_static(void)
{
	facts.landlock_abi_kernel = kernel_landlock_abi();
	facts.seccomp_filter = seccomp_filter_supported();
	facts.notif_action = facts.seccomp_filter && seccomp_action_avail(SECCOMP_RET_USER_NOTIF);
	facts.pidfd_getfd = pidfd_getfd_supported();
	facts.wait_killable_recv = facts.seccomp_filter && wait_killable_recv_supported();
}

/* Asked only by plans that need it (a fork per process otherwise: `nono run` starts often). */
static pthread_once_t mount_ns_once = PTHREAD_ONCE_INIT;
static bool mount_ns_fact;

static void probe_mount_ns(void)
{
	mount_ns_fact = mount_ns_supported();
}

bool nono_kernel_mount_ns(void)
{
	pthread_once(&mount_ns_once, probe_mount_ns);
	return mount_ns_fact;
}

/* stdin/stdout/stderr go to the sandboxed command as they are. A datagram, raw or packet socket
 * there would let it send anywhere with sendmsg(msg_name), which no BPF rule can inspect
 * (seccomp.c): the plan refuses a restricted network then. Stream sockets are fine (connected: the
 * address of a send is ignored; unconnected: connect is supervised); netlink route is kernel IPC. */
static int stdio_dgram_fd(void)
{
	for (int fd = 0; fd < 3; fd++) {
		int type = 0, domain = 0, proto = 0;
		socklen_t l = sizeof type;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
			continue; /* not a socket (ENOTSOCK) or closed (EBADF) */
		l = sizeof domain;
		getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l);
		l = sizeof proto;
		getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
		if (type == SOCK_STREAM || type == SOCK_SEQPACKET ||
		    (domain == AF_NETLINK && proto == NETLINK_ROUTE))
			continue;
		return fd;
	}
	return -1;
}

void nono_kernel_probe(struct nono_kernel *k)
{
	memset(k, 0, sizeof *k);
	pthread_once(&static_once, probe_static);
	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	k->landlock_abi_kernel = facts.landlock_abi_kernel;
	k->landlock_abi = cap < 0 ? -1 : effective_abi(facts.landlock_abi_kernel, cap);
	if (cap > 0 && cap < facts.landlock_abi_kernel)
		cap_describe(k->landlock_cap, sizeof k->landlock_cap);
	k->seccomp_filter = facts.seccomp_filter;
	k->x86_64 = seccomp_arch_native() == SCMP_ARCH_X86_64;
	/* The only fact that changes: another filter with a listener may have been installed on us
	 * since (EBUSY), so this is asked every time (cheap unless we sit under a filter). */
	k->user_notif = facts.notif_action ? user_notif_available() : -EOPNOTSUPP;
	k->pidfd_getfd = facts.pidfd_getfd;
	k->wait_killable_recv = facts.wait_killable_recv;
	k->stdio_dgram_fd = stdio_dgram_fd();
	/* k->mount_ns: filled by plan_prepare through nono_kernel_mount_ns, when a plan needs it */
}

int nono_support_query(nono_support *out)
{
	memset(out, 0, sizeof *out);
	struct utsname u;
	bool x86 = false;
	if (uname(&u) == 0) {
		snprintf(out->kernel_release, sizeof out->kernel_release, "%s", u.release);
		x86 = strcmp(u.machine, "x86_64") == 0;
	}
#if defined(__x86_64__) && !defined(__ILP32__)
	out->x86_64 = x86;
#else
	(void)x86;
	out->x86_64 = false;
#endif

	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	out->landlock_abi_kernel = kernel_landlock_abi();
	out->landlock_abi_cap = cap;
	/* An invalid cap refuses every plan: report ABI 0 as "what the library will use". */
	out->landlock_abi = cap < 0 ? 0 : effective_abi(out->landlock_abi_kernel, cap);
	int abi = out->landlock_abi;
	out->landlock_fs = abi >= 1;
	out->landlock_refer = abi >= 2;
	out->landlock_truncate = abi >= 3;
	out->landlock_tcp = abi >= 4;
	out->landlock_ioctl_dev = abi >= 5;
	out->landlock_scopes = abi >= 6;
	out->landlock_log_flags = abi >= 7;

	out->seccomp_filter = seccomp_filter_supported();
	if (out->seccomp_filter && seccomp_action_avail(SECCOMP_RET_USER_NOTIF)) {
		struct seccomp_notif_sizes sz;
		if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0) {
			int r = run_listener_probe();
			out->seccomp_user_notif = (r & PROBE_LISTENER) != 0;
			out->sync_wakeup = (r & PROBE_SYNC) != 0;
		}
	}
	out->pidfd_getfd = pidfd_getfd_supported();
	out->wait_killable_recv = out->seccomp_filter && wait_killable_recv_supported();
	out->mount_ns = nono_kernel_mount_ns();
	return 0;
}

/* ---- text and JSON ---- */

static const char *yn(bool b) { return b ? "yes" : "no"; }

static void landlock_line(const nono_support *s, char *buf, size_t len)
{
	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	if (s->landlock_abi_cap < 0) {
		snprintf(buf, len,
			 "landlock: REFUSED (kernel offers ABI %d; %s='%s' is not an integer 0..%d, "
			 "so nothing will be applied)",
			 s->landlock_abi_kernel, NONO_CAP_ENV, cap_env_text, NONO_LANDLOCK_ABI_CAP_MAX);
	} else if (s->landlock_abi_kernel == 0) {
		snprintf(buf, len, "landlock: not available (kernel < 5.13 or disabled at boot)");
	} else if (s->landlock_abi_cap > 0) {
		char by[64];
		if (src == CAP_ENV)
			snprintf(by, sizeof by, "%s=%d", NONO_CAP_ENV, s->landlock_abi_cap);
		else
			snprintf(by, sizeof by, "nono_set_max_landlock_abi(%d)", s->landlock_abi_cap);
		if (s->landlock_abi_cap < s->landlock_abi_kernel)
			snprintf(buf, len, "landlock: ABI %d (kernel offers %d, capped by %s)",
				 s->landlock_abi, s->landlock_abi_kernel, by);
		else
			snprintf(buf, len, "landlock: ABI %d (kernel offers %d; cap %s does not limit it)",
				 s->landlock_abi, s->landlock_abi_kernel, by);
	} else if (s->landlock_abi < s->landlock_abi_kernel) {
		snprintf(buf, len, "landlock: ABI %d (kernel offers %d; this library knows up to %d)",
			 s->landlock_abi, s->landlock_abi_kernel, NONO_LANDLOCK_ABI_KNOWN);
	} else {
		snprintf(buf, len, "landlock: ABI %d", s->landlock_abi);
	}
}

char *nono_support_text(const nono_support *s)
{
	char ll[256], abis[1024];
	landlock_line(s, ll, sizeof ll);
	size_t used = 0;
	abis[0] = '\0';
	for (int i = 0; i < NONO_LANDLOCK_ABI_KNOWN; i++) {
		const struct nono_landlock_abi_row *r = &nono_landlock_abis[i];
		int n = snprintf(abis + used, sizeof abis - used, "  %s (ABI %d, %s): %s\n", r->what,
				 r->abi, r->kernel, yn(s->landlock_abi >= r->abi));
		if (n < 0 || (size_t)n >= sizeof abis - used)
			return NULL;
		used += (size_t)n;
	}
	char *out = NULL;
	int n = asprintf(&out,
			 "kernel: %s (%s)\n"
			 "%s\n"
			 "%s"
			 "seccomp filter: %s\n"
			 "seccomp user notification (5.0): %s\n"
			 "pidfd_getfd (5.6): %s\n"
			 "seccomp WAIT_KILLABLE_RECV (5.19): %s\n"
			 "seccomp sync wake-up (6.6): %s\n"
			 "private mount namespace (deny inside grants): %s\n",
			 s->kernel_release[0] ? s->kernel_release : "unknown",
			 s->x86_64 ? "x86_64" : "not x86_64", ll, abis, yn(s->seccomp_filter),
			 yn(s->seccomp_user_notif), yn(s->pidfd_getfd), yn(s->wait_killable_recv),
			 yn(s->sync_wakeup), yn(s->mount_ns));
	return n < 0 ? NULL : out;
}

char *nono_support_json(const nono_support *s)
{
	int cap;
	enum cap_source src;
	cap_get(&cap, &src);
	json_t *o = json_object();
	if (!o)
		return NULL;
	const char *srcname = s->landlock_abi_cap < 0 ? "invalid"
			      : s->landlock_abi_cap == 0 ? "none"
			      : src == CAP_ENV	      ? "env"
						      : "api";
	int bad = 0;
	bad |= json_object_set_new(o, "kernel_release", json_string(s->kernel_release));
	bad |= json_object_set_new(o, "landlock_abi_kernel", json_integer(s->landlock_abi_kernel));
	bad |= json_object_set_new(o, "landlock_abi_cap", json_integer(s->landlock_abi_cap));
	bad |= json_object_set_new(o, "landlock_abi_cap_source", json_string(srcname));
	bad |= json_object_set_new(o, "landlock_abi", json_integer(s->landlock_abi));
	bad |= json_object_set_new(o, "landlock_fs", json_boolean(s->landlock_fs));
	bad |= json_object_set_new(o, "landlock_refer", json_boolean(s->landlock_refer));
	bad |= json_object_set_new(o, "landlock_truncate", json_boolean(s->landlock_truncate));
	bad |= json_object_set_new(o, "landlock_tcp", json_boolean(s->landlock_tcp));
	bad |= json_object_set_new(o, "landlock_ioctl_dev", json_boolean(s->landlock_ioctl_dev));
	bad |= json_object_set_new(o, "landlock_scopes", json_boolean(s->landlock_scopes));
	bad |= json_object_set_new(o, "landlock_log_flags", json_boolean(s->landlock_log_flags));
	bad |= json_object_set_new(o, "seccomp_filter", json_boolean(s->seccomp_filter));
	bad |= json_object_set_new(o, "seccomp_user_notif", json_boolean(s->seccomp_user_notif));
	bad |= json_object_set_new(o, "pidfd_getfd", json_boolean(s->pidfd_getfd));
	bad |= json_object_set_new(o, "wait_killable_recv", json_boolean(s->wait_killable_recv));
	bad |= json_object_set_new(o, "sync_wakeup", json_boolean(s->sync_wakeup));
	bad |= json_object_set_new(o, "x86_64", json_boolean(s->x86_64));
	bad |= json_object_set_new(o, "mount_ns", json_boolean(s->mount_ns));
	char *txt = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return txt;
}
