/* dryrun.h — `nono run --dry-run`: print the policy and what this kernel enforces of it (text, or
 * JSON with --json), from structured fields only. */
#ifndef NONO_CLI_DRYRUN_H
#define NONO_CLI_DRYRUN_H

#include "options.h"

/* Render the dry run of `caps` (built from `o`; proxy port 0 = chosen at start). Returns the exit
 * status: 0, 123 when this kernel cannot enforce the policy, 125 when the library refuses the
 * combination of grants, 122 out of memory. */
int dry_run(const struct run_opts *o, const nono_caps *caps);

#endif
