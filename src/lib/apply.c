/* apply.c — nono_apply: sandbox the calling process itself, irreversibly, with the plan that
 * plan.c prepares (the same plan nono_exec enters after fork). With a supervised network a helper
 * process (supervisor_helper.c) is forked first, before the filter exists, and receives the
 * listener. */
#include "internal.h"

#include <string.h>

int nono_apply(const nono_caps *caps, unsigned flags, nono_report *report, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "caps is required");
	/* Landlock and seccomp bind the calling thread (and its future children) only: other threads
	 * would stay unsandboxed. (TSYNC for Landlock is not in any released ABI.) */
	long threads = 0;
	int tr = nono_proc_status_field(0, "Threads", 10, &threads);
	if (tr < 0)
		return nono_fail(err, tr, "cannot count this process's threads (/proc/self/status): %s",
				 strerror(-tr));
	if (threads != 1)
		return nono_fail(err, -EBUSY,
				 "the process has %ld threads: apply needs a single-threaded process "
				 "(Landlock and seccomp would bind only the calling thread)",
				 threads);

	struct nono_plan plan;
	int r = nono_plan_prepare(caps, flags, &plan, err);
	if (report)
		*report = plan.report;
	if (r == 0 && plan.mount_ops) {
		/* A private mount namespace is made for nono_exec's command (mounts.c); the calling
		 * process's own namespaces are not ours to change. */
		nono_plan_release(&plan);
		return nono_fail(err, -EOPNOTSUPP,
				 "deny paths inside grants and read-only grants inside writable "
				 "grants are enforced by nono_exec only (a private mount namespace for "
				 "the command); nono_apply cannot");
	}
	if (r < 0)
		return r;

	struct nono_sup_helper helper = {.fd = -1, .pid = -1};
	if (plan.notify) {
		/* The helper must be forked before the filter exists, so it stays unfiltered. */
		struct nono_sup_config sc = {.net = plan.net, .proxy_port = plan.proxy_port,
					     .proxy_v6 = plan.proxy_v6,
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
