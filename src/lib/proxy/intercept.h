/* intercept.h — TLS interception of allowed CONNECTs (intercept.c), and its boundary to the route
 * engine: struct np_intercept_hooks, the one place where a route sees a decrypted request. */
#ifndef NONO_PROXY_INTERCEPT_H
#define NONO_PROXY_INTERCEPT_H

#include "conn.h"

/* The route engine's side of interception: route_icpt.c's when the config has routes (cfg->hooks
 * overrides them, for tests). A host no hook claims may still be listed with np_intercept_add_host (tests):
 * the built-in pass-through intercepts it and relays its requests unchanged (each still audited).
 *
 * route(): does a route serve an allowed CONNECT to host:port (normalised host)? Returns the route
 *   (opaque to interception; it must live as long as the config) or NULL: the tunnel is relayed
 *   untouched, its bytes never decrypted.
 * request(): one request head read from the decrypted client stream. `h` is parsed (its pointers
 *   into `raw`, the head's h->head_len bytes); `route` is what route() returned for this tunnel.
 *   Either fill *out / *out_len with the head to send upstream (malloc'd; the caller wipes and
 *   frees it: it may hold a secret) — the route's credential injected, the client's stripped — and
 *   return 0; or return an HTTP status with a printable `reason`: the client gets that answer
 *   inside TLS with X-Nono-Denial by status (400 bad-request, 401 credential-required, 503
 *   out-of-memory, any other endpoint-denied), the request is not sent and the connection closes. The body that follows is
 *   relayed as framed by the ORIGINAL head, so a route must not change Content-Length or
 *   Transfer-Encoding. `ev` is the request's audit event (method, path, target, port filled;
 *   recorded after the call): the hook may add its own fields. Never blocks (loop thread).
 * upstream_ctx() (may be NULL): the TLS client context for the route's upstream — its own CA
 *   (tls_ca), client certificate and key. Borrowed (lives as long as the config). NULL, or a NULL
 *   result: the system trust store. Verification of the name/IP is always on. */
struct np_intercept_hooks {
	const void *(*route)(const struct nono_proxy_config *cfg, const char *host, uint16_t port);
	int (*request)(const struct nono_proxy_config *cfg, const void *route, const http_head *h,
		       const char *raw, char **out, size_t *out_len, char *reason, size_t reason_cap,
		       nono_audit_event *ev);
	struct ssl_ctx_st *(*upstream_ctx)(const void *route);
};

/* The policy allowed this CONNECT (or SOCKS5 CONNECT) and its upstream is connected: is it to be
 * intercepted? Sets c's route when so. */
bool intercept_wanted(struct conn *c);
/* Take over: TLS to the upstream first (verified; a failure is answered 502 with the reason and
 * audited), then the tunnel's "200", TLS with the client on a minted leaf, and the relay — request
 * heads through hooks->request, everything else streamed. */
void intercept_start(struct conn *c);

#endif /* NONO_PROXY_INTERCEPT_H */
