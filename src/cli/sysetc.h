/* sysetc.h — /etc in the default system set: each entry granted read-only on its own, the secrets
 * (password hashes, sudoers, SSH host keys, TLS private keys, ...) left out. */
#ifndef NONO_CLI_SYSETC_H
#define NONO_CLI_SYSETC_H

#include "nono.h"
#include "util.h"

/* Called with each withheld path that exists (for --dry-run). */
typedef void (*sysetc_cb)(const char *path, void *ctx);

/* Grant /etc's entries to `caps`. Returns 0, or -1 after printing why. */
int sysetc_grant(nono_caps *caps, sysetc_cb withheld_cb, void *ctx);

#endif
