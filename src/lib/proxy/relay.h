/* relay.h — what happens once a request is allowed and its upstream connected: tunnel.c relays a
 * CONNECT tunnel, forward.c one plain (absolute-form) HTTP request. Each installs its own callbacks
 * in the connection; when a kept-alive client may send another request, forward.c hands the
 * connection back through c->on_reuse. */
#ifndef NONO_PROXY_RELAY_H
#define NONO_PROXY_RELAY_H

#include "conn.h"

void tunnel_start(struct conn *c);
void forward_start(struct conn *c);

#endif /* NONO_PROXY_RELAY_H */
