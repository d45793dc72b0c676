/* profile_opts.h — `--profile` in the run/why options (profile_opts.c). */
#ifndef NONO_CLI_PROFILE_OPTS_H
#define NONO_CLI_PROFILE_OPTS_H

#include "options.h"
#include "profile.h"

/* Load o->profile (when given) into o->prof and merge its network and environment into the
 * options. Returns -1 to go on, else an exit status (after printing why). */
int profile_opts_merge(struct run_opts *o);
void profile_opts_free(struct run_opts *o);

#endif
