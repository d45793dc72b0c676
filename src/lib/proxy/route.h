/* route.h — credential routes (issue 14): the route table and its phantom credentials
 * (route_cfg.c), the request path of a routed request (route.c) and the TLS leg to the upstream
 * (route_tls.c). A routed request arrives in origin form ("GET /openai/v1/models"), is matched by
 * prefix, must present the route's per-session placeholder where the credential belongs, passes the
 * endpoint rules and the upstream's address policy, and leaves with the real secret in its place. */
#ifndef NONO_PROXY_ROUTE_H
#define NONO_PROXY_ROUTE_H

#include "conn.h"

#define NP_ROUTE_PREFIX_MAX 64
#define NP_ROUTE_MAX 64
#define NP_ROUTE_RULES_MAX 64
#define NP_RULE_PATTERN_MAX 256
#define NP_PLACEHOLDER_LEN 37 /* "nono_" + 32 hex */
#define NP_SECRET_MAX 16384
#define NP_ROUTE_POOL 8         /* idle upstream connections kept per route */
#define NP_ROUTE_POOL_IDLE_MS 20000 /* older ones are closed, not reused (servers time out idle ones) */

struct np_endpoint {
	char method[16]; /* "*" = any */
	char *pattern;   /* "/v1/models", "*" one segment, "**" any rest */
};

struct np_route {
	char prefix[NP_ROUTE_PREFIX_MAX]; /* "/openai" (no trailing slash) */
	char *upstream;                   /* as given, for messages */
	bool tls;
	char host[NP_HOST_MAX];           /* raw upstream host (brackets removed) */
	uint16_t port;
	char *base_path;                  /* "" or "/v1" (no trailing slash) */
	char *source;                     /* where the secret comes from ("env://X"), NULL: no credential */
	unsigned char *secret;            /* NULL: none (yet: a source is read at start) */
	bool has_value;                   /* the secret was given as a value, not a source */
	size_t secret_len;
	nono_inject_mode mode;
	char *inject_header, *format, *path_pattern, *path_replacement, *query_param;
	char *env_var;                    /* holds the placeholder in the command's environment */
	char *tls_ca, *tls_cert, *tls_key;
	struct np_endpoint *rules;
	size_t nrules;
	/* set when the proxy starts (its own copy of the config only) */
	char placeholder[NP_PLACEHOLDER_LEN + 1];
	void *ssl_ctx;                    /* SSL_CTX * */
	void *session;                    /* SSL_SESSION * for resumption (under session_lock) */
	pthread_mutex_t session_lock;     /* also guards the pool */
	struct np_pooled {                /* idle upstream connections, newest last */
		int fd;
		void *ssl;
		int64_t since_ms;
		char family[8];
	} pool[NP_ROUTE_POOL];
	bool started;                     /* np_routes_start ran: the lock exists */
	unsigned npool;
};

/* route_cfg.c (the table) and route.c (matching) */
void np_route_free(struct np_route *r);
struct np_route *np_route_clone(const struct np_route *r);
/* The running proxy's copy: placeholders and TLS contexts. Errors: -EINVAL (TLS files), -ENOMEM. */
int np_routes_start(struct nono_proxy_config *cfg, nono_error *err);
/* Longest prefix matching the origin-form target; *rest points after the prefix. */
const struct np_route *np_route_match(const struct nono_proxy_config *cfg, const char *target,
				      size_t len, size_t *rest_off);
/* Does `path` (no query) pass the route's endpoint rules? True when there are none. */
bool np_route_endpoint_ok(const struct np_route *r, const char *method, size_t method_len,
			  const char *path, size_t path_len);
/* Glob of the endpoint rules: "*" one segment's worth (no '/'), "**" anything. */
bool np_route_glob(const char *pat, const char *s, size_t len);
/* Constant-time: does [s, s+len) contain the placeholder? */
bool np_route_has_placeholder(const struct np_route *r, const char *s, size_t len);

/* route_tls.c: the route's SSL_CTX (system store or tls_ca, client cert/key). Errors: -EINVAL with a
 * message naming the file, -ENOMEM. */
int np_route_tls_init(struct np_route *r, nono_error *err);
void np_route_tls_free(struct np_route *r);
void np_route_pool_free(struct np_route *r);

/* The head for the upstream (route.c; pure, for tests and the fuzzer): `rest` is the target after the
 * prefix. *out is malloc'd (holds the secret: wipe it before free) also when the placeholder is
 * missing. Returns 1 (the placeholder was presented, or the route has no credential), 0 (missing),
 * -ENOMEM. */
int np_route_rewrite(const struct np_route *r, const http_head *h, const char *rest, size_t rest_len,
		     char **out, size_t *out_len);
/* Why np_route_apply refused a request: the HTTP answer and the audit's denial category. */
struct np_route_refusal {
	int status;
	const char *phrase, *code, *category;
	char reason[NONO_REASON_MAX];
};
/* The one request step shared by reverse-proxy routes (route_request) and interception
 * (route_icpt.c): `h`'s target from `off` on is the path under the route's base (the prefix skipped,
 * or the upstream's base path under interception). Checks the path is plain, the placeholder is
 * presented where the route's credential belongs (else 401), the endpoint rules (else 403); fills
 * ev's path (placeholder masked), auth_outcome, endpoint_decision and managed_credential_active.
 * Returns 0 with *out (malloc'd, holds the secret: np_route_wipe it) or the refusal's status with
 * *d filled and *out NULL. */
int np_route_apply(const struct np_route *r, const http_head *h, size_t off, nono_audit_event *ev,
		   char **out, size_t *out_len, struct np_route_refusal *d);
/* route_id, injection_mode, auth_mechanism of a request on route r. */
void np_route_audit(nono_audit_event *ev, const struct np_route *r);
/* ev->path: [p, p+len) printable, the route's placeholder masked. */
void np_route_audit_path(nono_audit_event *ev, const struct np_route *r, const char *p, size_t len);
/* Wipe and free a head that held the secret; NULL-safe. */
void np_route_wipe(char **buf, size_t *len);
/* route_icpt.c: interception's side of the routes (intercept.c uses them when there are routes). */
extern const struct np_intercept_hooks np_route_intercept_hooks;

/* For tests and the fuzzer: the placeholder of a route of a config that never started. */
void np_route_set_placeholder(struct np_route *r, const char *placeholder);

/* route.c: an origin-form request (target starts with '/'). Returns 0 when the request goes on to
 * the upstream (host normalised into `host`, *v its verdict, c->uq holds the rewritten head), or -1
 * when it was answered (denied). */
int route_request(struct conn *c, const http_head *h, char *host, np_verdict *v);
/* The route's answer when it is denied: audit + answer with the route fields set. */
void route_deny(struct conn *c, int status, const char *phrase, const char *code,
		const char *category, const char *reason);

/* route_tls.c: the upstream TCP connection is up: TLS handshake (https) then forward_start. */
void route_connected(struct conn *c);
/* Take an idle upstream connection of c's route that is still open and go straight to
 * forward_start. Returns false when there is none (then dial). */
bool route_pool_take(struct conn *c);

#endif /* NONO_PROXY_ROUTE_H */
