/* routes.h — the credential-route options shared by `nono run` and `nono proxy` (routes.c):
 * --route PREFIX=UPSTREAM, --credential PREFIX=env://VAR|file://PATH|keyring://…, --route-ca
 * PREFIX=PEM, --route-endpoint PREFIX=METHOD:/PATH-PATTERN. Collected while parsing, given to the
 * library's proxy configuration in one step (so the order of the options does not matter). */
#ifndef NONO_CLI_ROUTES_H
#define NONO_CLI_ROUTES_H

#include "nono.h"
#include "util.h"

#include <stdio.h>

struct route_opts {
	struct strvec routes, creds, cas, endpoints;
};

/* Record one option's argument (borrowed). Returns -1 to go on or an exit status. */
int route_opts_route(struct route_opts *ro, const char *arg);
int route_opts_credential(struct route_opts *ro, const char *arg);
int route_opts_ca(struct route_opts *ro, const char *arg);
int route_opts_endpoint(struct route_opts *ro, const char *arg);
/* Add the routes to `cfg`. A --credential, --route-ca or --route-endpoint for a prefix without a
 * --route is a usage error. Returns -1 when done, else an exit status (after printing why; never
 * the secret). */
int route_opts_apply(const struct route_opts *ro, nono_proxy_config *cfg);
/* For --dry-run: one line a route, the secret's source and never its value. */
void route_opts_print(const nono_proxy_config *cfg, FILE *f);
/* The command's environment: `user` ("NAME=VALUE", may be NULL) with the routes' variables
 * (nono_proxy_credential_env) added; the routes' names win. *out is NULL-terminated, malloc'd
 * (nono_strv_free). Returns -1 or an exit status. */
int route_env_merge(const nono_proxy *p, const char *const *user, char ***out);
/* Once the proxy holds the secrets: remove every env:// source variable from nono's own environment,
 * its value overwritten in place first, so neither --inherit-env nor /proc/<nono>/environ hands it
 * to anyone. */
void route_scrub_env(const struct route_opts *ro);
/* A file:// credential the command could read (inside a read grant) is refused: -1 when none is,
 * else the exit status (message printed). */
int route_opts_check_files(const struct route_opts *ro, const nono_caps *caps);
void route_opts_free(struct route_opts *ro);

#endif
