/* denials.h — the report of what a run denied: events from the supervisor's ring and the proxy's
 * ring are collected (with -v or a proxy, a thread drains both while the command runs and -v
 * prints each decision as it arrives; otherwise the supervisor's ring is drained at the end) and, after the command exits, one line per distinct denial with the flag that would
 * allow it goes to stderr (-q silences it). */
#ifndef NONO_CLI_DENIALS_H
#define NONO_CLI_DENIALS_H

#include "nono.h"

#include <stdbool.h>
#include <stdio.h>

struct denials;

/* Start collecting from `sup` (the ring nono_exec fills; borrowed) and `proxy` (may be NULL).
 * `verbose`: print every decision to stderr as it arrives; `net`: the network mode enforced (what
 * the hints say). NULL when out of memory. */
/* `tee` (optional): every event drained from the rings is also pushed there (the session
 * ledger's ring: it records them after the run). */
struct denials *denials_start(nono_audit *sup, nono_proxy *proxy, bool verbose, nono_net_mode net,
			      nono_audit *tee);
/* The capacity the supervisor's ring needs for what denials_start(verbose, proxy) will do: with
 * a thread draining it while the command runs, 4096; without one it holds the whole run's
 * decisions until the end, so as many as the ledger keeps (AUDIT_RUN_RING_CAPACITY). The ring's
 * memory follows use (nono_audit_new), so the larger capacity costs nothing until a command is
 * denied that often. */
size_t denials_ring_capacity(bool verbose, nono_proxy *proxy);
/* Stop the thread, drain what is left, and print the summary to `f` unless `quiet`. `fs_audit`
 * is nono_exec_result.fs_audit: unless 1, the summary says why filesystem denials are not in it.
 * `failed`: the command exited non-zero; with nothing else to report, one line then still says
 * that filesystem denials are not visible (one may be the cause). Frees `d`; NULL is a no-op. */
void denials_finish(struct denials *d, FILE *f, bool quiet, int fs_audit, bool failed);

/* The flag that would allow what `ev` (a denial) describes, e.g. "--allow-domain api.test"; or a
 * sentence when no flag can. Written to buf. */
void denials_hint(const nono_audit_event *ev, nono_net_mode net, char *buf, size_t len);

#endif
