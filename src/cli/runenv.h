/* runenv.h — what `nono run` sets up around the command besides the policy: the environment, the
 * private temp dir, and the checks that keep options from silently doing nothing. Each function
 * returns -1 to go on, else an exit status (after printing why), unless it says otherwise. */
#ifndef NONO_CLI_RUNENV_H
#define NONO_CLI_RUNENV_H

#include "options.h"

/* A fresh directory (mode 0700) under the caller's TMPDIR or /tmp; *out is malloc'd. */
int runtmp_create(char **out);
/* Remove it and everything in it, following no symlink (gone already: 0; nono_exec's reaper
 * normally removes it, nono_exec_opts.remove_dir). Returns 0, or -1 after printing why. */
int runtmp_remove(const char *path);

/* The command's environment (nono_env_compose): the basic set, --clear-env or --inherit-env, then
 * --env NAME copies and --env NAME=VALUE; with a temp dir, TMPDIR/TMP/TEMP point at it and it
 * stands in for a HOME the policy cannot read (unless --env HOME was asked for). --inherit-env's
 * withheld names are printed unless `quiet`. *out: free with nono_strv_free. */
int runenv_build(const struct run_opts *o, const nono_caps *caps, const char *tmpdir, bool quiet,
		 char ***out);

/* --audit-log must lie outside every writable grant (the command could forge it). */
int runenv_check_audit_log(const nono_caps *caps, const char *path);
/* Something must accept TCP connections on addr:port (--proxy-port / --proxy-url alone). */
int runenv_check_listening(const char *addr, uint16_t port, const char *opt);

#endif
