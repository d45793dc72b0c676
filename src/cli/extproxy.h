/* extproxy.h — `--external-proxy URL` and `--bypass HOST`, shared by `nono run` and `nono proxy`. */
#ifndef NONO_CLI_EXTPROXY_H
#define NONO_CLI_EXTPROXY_H

#include "nono.h"
#include "util.h"

/* Apply them to cfg. `url` may be NULL (then `bypass` must be empty), or "env://VAR" to read the
 * URL from nono's own environment (keeps a proxy password out of the command line, which every
 * process of the user can read in /proc). Messages never echo the URL. Returns -1 to go on, else
 * an exit status (EXIT_USAGE). */
int cli_external_proxy(nono_proxy_config *cfg, const char *url, const struct strvec *bypass);
/* The --external-proxy value for display: credentials replaced by "***" ("env://VAR" as given:
 * it names where the URL comes from, not its contents). Writes into buf; returns buf. */
const char *cli_external_proxy_shown(const char *url, char *buf, size_t cap);
/* Collect one option: --bypass HOST (is_bypass) into *bypass, else --external-proxy URL into *url.
 * Returns -1 to go on, or EXIT_INTERNAL (out of memory, said). */
int cli_extproxy_opt(const char **url, struct strvec *bypass, bool is_bypass, const char *arg);

#endif
