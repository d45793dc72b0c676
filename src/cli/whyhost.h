/* whyhost.h — `nono why --host` (whyhost.c). */
#ifndef NONO_CLI_WHYHOST_H
#define NONO_CLI_WHYHOST_H

#include "options.h"

/* Print the answer for o->why_host under `caps` (and the proxy configuration the same options
 * build); returns 0 allowed, 1 denied, or a usage exit status. */
int why_host(const nono_caps *caps, const struct run_opts *o);

#endif
