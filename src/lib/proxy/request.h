/* request.h — the request path (request.c): a new or kept-alive client connection's head, the
 * policy decision, name resolution and the dial, then the hand-over to tunnel.c or forward.c. */
#ifndef NONO_PROXY_REQUEST_H
#define NONO_PROXY_REQUEST_H

#include "conn.h"

/* Use the shared resolver: results for this loop come back on sink `sink` (eventfd `efd`, which
 * joins the loop). Returns 0 or -errno. */
int request_attach(struct np_ctx *x, struct np_resolver *res, unsigned sink, int efd);
/* Take charge of a connection: read a request head (also what a kept-alive connection returns to). */
void request_start(struct conn *c);

#endif /* NONO_PROXY_REQUEST_H */
