/* icpt.h — TLS interception for `nono run` and `nono proxy` (icpt.c): `--intercept` (a CA
 * directory made for this session and removed at its end) or `--intercept-ca-dir DIR` (nono-py's
 * intercept_ca_dir). Only the session CA's certificate and the bundle are written there; the CA's
 * key stays in nono's memory. */
#ifndef NONO_CLI_ICPT_H
#define NONO_CLI_ICPT_H

#include "nono.h"

#include <stdbool.h>
#include <stdio.h>

struct icpt_opts {
	bool on;
	const char *dir; /* --intercept-ca-dir (borrowed), NULL: a per-session directory */
};

/* One option: `dir` NULL for --intercept. Both options, or one twice with different values, are a
 * usage error. Returns -1 to go on or an exit status (message printed). */
int icpt_opt(struct icpt_opts *io, const char *dir, const char *sub);
/* The CLI's rule: interception applies to the routes' upstreams only, so it needs a --route.
 * -1 or the usage exit status. */
int icpt_check(const struct icpt_opts *io, size_t nroutes, const char *sub);
/* An explicit DIR the command could write is refused (it could swap the bundle its own clients
 * trust, or plant files nono removes). -1 or the usage exit status. caps may be NULL (nono proxy). */
int icpt_check_grants(const struct icpt_opts *io, const nono_caps *caps);
/* Before the proxy starts: make the per-session directory (*tmp, malloc'd: icpt_remove it), set the
 * directory on cfg, and with caps check it is not writable by the command. Makes nono's process non-dumpable: the CA key (and the
 * routes' secrets) in its memory stay out of reach of /proc/PID/mem and ptrace by processes of the
 * same user. -1 or an exit status (message printed). */
int icpt_prepare(const struct icpt_opts *io, nono_proxy_config *cfg, nono_caps *caps, char **tmp);
/* Once the proxy has written it: grant the command read access to the CA bundle file (its clients
 * trust it through SSL_CERT_FILE & co), and to nothing else of the directory. -1 (also when p
 * intercepts nothing) or an exit status (message printed). */
int icpt_grant_bundle(const nono_proxy *p, nono_caps *caps);
/* After nono_proxy_stop (which removed the files): remove a per-session directory; frees *tmp. */
void icpt_remove(char **tmp);
/* For --dry-run and messages: the directory as it will be ("a per-session directory" or DIR). */
const char *icpt_shown(const struct icpt_opts *io);
/* `nono proxy`: the CA variables a client needs, one NAME=VALUE a line. */
void icpt_print_env(const nono_proxy *p, FILE *f);

#endif
