/* apply.c — the enforcement plan: prepared in the parent, entered after fork (or in-process), and
 * nono_apply / nono_plan_report on top of it.
 *
 * Order of layers in nono_plan_enter: no_new_privs (required by both, and by landlock_restrict_self
 * without CAP_SYS_ADMIN), then Landlock (before seccomp, so our own filter never has to allow the
 * Landlock syscalls), then the seccomp filter (last: it may trap syscalls the earlier steps use).
 *
 * Best effort (NONO_FLAG_BEST_EFFORT) never widens the network: if proxy-only cannot be supervised
 * (no user notification, or EBUSY under another supervisor) the network becomes BLOCKED and the
 * report says so. Missing Landlock downgrades the filesystem to unrestricted only with best effort.
 */
#include "internal.h"
#include "uapi.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

static const char *net_name(nono_net_mode m)
{
	switch (m) {
	case NONO_NET_ALLOWED:
		return "allowed";
	case NONO_NET_BLOCKED:
		return "blocked";
	case NONO_NET_PROXY_ONLY:
		return "proxy-only";
	}
	return "unknown";
}

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static void rights_text(uint64_t r, char *buf, size_t len)
{
	static const char *const names[] = {
		"execute",   "write_file", "read_file", "read_dir",	 "remove_dir", "remove_file",
		"make_char", "make_dir",   "make_reg",	"make_sock", "make_fifo",  "make_block",
		"make_sym",  "refer",	   "truncate",	"ioctl_dev",
	};
	buf[0] = '\0';
	if (!r) {
		snprintf(buf, len, "none");
		return;
	}
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (r & (1ULL << i))
			append(buf, len, "%s%s", buf[0] ? "," : "", names[i]);
}

/* One line a layer. */
static void report_text(nono_report *rep, const nono_caps *caps, const char *notes)
{
	char *t = rep->text;
	size_t len = sizeof rep->text;
	t[0] = '\0';
	uint16_t port = 0;
	nono_caps_network(caps, &port);
	int kabi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0,
				LANDLOCK_CREATE_RULESET_VERSION);
	if (kabi < 0)
		kabi = 0;
	if (rep->landlock_abi > 0) {
		char un[160];
		rights_text(rep->fs_unenforced, un, sizeof un);
		append(t, len, "landlock: ABI %d", rep->landlock_abi);
		char cap[64];
		nono_landlock_cap_describe(cap, sizeof cap);
		if (kabi > rep->landlock_abi && cap[0])
			append(t, len, " (kernel offers %d, capped by %s)", kabi, cap);
		else if (kabi > rep->landlock_abi)
			append(t, len, " (kernel offers %d; this library knows up to %d)", kabi,
			       rep->landlock_abi);
		append(t, len, ", %zu grant(s), fs rights handled 0x%llx, not enforceable: %s",
		       nono_caps_grant_count(caps), (unsigned long long)rep->fs_handled, un);
		if (rep->landlock_abi < 3 && rep->seccomp)
			/* no "truncate" in this text: the tests read the list before it */
			append(t, len, " (below ABI 3 seccomp closes truncation without a write fd: "
				       "by path and by read-mode O_TRUNC opens → EACCES, openat2 → "
				       "ENOSYS)");
		append(t, len, "\n");
	} else {
		append(t, len, "landlock: NOT APPLIED (kernel offers ABI %d): filesystem unrestricted\n",
		       kabi);
	}
	if (rep->landlock_tcp) {
		append(t, len, "landlock net: TCP connect/bind by port (connect: ");
		if (rep->net_enforced == NONO_NET_PROXY_ONLY)
			append(t, len, "port %u", (unsigned)port);
		else
			append(t, len, "none");
		append(t, len, ", bind: %zu port(s))\n", nono_caps_bind_port_count(caps));
	}
	if (rep->landlock_scopes)
		append(t, len, "landlock scopes: signal%s\n",
		       rep->net_enforced != NONO_NET_ALLOWED ? ", abstract unix sockets" : "");
	else
		/* Scopes arrived with ABI 6 (6.12). Below it the command may signal any process of
		 * the same user, and abstract unix sockets are left to the supervisor (blocked and
		 * proxy-only only): say so rather than imply it is enforced. */
		append(t, len, "landlock scopes: NOT ENFORCED (ABI < 6): signals to processes "
			       "outside the sandbox are not scoped\n");
	append(t, len, "seccomp: %s\n",
	       rep->seccomp ? (rep->supervisor ? "filter + user-notification supervisor" : "filter")
			    : "NOT APPLIED");
	append(t, len, "no_new_privs: %s\n", rep->no_new_privs ? "yes" : "no");
	append(t, len, "network: requested %s", net_name(rep->net_requested));
	if (rep->net_requested == NONO_NET_PROXY_ONLY)
		append(t, len, "(%u)", (unsigned)port);
	append(t, len, ", enforced %s\n", net_name(rep->net_enforced));
	if (notes && *notes)
		append(t, len, "downgraded: %s\n", notes);
	size_t l = strlen(t);
	if (l && t[l - 1] == '\n')
		t[l - 1] = '\0';
}

static void plan_free_parts(struct nono_plan *plan)
{
	if (plan->ruleset_fd >= 0)
		close(plan->ruleset_fd);
	plan->ruleset_fd = -1;
	free(plan->prog.filter);
	plan->prog.filter = NULL;
	plan->prog.len = 0;
	plan->notify = false;
	plan->seccomp_flags = 0;
}

static void caps_freep(nono_caps **p) { nono_caps_free(*p); }

/* CONFIG_SECCOMP_FILTER present? PR_SET_SECCOMP(MODE_FILTER, NULL) fails with EFAULT while copying
 * the NULL program (nothing is installed); EINVAL without filter support. */
static bool seccomp_filter_available(void)
{
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) < 0 && errno == EFAULT;
}

static int build_layers(const nono_caps *caps, unsigned flags, int abi, struct nono_plan *plan,
			nono_error *err)
{
	int r = nono_landlock_prepare(caps, flags, abi, plan, err);
	if (r < 0)
		return r;
	r = nono_seccomp_prepare(caps, flags, plan, err); /* reads plan->no_listener */
	if (r < 0)
		plan_free_parts(plan);
	return r;
}

static nono_caps *clone_blocked(const nono_caps *caps)
{
	nono_caps *c = nono_caps_clone(caps);
	if (c && nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL) < 0) {
		nono_caps_free(c);
		c = NULL;
	}
	return c;
}

/* Prepare; on failure plan->report still holds what was computed (nono_plan_report shows it) and
 * nothing is left to release. */
static int plan_prepare(const nono_caps *caps, unsigned flags, struct nono_plan *plan,
			nono_error *err)
{
	memset(plan, 0, sizeof *plan);
	plan->ruleset_fd = -1;
	nono_report *rep = &plan->report;
	nono_net_mode net = nono_caps_network(caps, NULL);
	rep->net_requested = net;
	rep->net_enforced = net;
	rep->no_new_privs = true;
	char notes[256] = "";
	__attribute__((cleanup(caps_freep))) nono_caps *tightened = NULL;
	const nono_caps *eff = caps;
	int r;

	if (flags & ~NONO_FLAG_BEST_EFFORT) {
		r = nono_fail(err, -EINVAL, "unknown flags 0x%x", flags & ~NONO_FLAG_BEST_EFFORT);
		goto fail;
	}
	int abi = nono_landlock_abi();
	if (abi < 0) {
		r = nono_fail(err, -EINVAL,
			      "NONO_MAX_LANDLOCK_ABI is not an integer 0..64: refusing to guess "
			      "which Landlock ABI to enforce");
		goto fail;
	}

	if (net != NONO_NET_ALLOWED) {
		/* Restricted networks are supervised through a seccomp listener. Decide now whether
		 * one can be had, so nothing is half applied later (cheap: one syscall, plus a
		 * forked probe only when this process already sits under a seccomp filter, where
		 * a second listener is EBUSY). */
		int u = nono_support_user_notif();
		if (u < 0) {
			const char *why = u == -EBUSY
						  ? "another seccomp supervisor already watches this "
						    "process (EBUSY)"
						  : "seccomp user notification is unavailable (5.0+)";
			plan->no_listener = true;
			if (net == NONO_NET_PROXY_ONLY) {
				if (!(flags & NONO_FLAG_BEST_EFFORT)) {
					r = nono_fail(err, -EOPNOTSUPP,
						      "network proxy-only cannot be enforced: %s", why);
					goto fail;
				}
				/* Best effort never opens the network: proxy-only becomes blocked. */
				tightened = clone_blocked(caps);
				if (!tightened) {
					r = nono_fail(err, -ENOMEM, "out of memory");
					goto fail;
				}
				eff = tightened;
				rep->net_enforced = NONO_NET_BLOCKED;
				rep->downgraded = true;
				append(notes, sizeof notes, "proxy-only became blocked: %s; ", why);
			} else {
				append(notes, sizeof notes,
				       "no supervisor (%s): blocked is enforced by the filter alone; ",
				       why);
			}
		}
	}

	r = build_layers(eff, flags, abi, plan, err);
	if (r < 0)
		goto fail;
	if (plan->notify && plan->no_listener) {
		plan_free_parts(plan);
		r = nono_fail(err, -EOPNOTSUPP,
			      "network %s cannot be enforced: the filter needs a seccomp supervisor, "
			      "and none can be had",
			      net_name(rep->net_enforced));
		goto fail;
	}
	if (rep->landlock_abi == 0)
		append(notes, sizeof notes, "no Landlock, filesystem unrestricted; ");

	if (net == NONO_NET_PROXY_ONLY && eff == caps && rep->net_enforced == NONO_NET_BLOCKED) {
		/* seccomp.c tightened proxy-only to blocked itself (best effort; e.g. no
		 * pidfd_getfd on this kernel). Rebuild Landlock for blocked too, so no layer keeps
		 * a connect rule for the proxy port. */
		append(notes, sizeof notes, "proxy-only became blocked: no network supervisor on "
					    "this kernel (needs user notification 5.0, pidfd_getfd 5.6); ");
		tightened = clone_blocked(caps);
		if (!tightened) {
			plan_free_parts(plan);
			r = nono_fail(err, -ENOMEM, "out of memory");
			goto fail;
		}
		if (plan->ruleset_fd >= 0) {
			close(plan->ruleset_fd);
			plan->ruleset_fd = -1;
		}
		r = nono_landlock_prepare(tightened, flags, abi, plan, err);
		if (r < 0) {
			plan_free_parts(plan);
			goto fail;
		}
	} else if (rep->downgraded && !notes[0]) {
		append(notes, sizeof notes, "see the layers above; ");
	}

	if (plan->prog.len > 0 && !seccomp_filter_available()) {
		/* Best effort may drop the filter only where that cannot open the network. */
		if (!(flags & NONO_FLAG_BEST_EFFORT) || net != NONO_NET_ALLOWED) {
			plan_free_parts(plan);
			r = nono_fail(err, -EOPNOTSUPP,
				      "seccomp filters are unavailable (CONFIG_SECCOMP_FILTER): "
				      "network %s and TIOCSTI protection cannot be enforced",
				      net_name(net));
			goto fail;
		}
		free(plan->prog.filter);
		plan->prog.filter = NULL;
		plan->prog.len = 0;
		plan->notify = false;
		rep->downgraded = true;
		append(notes, sizeof notes, "no seccomp filter (TIOCSTI, arch checks); ");
	}

	rep->seccomp = plan->prog.len > 0;
	rep->supervisor = plan->notify;
	/* Below Landlock ABI 3 (6.2) the filter closes every truncation path that needs no write
	 * fd (seccomp.c, review F2): truncate(2), open/openat/open_by_handle_at with O_TRUNC and
	 * access mode O_RDONLY or 3 → EACCES, openat2 → ENOSYS; the rest (O_WRONLY/O_RDWR, creat,
	 * ftruncate) needs WRITE_FILE, which Landlock checks. So TRUNCATE is enforced whenever the
	 * filter is on; without it, it stays unenforced (the tests check report vs kernel). */
	if (rep->seccomp && rep->landlock_abi > 0 && rep->landlock_abi < 3)
		rep->fs_unenforced &= ~(uint64_t)LANDLOCK_ACCESS_FS_TRUNCATE;
	plan->net = rep->net_enforced;
	if (plan->net == NONO_NET_PROXY_ONLY)
		nono_caps_network(caps, &plan->proxy_port);
	report_text(rep, caps, notes);
	return 0;
fail:
	rep->seccomp = false;
	rep->supervisor = false;
	report_text(rep, caps, notes);
	return r;
}

int nono_plan_prepare(const nono_caps *caps, unsigned flags, struct nono_plan *plan,
		      nono_error *err)
{
	if (!caps || !plan)
		return nono_fail(err, -EINVAL, "caps and plan are required");
	return plan_prepare(caps, flags, plan, err);
}

int nono_plan_enter(const struct nono_plan *plan, int *listener_fd)
{
	/* Raw syscalls only: this runs between fork and execve. */
	*listener_fd = -1;
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0)
		return -errno;
	if (plan->ruleset_fd >= 0 &&
	    syscall(__NR_landlock_restrict_self, plan->ruleset_fd, plan->restrict_flags) != 0)
		return -errno;
	if (plan->prog.len > 0) {
		unsigned fl = plan->seccomp_flags;
		if (plan->notify)
			fl |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
		long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, fl, &plan->prog);
		if (fd < 0)
			return -errno;
		/* The listener is created O_CLOEXEC by the kernel. */
		if (plan->notify)
			*listener_fd = (int)fd;
	}
	return 0;
}

void nono_plan_release(struct nono_plan *plan)
{
	if (plan)
		plan_free_parts(plan);
}

int nono_plan_report(const nono_caps *caps, unsigned flags, nono_report *report, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "caps is required");
	struct nono_plan plan;
	int r = plan_prepare(caps, flags, &plan, err);
	if (report)
		*report = plan.report;
	if (r == 0)
		nono_plan_release(&plan);
	return r;
}

/* Threads in this process, from /proc/self/status ("Threads:"). -errno when it cannot be read. */
static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -errno;
	char line[256];
	int n = -ENOENT;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "Threads:", 8) == 0) {
			n = atoi(line + 8);
			break;
		}
	}
	fclose(f);
	return n;
}

int nono_apply(const nono_caps *caps, unsigned flags, nono_report *report, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "caps is required");
	/* Landlock and seccomp bind the calling thread (and its future children) only: other threads
	 * would stay unsandboxed. (TSYNC for Landlock is not in any released ABI.) */
	int threads = thread_count();
	if (threads < 0)
		return nono_fail(err, threads,
				 "cannot count this process's threads (/proc/self/status): %s",
				 strerror(-threads));
	if (threads != 1)
		return nono_fail(err, -EBUSY,
				 "the process has %d threads: apply needs a single-threaded process "
				 "(Landlock and seccomp would bind only the calling thread)",
				 threads);

	struct nono_plan plan;
	int r = plan_prepare(caps, flags, &plan, err);
	if (report)
		*report = plan.report;
	if (r < 0)
		return r;

	struct nono_sup_helper helper = {.fd = -1, .pid = -1};
	if (plan.notify) {
		/* The helper must be forked before the filter exists, so it stays unfiltered. */
		struct nono_sup_config sc = {.net = plan.net, .proxy_port = plan.proxy_port,
					     .audit_fd = -1};
		r = nono_supervisor_helper_fork(caps, &sc, &helper, err);
		if (r < 0) {
			nono_plan_release(&plan);
			return r;
		}
	}
	int listener = -1;
	r = nono_plan_enter(&plan, &listener);
	nono_plan_release(&plan);
	if (r < 0) {
		if (helper.fd >= 0)
			close(helper.fd); /* the helper exits when its handle closes */
		return nono_fail(err, r,
				 "entering the sandbox failed (the process may be partly restricted "
				 "now): %s",
				 strerror(-r));
	}
	if (helper.fd >= 0) {
		/* Takes both fds. If the helper never gets the listener, every supervised syscall
		 * fails with ENOSYS once our copy is closed: closed, not open. */
		r = nono_supervisor_helper_handoff(&helper, listener, err);
		if (r < 0)
			return r;
	} else if (listener >= 0) {
		close(listener); /* cannot happen: notify without a helper */
	}
	return 0;
}
