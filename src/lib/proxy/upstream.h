/* upstream.h — the connection side of the external proxy (upstream.c); its configuration is in
 * proxy_int.h. */
#ifndef NONO_PROXY_UPSTREAM_H
#define NONO_PROXY_UPSTREAM_H

#include "conn.h"

/* Called when the policy has passed, before the dial: when the request's target goes through the
 * external proxy, put its addresses and port in c->addrs / c->dial_port, set c->via_ext and the
 * audit mode "external". Otherwise leave the checked target addresses in place. */
void upstream_divert(struct conn *c);
/* The dial to the external proxy succeeded: ask it for a tunnel to c->ev.target:c->ev.port. On
 * "200" `done` is called (the connection then is as if dialled directly); on a refusal or a
 * broken answer the client gets 502 with the external proxy's status and the connection closes. */
void upstream_handshake(struct conn *c, void (*done)(struct conn *c));

#endif /* NONO_PROXY_UPSTREAM_H */
