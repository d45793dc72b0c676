/* request.h — the request path (request.c): a new or kept-alive client connection's head, the
 * policy decision, name resolution and the dial, then the hand-over to tunnel.c or forward.c. */
#ifndef NONO_PROXY_REQUEST_H
#define NONO_PROXY_REQUEST_H

#include "conn.h"

/* Start the resolver (its eventfd joins the loop). */
int request_init(struct np_ctx *x, nono_error *err);
/* After the loop has stopped. */
void request_fini(struct np_ctx *x);
/* Take charge of a connection: read a request head (also what a kept-alive connection returns to). */
void request_start(struct conn *c);

#endif /* NONO_PROXY_REQUEST_H */
