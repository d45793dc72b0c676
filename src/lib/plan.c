/* plan.c — the one decision step, and the plan's life: prepare (probe, decide, build) in the parent,
 * enter after fork (or in-process), release.
 *
 * nono_plan_decide is the only place that chooses what is enforced. From the capability set, the
 * kernel facts (support.c, the only prober) and the flags it computes the enforced network mode,
 * whether a supervisor runs, the Landlock ABI, rights, TCP rules and scopes, the seccomp variant, and
 * every downgrade with its reason. It makes no syscall, so unit tests can hand it any kernel.
 * landlock.c and seccomp.c build what it says and never decide again; the report (text, JSON,
 * --dry-run, why) is rendered from the fields it fills.
 *
 * Refusals and downgrades (design.md §1: never less protection than asked, unless best effort, and
 * then say exactly what):
 * - No Landlock (kernel < 5.13, disabled, capped to 0): the filesystem policy cannot be enforced;
 *   best effort runs with the filesystem unrestricted.
 * - No seccomp filter (CONFIG_SECCOMP_FILTER): refused whenever the network is restricted; best
 *   effort with the network allowed drops only TIOCSTI and the arch checks.
 * - No supervisor (user notification 5.0, pidfd_getfd 5.6, or EBUSY under another supervisor):
 *   proxy-only is refused, or under best effort becomes BLOCKED (never open); blocked is still
 *   fully enforced by the filter alone (address syscalls denied), but unix-socket and bind grants
 *   cannot be honoured (refused, or dropped under best effort).
 * - Combinations that mean nothing are refused for every front end alike (-EINVAL): unix-socket or
 *   bind grants with the network allowed (nothing is denied), bind grants under blocked (no IP
 *   socket exists), internal destinations outside proxy-only, and a datagram/raw socket on stdio under a restricted network.
 */
#include "internal.h"
#include "uapi.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

static const char *no_supervisor_why(const struct nono_kernel *k)
{
	if (k->user_notif == -EBUSY)
		return "another seccomp supervisor already watches this process (EBUSY)";
	if (k->user_notif < 0)
		return "seccomp user notification is unavailable (needs Linux 5.0)";
	return "pidfd_getfd is unavailable (needs Linux 5.6)";
}

/* Refusals that depend on the caps alone (and the caller's stdio). */
static int check_combinations(const nono_caps *caps, const struct nono_kernel *k, nono_error *err)
{
	nono_net_mode net = nono_caps_network(caps, NULL);
	size_t socks = nono_caps_unix_socket_count(caps), binds = nono_caps_bind_port_count(caps);
	if (net == NONO_NET_ALLOWED && (socks || binds))
		return nono_fail(err, -EINVAL,
				 "unix-socket and bind grants only mean something when the network is "
				 "restricted (blocked or proxy-only): with the network allowed nothing "
				 "is denied");
	if (net == NONO_NET_BLOCKED && binds)
		return nono_fail(err, -EINVAL,
				 "bind grants need proxy-only: a blocked network allows no IP socket at "
				 "all");
	if (net != NONO_NET_PROXY_ONLY && nono_caps_internal_count(caps))
		return nono_fail(err, -EINVAL,
				 "internal destinations (allow_internal) need proxy-only: %s",
				 net == NONO_NET_BLOCKED ? "a blocked network allows no IP socket at all"
							 : "with the network allowed nothing is denied");
	if (net != NONO_NET_ALLOWED && k->stdio_dgram_fd >= 0) {
		static const char *const names[] = {"stdin", "stdout", "stderr"};
		return nono_fail(err, -EINVAL,
				 "%s is a datagram/raw socket: a sandboxed command could send anywhere "
				 "through it, which a blocked or proxy-only network cannot allow",
				 names[k->stdio_dgram_fd]);
	}
	return 0;
}

static int decide_landlock(const struct nono_kernel *k, bool best_effort, struct nono_plan *plan,
			   nono_error *err)
{
	nono_report *rep = &plan->report;
	int abi = k->landlock_abi;
	if (abi < 1) {
		rep->fs_unenforced = nono_landlock_fs_unenforced(0);
		if (!best_effort)
			return nono_fail(err, -EOPNOTSUPP,
					 "landlock is not available (kernel < 5.13, disabled, or capped): "
					 "the filesystem policy cannot be enforced");
		nono_report_downgrade(rep, "no Landlock, filesystem unrestricted");
		return 0;
	}
	bool restricted = plan->net != NONO_NET_ALLOWED;
	plan->landlock_abi = abi;
	plan->fs_handled = nono_landlock_fs_handled(abi);
	plan->landlock_tcp = abi >= NONO_LANDLOCK_ABI_TCP && restricted;
	if (abi >= NONO_LANDLOCK_ABI_SCOPES) {
		/* Never signal processes outside the sandbox; with the network restricted, abstract
		 * unix sockets outside are a network too (D-Bus, X11 "@/tmp/.X11-unix"). */
		plan->landlock_scoped = LANDLOCK_SCOPE_SIGNAL;
		if (restricted)
			plan->landlock_scoped |= LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
	}
	/* ABI 7 (6.15): by default Landlock logs the denials of the process that restricted itself
	 * only until it calls execve; the command is what runs after our execve, so ask for its
	 * denials to be logged too (LOG_NEW_EXEC_ON). They reach the kernel's audit only when audit is
	 * enabled; nono_exec's fs_audit reads them back for the denial report. */
	if (abi >= 7)
		plan->restrict_flags = LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON;
	rep->landlock_abi = abi;
	rep->fs_handled = plan->fs_handled;
	rep->fs_unenforced = nono_landlock_fs_unenforced(abi);
	rep->landlock_tcp = plan->landlock_tcp;
	rep->landlock_scopes = plan->landlock_scoped != 0;
	rep->scope_abstract_unix = (plan->landlock_scoped & LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET) != 0;
	return 0;
}

/* The network: supervisor or not, and what becomes of proxy-only and the grants without one. */
static int decide_network(const nono_caps *caps, const struct nono_kernel *k, bool best_effort,
			  struct nono_plan *plan, nono_error *err)
{
	nono_report *rep = &plan->report;
	if (plan->net == NONO_NET_ALLOWED)
		return 0;
	if (k->user_notif == 0 && k->pidfd_getfd) {
		plan->notify = true;
		return 0;
	}
	const char *why = no_supervisor_why(k);
	if (plan->net == NONO_NET_PROXY_ONLY) {
		if (!best_effort)
			return nono_fail(err, -EOPNOTSUPP, "network proxy-only cannot be enforced: %s",
					 why);
		plan->net = NONO_NET_BLOCKED; /* best effort never opens the network */
		plan->proxy_port = 0;
		nono_report_downgrade(rep, "proxy-only became blocked: %s", why);
	}
	if (nono_caps_unix_socket_count(caps) || nono_caps_bind_port_count(caps)) {
		if (!best_effort)
			return nono_fail(err, -EOPNOTSUPP,
					 "unix-socket and bind grants need a seccomp supervisor and none "
					 "can be had: %s",
					 why);
		nono_report_downgrade(rep, "unix-socket and bind grants not honoured (every such "
					   "connect and bind is denied): %s",
				      why);
	}
	return 0;
}

static int decide_seccomp(const nono_caps *caps, const struct nono_kernel *k, bool best_effort,
			  struct nono_plan *plan, nono_error *err)
{
	nono_report *rep = &plan->report;
	if (!k->x86_64)
		return nono_fail(err, -EOPNOTSUPP, "nono's seccomp filter supports x86_64 only");
	if (!k->seccomp_filter) {
		/* Best effort may drop the filter only where that cannot open the network. */
		if (!best_effort || rep->net_requested != NONO_NET_ALLOWED)
			return nono_fail(err, -EOPNOTSUPP,
					 "seccomp filters are unavailable (CONFIG_SECCOMP_FILTER): "
					 "network %s and TIOCSTI protection cannot be enforced",
					 nono_net_mode_name(rep->net_requested));
		nono_report_downgrade(rep, "no seccomp filter (TIOCSTI, keyring, user namespaces, arch checks)");
		return 0;
	}
	unsigned v = NONO_SC_ALWAYS;
	if (!nono_caps_user_namespaces(caps)) {
		v |= NONO_SC_NO_USERNS;
		rep->userns_refused = true;
	}
	if (plan->landlock_abi < NONO_LANDLOCK_ABI_TRUNCATE)
		v |= NONO_SC_OLD_LL;
	if (plan->net != NONO_NET_ALLOWED) {
		v |= plan->net == NONO_NET_BLOCKED ? NONO_SC_BLOCKED : NONO_SC_PROXY;
		v |= plan->notify ? NONO_SC_NOTIFY : NONO_SC_NONOTIFY;
	}
	plan->seccomp = true;
	plan->seccomp_variant = v;
	/* WAIT_KILLABLE_RECV (5.19): once the supervisor has received a request, only a fatal signal
	 * interrupts the child's wait, so a signal (Go's SIGURG preemption…) cannot make the child
	 * restart a connect the supervisor already performed. 6.1 lacks it: not an error. */
	if (plan->notify && k->wait_killable_recv)
		plan->seccomp_flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	rep->seccomp = true;
	rep->supervisor = plan->notify;
	/* Below Landlock ABI 3 (6.2) the filter closes every truncation path that needs no write fd
	 * (seccomp.c, review F2); the rest needs WRITE_FILE, which Landlock checks. */
	if (plan->landlock_abi >= 1 && plan->landlock_abi < NONO_LANDLOCK_ABI_TRUNCATE) {
		rep->truncate_by_filter = true;
		rep->fs_unenforced &= ~(uint64_t)LANDLOCK_ACCESS_FS_TRUNCATE;
	}
	return 0;
}

/* Metadata writes and watches (issue 11): Landlock mediates neither chmod/chown/utimes/xattrs nor
 * inotify/fanotify marks, so whenever it restricts the filesystem the filter traps them and the
 * supervisor decides (NONO_SC_META: inside the write grants, watches inside the read grants), in
 * every network mode. Without a supervisor (another one already watches this process: EBUSY) they
 * are denied outright (NONO_SC_NOMETA): closed rather than open, and the report says so. */
static void decide_meta(const struct nono_kernel *k, struct nono_plan *plan)
{
	nono_report *rep = &plan->report;
	if (!plan->seccomp || plan->landlock_abi < 1)
		return;
	if (k->user_notif == 0 && k->pidfd_getfd) {
		plan->notify = true;
		plan->seccomp_variant |= NONO_SC_META;
		if (k->wait_killable_recv)
			plan->seccomp_flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
		rep->supervisor = true;
		return;
	}
	plan->seccomp_variant |= NONO_SC_NOMETA;
	nono_report_downgrade(rep, "chmod, chown, utimes, xattr changes and file watches are refused "
				   "everywhere (EPERM): %s",
			      no_supervisor_why(k));
}

int nono_plan_decide(const nono_caps *caps, const struct nono_kernel *k, unsigned flags,
		     struct nono_plan *plan, nono_error *err)
{
	memset(plan, 0, sizeof *plan);
	plan->ruleset_fd = -1;
	nono_report *rep = &plan->report;
	plan->net = nono_caps_network(caps, &plan->proxy_port);
	plan->proxy_v6 = plan->net == NONO_NET_PROXY_ONLY && !strcmp(nono_caps_proxy_address(caps), "::1");
	rep->net_requested = plan->net;
	rep->no_new_privs = true;
	rep->landlock_abi_kernel = k->landlock_abi_kernel;
	snprintf(rep->landlock_cap, sizeof rep->landlock_cap, "%s", k->landlock_cap);
	rep->grants = nono_caps_grant_count(caps);
	rep->platform_rules = nono_caps_platform_rule_count(caps);
	bool best_effort = flags & NONO_FLAG_BEST_EFFORT;
	int r = 0;
	if (flags & ~NONO_FLAG_BEST_EFFORT)
		r = nono_fail(err, -EINVAL, "unknown flags 0x%x", flags & ~NONO_FLAG_BEST_EFFORT);
	else if (k->landlock_abi < 0)
		r = nono_fail(err, -EINVAL,
			      "NONO_MAX_LANDLOCK_ABI is not an integer 0..64: refusing to guess "
			      "which Landlock ABI to enforce");
	if (r == 0)
		r = check_combinations(caps, k, err);
	/* Network first: Landlock's TCP rules and the filter follow the enforced mode. */
	if (r == 0)
		r = decide_network(caps, k, best_effort, plan, err);
	if (r == 0)
		r = decide_landlock(k, best_effort, plan, err);
	if (r == 0)
		r = decide_seccomp(caps, k, best_effort, plan, err);
	if (r == 0)
		r = nono_mounts_decide(caps, k, best_effort, plan, err);
	if (r == 0)
		decide_meta(k, plan);
	rep->net_enforced = plan->net;
	nono_caps_network(caps, &rep->proxy_port); /* as requested (0 unless proxy-only) */
	/* Grants the supervisor honours: none without it (each such call is denied then). */
	rep->unix_sockets = plan->notify ? nono_caps_unix_socket_count(caps) : 0;
	rep->bind_ports = plan->notify && plan->net == NONO_NET_PROXY_ONLY
				  ? nono_caps_bind_port_count(caps)
				  : 0;
	rep->downgraded = rep->n_downgrades > 0;
	if (r < 0) {
		/* A refused plan enforces nothing: say so rather than half of it. */
		rep->seccomp = rep->supervisor = rep->truncate_by_filter = false;
		plan->notify = plan->seccomp = false;
	}
	nono_report_render(rep);
	return r;
}

static void plan_free_parts(struct nono_plan *plan)
{
	if (plan->ruleset_fd >= 0)
		close(plan->ruleset_fd);
	plan->ruleset_fd = -1;
	free(plan->prog.filter);
	plan->prog.filter = NULL;
	free(plan->mount_ops);
	plan->mount_ops = NULL;
	plan->prog.len = 0;
}

/* Probe, decide, build. `for_run`: the plan will be entered, so a proxy port must be known. */
static int plan_prepare(const nono_caps *caps, unsigned flags, bool for_run, struct nono_plan *plan,
			nono_error *err)
{
	struct nono_kernel k;
	nono_kernel_probe(&k);
	k.mount_ns = nono_mounts_wanted(caps) && nono_kernel_mount_ns();
	int r = nono_plan_decide(caps, &k, flags, plan, err);
	if (r < 0)
		return r;
	if (for_run && plan->net == NONO_NET_PROXY_ONLY && plan->proxy_port == 0)
		return nono_fail(err, -EINVAL,
				 "proxy-only needs the proxy's port: start the proxy first (port 0 "
				 "only means \"chosen at start\" in a plan report)");
	r = nono_landlock_build(caps, plan, &plan->ruleset_fd, err);
	if (r == 0 && plan->seccomp)
		r = nono_seccomp_build(plan->seccomp_variant, &plan->prog, err);
	if (r < 0)
		plan_free_parts(plan);
	return r;
}

int nono_plan_prepare(const nono_caps *caps, unsigned flags, struct nono_plan *plan,
		      nono_error *err)
{
	if (!caps || !plan)
		return nono_fail(err, -EINVAL, "caps and plan are required");
	return plan_prepare(caps, flags, true, plan, err);
}

int nono_plan_enter(const struct nono_plan *plan, int *listener_fd)
{
	/* Raw syscalls only: this runs between fork and execve. Order: no_new_privs (required by
	 * both, and by landlock_restrict_self without CAP_SYS_ADMIN), then Landlock (before seccomp,
	 * so our own filter never has to allow the Landlock syscalls), then the filter (last: it may
	 * trap syscalls the earlier steps use). */
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
	int r = plan_prepare(caps, flags, false, &plan, err);
	if (report)
		*report = plan.report;
	if (r == 0)
		nono_plan_release(&plan);
	return r;
}
