/* options.h — the options of `nono run` and `nono why` (they share the grant options), parsed by
 * options.c into a struct the other steps read: policy.c builds the capability set and the proxy
 * configuration from it, dryrun.c renders it, run.c and why.c act on it. */
#ifndef NONO_CLI_OPTIONS_H
#define NONO_CLI_OPTIONS_H

#include "nono.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct grant_arg {
	const char *opt; /* "--allow", ... (for messages) */
	const char *path;
	nono_access access;
	bool file;
};

enum run_mode { MODE_RUN, MODE_WHY };

struct run_opts {
	struct grant_arg *grants;
	size_t ngrants;
	bool no_system;
	bool net_block;
	struct strvec domains, internal, unix_socks, env;
	uint16_t *binds;
	size_t nbinds;
	bool proxy_port_set;
	uint16_t proxy_port;
	const char *audit_log, *workdir;
	double timeout;
	bool inherit_env, best_effort, dry_run, json;
	/* --rollback: snapshot the writable directory grants before and after (rollback_run.c) */
	bool rollback, rb_gitignore, rb_no_defaults;
	struct strvec rb_exclude, rb_include;
	bool no_ledger; /* --no-ledger: no session ledger (audit_run.c) */
	/* why */
	const char *why_path;
	nono_access why_access;
	bool why_net;
	char **cmd;
	int ncmd;
};

/* Parse argv (starting at the subcommand's name) into *o (zeroed by the caller). Only the rules
 * that are the CLI's own are checked here (e.g. --allow-internal needs --allow-domain); which
 * grant combinations mean something is the library's call (its plan step refuses the others for
 * every front end). Returns -1 to go on, else the exit status (0 after --help). */
int run_opts_parse(int argc, char **argv, enum run_mode mode, struct run_opts *o);
void run_opts_free(struct run_opts *o);

#endif
