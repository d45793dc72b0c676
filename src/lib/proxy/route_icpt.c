/* route_icpt.c — the credential routes seen through TLS interception (the np_intercept_hooks that
 * intercept.c uses when the config has routes).
 *
 * A client that cannot be pointed at a base URL talks to the real upstream through the proxy
 * (CONNECT api.openai.com:443). When a route's upstream is that host and port (an https route;
 * names compare without case), intercept.c terminates the tunnel with a leaf from the session CA
 * and every decrypted request head comes here:
 *   - the request must be in origin form ("GET /v1/models") and lie under the base path of a route
 *     of that upstream (the longest one wins when several routes share the upstream): through a
 *     route a command reaches exactly the paths it reaches at {PREFIX}_BASE_URL, no others (403);
 *   - then the very step a reverse-proxy request takes (np_route_apply, route.c): the placeholder
 *     must be presented where the real credential belongs — the command sends its $ENV_VAR (the
 *     placeholder) as it would the real key, and the proxy swaps it — else 401; the endpoint rules
 *     (403); the client's credential stripped, the real one injected, hop-by-hop fields dropped,
 *     Host set to the upstream;
 *   - the audit event gets the route's fields (route_id, injection_mode, auth_mechanism,
 *     auth_outcome, managed_credential_active, endpoint_decision, denial_category) with mode
 *     "intercept".
 * The route's TLS settings (its tls_ca, client certificate and key) verify the upstream; with
 * several routes on one upstream the first route's settings are used for the connection. */
#include "intercept.h"
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool serves(const struct np_route *r, const char *host, uint16_t port)
{
	return r->tls && r->port == port && strcasecmp(r->host, host) == 0;
}

static const void *icpt_route(const struct nono_proxy_config *cfg, const char *host, uint16_t port)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (serves(cfg->routes[i], host, port))
			return cfg->routes[i];
	return NULL;
}

/* The route of first's upstream whose base path holds the target (the longest); *off is its
 * length. NULL when none does. */
static const struct np_route *pick(const struct nono_proxy_config *cfg, const struct np_route *first,
				   const char *target, size_t len, size_t *off)
{
	const struct np_route *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct np_route *r = cfg->routes[i];
		size_t bl = strlen(r->base_path);
		if (!serves(r, first->host, first->port) || bl > len || memcmp(target, r->base_path, bl) != 0)
			continue;
		if (bl < len && target[bl] != '/' && target[bl] != '?')
			continue;
		if (best && bl <= best_len)
			continue;
		best = r;
		best_len = bl;
	}
	*off = best_len;
	return best;
}

/* The rewritten head drops hop-by-hop fields (the reverse proxy keeps its upstream connections).
 * Here the client's connection is the upstream's: a client that asked for close (or speaks
 * HTTP/1.0) waits for the upstream to close after the answer, so that wish is passed on. */
static int keep_close(const http_head *h, char **out, size_t *out_len)
{
	static const char hdr[] = "Connection: close\r\n\r\n";
	bool close = h->version_minor == 0;
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, "close"))
			close = true;
	if (!close)
		return 0;
	char *n = malloc(*out_len + sizeof hdr);
	if (!n)
		return -1;
	memcpy(n, *out, *out_len - 2); /* without the blank line */
	memcpy(n + *out_len - 2, hdr, sizeof hdr - 1);
	size_t len = *out_len - 2 + sizeof hdr - 1;
	np_route_wipe(out, out_len);
	*out = n;
	*out_len = len;
	return 0;
}

static int icpt_request(const struct nono_proxy_config *cfg, const void *route, const http_head *h,
			const char *raw, char **out, size_t *out_len, char *reason, size_t reason_cap,
			nono_audit_event *ev)
{
	const struct np_route *first = route, *r;
	struct np_route_refusal d;
	size_t off = 0, plen = 0;
	(void)raw;
	while (plen < h->target_len && h->target[plen] != '?')
		plen++;
	/* Until a route is known the path is shown without its query, the placeholder masked. */
	np_route_audit_path(ev, first, h->target, plen);
	if (h->target_len == 0 || h->target[0] != '/') {
		snprintf(reason, reason_cap, "an intercepted request must name a path (origin form)");
		snprintf(ev->denial_category, sizeof ev->denial_category, "bad_request");
		return 400;
	}
	if (!(r = pick(cfg, first, h->target, h->target_len, &off))) {
		np_route_audit(ev, first);
		snprintf(ev->endpoint_decision, sizeof ev->endpoint_decision, "deny");
		snprintf(ev->denial_category, sizeof ev->denial_category, "endpoint_policy");
		snprintf(reason, reason_cap, "route %.40s: %.100s is outside the route's base path %.100s/",
			 first->prefix, ev->path, first->base_path);
		return 403;
	}
	np_route_audit(ev, r);
	int st = np_route_apply(r, h, off, ev, out, out_len, &d);
	if (st == 0 && keep_close(h, out, out_len) < 0) {
		np_route_wipe(out, out_len);
		snprintf(reason, reason_cap, "out of memory");
		return 503;
	}
	if (st != 0) {
		snprintf(reason, reason_cap, "%s", d.reason);
		snprintf(ev->denial_category, sizeof ev->denial_category, "%s", d.category);
	}
	return st;
}

static struct ssl_ctx_st *icpt_upstream_ctx(const void *route)
{
	const struct np_route *r = route;
	return r->ssl_ctx;
}

const struct np_intercept_hooks np_route_intercept_hooks = {icpt_route, icpt_request, icpt_upstream_ctx};
