/* profile_net.h — a profile's credential routes and TLS interception (profile_net.c): the
 * `network` keys `custom_credentials` (NAME → {upstream, credential_key, tls_ca, endpoint_rules}:
 * `--route NAME=UPSTREAM`, `--credential`, `--route-ca`, `--route-endpoint`), `intercept` (bool:
 * `--intercept`) and `intercept_ca_dir` (`--intercept-ca-dir`). They become the same options, so
 * they get exactly the flags' checks (sources, the CA directory against the write grants, a route
 * for interception). The command line wins: its own route with the same prefix replaces the
 * profile's, and its --intercept/--intercept-ca-dir replace the profile's. */
#ifndef NONO_CLI_PROFILE_NET_H
#define NONO_CLI_PROFILE_NET_H

#include "options.h"
#include "profile.h"

#include <stdbool.h>

/* Is `key` of a profile's `network` one of ours? */
bool profile_net_owns(const char *key);
/* Check one of our keys' value (`where` is "network.KEY" for messages). false after printing. */
bool profile_net_check(const char *key, json_t *v, const char *prof, const char *where);
/* Merge one document's `network` (its parents came first: a later document's route of the same
 * name replaces the earlier one, its interception setting replaces the earlier one). -1 or an
 * exit status. */
int profile_net_merge(struct profile *p, json_t *net, const char *prof);
/* Turn the merged settings into options of `o` (nothing when the command line blocks the
 * network). -1 or an exit status (after printing why). */
int profile_net_to_opts(struct run_opts *o, struct profile *p);
/* Free what profile_net_merge and profile_net_to_opts keep in `p`. */
void profile_net_free(struct profile *p);

#endif
