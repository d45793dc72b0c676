/* audit_run.h — the session ledger of `nono run` (audit_run.c) and `nono audit` (audit_cmd.c).
 * Sessions: $XDG_STATE_HOME/nono/audit/ID/{ledger.jsonl,session.json}. */
#ifndef NONO_CLI_AUDIT_RUN_H
#define NONO_CLI_AUDIT_RUN_H

#include "rollback.h"

/* The decisions one session can record; past it the oldest are dropped and counted as lost. */
#define AUDIT_RUN_RING_CAPACITY 65536

struct audit_run {
	nono_ledger *ledger; /* NULL: no ledger for this run */
	nono_audit *ring;    /* the decisions, teed by the denial report's collector (denials.c) */
	uint64_t lost_before; /* events lost upstream of `ring` (the denial report's ring overflowed) */
	json_t *meta;        /* session.json */
	char *id, *dir;
};

/* Before the command: create the session and write session_start. Never fails the run: a ledger
 * that cannot be written (or that a writable grant could reach) is reported and skipped. `env`:
 * the command's environment list (for the executable's resolution). Returns 0. */
int audit_run_begin(const struct run_opts *o, const nono_caps *caps, const char *const *env,
		    const struct rb_run *rb, struct audit_run *a);
/* After it: the decisions (supervisor ring, proxy ring), session_end, session.json. */
void audit_run_end(struct audit_run *a, nono_proxy *proxy, int status);
void audit_run_free(struct audit_run *a);

#endif
