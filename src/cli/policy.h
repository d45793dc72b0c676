/* policy.h — the policy from `nono run` / `nono why` options: the capability set (the default
 * system set first, then the user's grants, the network mode, socket grants) and the in-process
 * proxy's configuration. Shared by run, --dry-run and why. */
#ifndef NONO_CLI_POLICY_H
#define NONO_CLI_POLICY_H

#include "options.h"

/* The capability set. Proxy-only (--allow-domain / --proxy-port) gets `proxy_port`; 0 means
 * "chosen when the proxy starts", which plans (--dry-run, why) accept and nono_exec refuses: a
 * real run sets the started proxy's port (nono_caps_set_network) before it executes anything.
 * Returns -1 with *out set, else an exit status (after printing why). */
int policy_build_caps(const struct run_opts *o, uint16_t proxy_port, nono_caps **out);

/* The proxy's configuration from --allow-domain, --allow-internal, --proxy-port and --audit-log
 * (not started). Returns -1 with *out set, else an exit status. */
int policy_build_proxy_config(const struct run_opts *o, nono_proxy_config **out);

/* Is `original` (a grant's path as given) one of the default system paths? */
bool policy_is_system_path(const char *original);

/* The library's verdict on the combination of grants (its plan step), without running anything:
 * -EINVAL (e.g. a bind grant with the network blocked) is a usage error with the library's own
 * message, the same for every front end. Fills *rep and *err; returns the plan's code. */
int policy_plan(const nono_caps *caps, const struct run_opts *o, nono_report *rep, nono_error *err);

#endif
