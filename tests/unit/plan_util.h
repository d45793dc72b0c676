/* plan_util.h — fake kernels for the decision step (nono_plan_decide makes no syscall, so a test can
 * hand it any kernel), and "decide, then build only Landlock" for tests that enter one layer. */
#ifndef NONO_PLAN_UTIL_H
#define NONO_PLAN_UTIL_H
#include "internal.h"

/* Everything available, Landlock at `abi`. */
static inline struct nono_kernel unit_kernel(int abi)
{
	struct nono_kernel k = {
		.landlock_abi = abi,
		.landlock_abi_kernel = abi,
		.seccomp_filter = true,
		.x86_64 = true,
		.user_notif = 0,
		.pidfd_getfd = true,
		.wait_killable_recv = true,
		.stdio_dgram_fd = -1,
	};
	return k;
}

/* Decide with `k`, then build the Landlock ruleset only (plan->ruleset_fd). */
static inline int unit_landlock_plan(const nono_caps *c, unsigned flags, const struct nono_kernel *k,
				     struct nono_plan *plan, nono_error *e)
{
	int r = nono_plan_decide(c, k, flags, plan, e);
	return r < 0 ? r : nono_landlock_build(c, plan, &plan->ruleset_fd, e);
}
#endif
