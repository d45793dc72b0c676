/* socks5.h — SOCKS5 clients on the proxy's listener (socks5.c). */
#ifndef NONO_PROXY_SOCKS5_H
#define NONO_PROXY_SOCKS5_H

#include "conn.h"

/* The first byte the client sent is 5: take charge of the handshake (method choice, the token
 * as username/password, the request). When a CONNECT request is complete, `go` gets the raw host
 * and port and runs the proxy's ordinary policy path for a tunnel; its answers reach the client
 * as SOCKS replies (conn_answer and tunnel_start look at c->socks). */
void socks5_start(struct conn *c, void (*go)(struct conn *c, const char *host, uint16_t port));

#endif /* NONO_PROXY_SOCKS5_H */
