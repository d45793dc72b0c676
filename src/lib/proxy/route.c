/* route.c — a routed request (origin form, "GET /openai/v1/models HTTP/1.1" sent to the proxy as
 * to a base URL), in this order: match the prefix → the path must be plain (no dot segments or
 * encoded '/', '.', '\': the endpoint rules and the upstream must see the same path) → the
 * per-session placeholder where the route's credential belongs (else 401: a stray local process
 * that never received it cannot spend the secret) → the endpoint rules (else 403) → the upstream's
 * name through the metadata and internal-address policy (the route itself allows its upstream) →
 * the head rewritten for the upstream: base path + rest, the upstream's Host, the client's
 * credential stripped from its place and the real one injected there, hop-by-hop fields dropped
 * (the upstream connection is HTTP/1.1 kept alive: route_tls.c keeps it for the next routed
 * request). request.c then reuses a kept connection or resolves and dials exactly as for any
 * request; route_tls.c speaks TLS to the upstream and forward.c streams the bodies. The buffer holding the rewritten head
 * (with the secret) is wiped when freed (outq_reset). */
#include "route.h"

#include <stdio.h>
#include <string.h>

/* ---- matching: prefix, endpoint rules, placeholder ---- */

const struct np_route *np_route_match(const struct nono_proxy_config *cfg, const char *target, size_t len,
				      size_t *rest_off)
{
	const struct np_route *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct np_route *r = cfg->routes[i];
		size_t pl = strlen(r->prefix);
		if (pl > len || pl <= best_len || memcmp(target, r->prefix, pl) != 0)
			continue;
		if (pl < len && target[pl] != '/' && target[pl] != '?')
			continue;
		best = r;
		best_len = pl;
	}
	*rest_off = best_len;
	return best;
}

/* An NFA walk over the pattern's tokens (a literal character, "*", "**"): O(pattern × path), no
 * backtracking, so no pattern can make a request expensive. */
bool np_route_glob(const char *pat, const char *s, size_t len)
{
	size_t n = strlen(pat);
	bool cur[NP_RULE_PATTERN_MAX + 2] = {0}, nxt[NP_RULE_PATTERN_MAX + 2];
	if (n > NP_RULE_PATTERN_MAX)
		return false;
	cur[0] = true;
	for (size_t i = 0;; i++) {
		/* epsilon: a star may match nothing */
		for (size_t k = 0; k < n; k++)
			if (cur[k] && pat[k] == '*')
				cur[k + ((k + 1 < n && pat[k + 1] == '*') ? 2 : 1)] = true;
		if (i == len)
			return cur[n];
		memset(nxt, 0, sizeof nxt);
		bool any = false;
		for (size_t k = 0; k < n; k++) {
			if (!cur[k])
				continue;
			if (pat[k] == '*') {
				bool dbl = k + 1 < n && pat[k + 1] == '*';
				if (dbl || s[i] != '/')
					any = nxt[k] = true; /* stay on the star */
				if (dbl)
					k++;
			} else if (pat[k] == s[i]) {
				any = nxt[k + 1] = true;
			}
		}
		if (!any)
			return false;
		memcpy(cur, nxt, sizeof cur);
	}
}

bool np_route_endpoint_ok(const struct np_route *r, const char *method, size_t method_len, const char *path,
			  size_t path_len)
{
	if (!r->nrules)
		return true;
	for (size_t i = 0; i < r->nrules; i++) {
		const struct np_endpoint *e = &r->rules[i];
		if (strcmp(e->method, "*") != 0 && !http_token_eq(method, method_len, e->method))
			continue;
		if (np_route_glob(e->pattern, path, path_len))
			return true;
	}
	return false;
}

bool np_route_has_placeholder(const struct np_route *r, const char *s, size_t len)
{
	const size_t pl = NP_PLACEHOLDER_LEN;
	bool found = false;
	for (size_t i = 0; i + pl <= len; i++) {
		unsigned char d = 0;
		for (size_t k = 0; k < pl; k++)
			d |= (unsigned char)(s[i + k] ^ r->placeholder[k]);
		found |= d == 0;
	}
	return found;
}

/* ---- the request ---- */

void route_deny(struct conn *c, int status, const char *phrase, const char *code, const char *category,
		const char *reason)
{
	snprintf(c->ev.denial_category, sizeof c->ev.denial_category, "%s", category);
	conn_audit(c, "deny", status, reason);
	conn_answer(c, status, phrase, code, reason);
}

/* A growing output buffer; every write is bounded by the size computed up front. */
struct obuf {
	char *b;
	size_t len, cap;
	bool over;
};

static void put(struct obuf *o, const void *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->over = true;
		return;
	}
	memcpy(o->b + o->len, s, n);
	o->len += n;
}

static void puts_(struct obuf *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_b64(struct obuf *o, const unsigned char *s, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);
		char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
			     i + 2 < n ? t[v & 63] : '='};
		put(o, q, 4);
	}
}

/* Percent-encoding: unreserved characters stay, and in a path segment also sub-delims, ':' and '@'
 * (RFC 3986 pchar; '/' is encoded: the secret stays one segment). */
static void put_pct(struct obuf *o, const unsigned char *s, size_t n, bool pchar)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~' || (pchar && ch && strchr("!$&'()*+,;=:@", ch))) {
			put(o, &ch, 1);
		} else {
			char q[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			put(o, q, 3);
		}
	}
}

/* `fmt` with its "{}" replaced by the secret (percent-encoded as a path segment when `in_path`). */
static void put_format(struct obuf *o, const char *fmt, const struct np_route *r, bool in_path)
{
	const char *a = strstr(fmt, "{}");
	put(o, fmt, (size_t)(a - fmt));
	if (in_path)
		put_pct(o, r->secret, r->secret_len, true);
	else
		put(o, r->secret, r->secret_len);
	puts_(o, a + 2);
}

static int b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Does an Authorization value "Basic base64(user:PLACEHOLDER)" (or the bare placeholder) present
 * the route's placeholder? */
static bool basic_has_placeholder(const struct np_route *r, const char *v, size_t len)
{
	char dec[256];
	size_t n = 0;
	unsigned acc = 0, bits = 0;
	if (len < 6 || strncasecmp(v, "Basic ", 6) != 0)
		return np_route_has_placeholder(r, v, len);
	for (size_t i = 6; i < len && v[i] != '='; i++) {
		int b = b64val(v[i]);
		if (b < 0 || n >= sizeof dec)
			return false;
		acc = acc << 6 | (unsigned)b;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dec[n++] = (char)(acc >> bits & 0xff);
		}
	}
	bool ok = np_route_has_placeholder(r, dec, n);
	explicit_bzero(dec, sizeof dec);
	return ok;
}

/* The header that carries the credential in this route's mode (NULL: none, it is in the URL). */
static const char *cred_header(const struct np_route *r)
{
	if (!r->secret)
		return NULL;
	return r->mode == NONO_INJECT_HEADER ? r->inject_header
	       : r->mode == NONO_INJECT_BASIC_AUTH ? "Authorization" : NULL;
}

/* Request headers for the upstream; checks the placeholder in a credential header. Returns whether
 * it was presented there. */
static bool put_headers(struct obuf *o, const http_head *h, const struct np_route *r)
{
	const char *ch = cred_header(r);
	bool presented = false;
	for (size_t i = 0; i < h->nheaders; i++) {
		const http_header *hd = &h->headers[i];
		if (http_is_hop_header(hd, h) || http_token_eq(hd->name, hd->name_len, "Content-Length") ||
		    http_token_eq(hd->name, hd->name_len, "Transfer-Encoding"))
			continue; /* the framing is written from what the proxy parsed: np_route_rewrite */
		if (ch && http_token_eq(hd->name, hd->name_len, ch)) {
			presented |= r->mode == NONO_INJECT_BASIC_AUTH
					     ? basic_has_placeholder(r, hd->value, hd->value_len)
					     : np_route_has_placeholder(r, hd->value, hd->value_len);
			continue; /* the client's credential never reaches the upstream */
		}
		put(o, hd->name, hd->name_len);
		put(o, ": ", 2);
		put(o, hd->value, hd->value_len);
		put(o, "\r\n", 2);
	}
	if (ch && r->mode == NONO_INJECT_HEADER) {
		puts_(o, r->inject_header);
		put(o, ": ", 2);
		put_format(o, r->format, r, false);
		put(o, "\r\n", 2);
	} else if (ch) {
		puts_(o, "Authorization: Basic ");
		put_b64(o, r->secret, r->secret_len);
		put(o, "\r\n", 2);
	}
	return presented;
}

/* The path (url_path mode: the placeholder segment replaced by the secret). */
static bool put_path(struct obuf *o, const struct np_route *r, const char *p, size_t len)
{
	if (!r->secret || r->mode != NONO_INJECT_URL_PATH) {
		put(o, p, len);
		return false;
	}
	const char *mark = strstr(r->path_pattern, "{}");
	size_t pre = (size_t)(mark - r->path_pattern), post = strlen(mark + 2);
	size_t need = pre + NP_PLACEHOLDER_LEN + post;
	for (size_t i = 0; i + need <= len; i++) {
		if (memcmp(p + i, r->path_pattern, pre) != 0 ||
		    !np_route_has_placeholder(r, p + i + pre, NP_PLACEHOLDER_LEN) ||
		    memcmp(p + i + pre + NP_PLACEHOLDER_LEN, mark + 2, post) != 0)
			continue;
		put(o, p, i);
		put_format(o, r->path_replacement, r, true);
		put(o, p + i + need, len - i - need);
		return true;
	}
	put(o, p, len);
	return false;
}

/* The query (query_param mode: the client's parameter of that name dropped, the real one added). */
static bool put_query(struct obuf *o, const struct np_route *r, const char *q, size_t len)
{
	bool inject = r->secret && r->mode == NONO_INJECT_QUERY_PARAM, presented = false, first = true;
	size_t nl = inject ? strlen(r->query_param) : 0;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && q[e] != '&')
			e++;
		bool mine = inject && e - i > nl && memcmp(q + i, r->query_param, nl) == 0 && q[i + nl] == '=';
		if (mine)
			presented |= e - i - nl - 1 == NP_PLACEHOLDER_LEN &&
				     np_route_has_placeholder(r, q + i + nl + 1, NP_PLACEHOLDER_LEN);
		else if (e > i) {
			put(o, first ? "?" : "&", 1);
			put(o, q + i, e - i);
			first = false;
		}
		i = e + 1;
	}
	if (inject) {
		put(o, first ? "?" : "&", 1);
		puts_(o, r->query_param);
		put(o, "=", 1);
		put_pct(o, r->secret, r->secret_len, false);
	}
	return presented;
}

/* A path the upstream and the endpoint rules read the same way: no dot segments, no "//", no
 * percent-encoded '.', '/' or '\', no backslash. */
static bool plain_path(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = p[i];
		if (ch == '\\')
			return false;
		if (ch == '%' && i + 2 < len + 0 && p[i + 1] == '2' && strchr("eEfF", p[i + 2]))
			return false;
		if (ch == '%' && i + 2 < len && p[i + 1] == '5' && strchr("cC", p[i + 2]))
			return false;
		if (ch == '/' && i + 1 < len && p[i + 1] == '/')
			return false;
		if (ch == '/' && i + 1 < len && p[i + 1] == '.') {
			size_t k = i + 2;
			if (k < len && p[k] == '.')
				k++;
			if (k == len || p[k] == '/')
				return false;
		}
	}
	return true;
}

/* The request path (without the query) for the audit event, the placeholder masked. */
void np_route_audit_path(nono_audit_event *ev, const struct np_route *r, const char *p, size_t len)
{
	size_t n = len < sizeof ev->path - 1 ? len : sizeof ev->path - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		ev->path[i] = (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
	}
	ev->path[n] = '\0';
	for (char *m = r->secret ? strstr(ev->path, "nono_") : NULL; m; m = strstr(m + 1, "nono_"))
		if (strncmp(m, r->placeholder, NP_PLACEHOLDER_LEN) == 0)
			memset(m + 5, '*', NP_PLACEHOLDER_LEN - 5);
}

void np_route_audit(nono_audit_event *ev, const struct np_route *r)
{
	static const char *const mech[] = {"phantom_header", "phantom_path", "phantom_query", "phantom_basic"};
	snprintf(ev->route_id, sizeof ev->route_id, "%s", r->prefix);
	if (r->secret) {
		snprintf(ev->injection_mode, sizeof ev->injection_mode, "%s", nono_inject_mode_name(r->mode));
		snprintf(ev->auth_mechanism, sizeof ev->auth_mechanism, "%s", mech[r->mode]);
	}
}

static void audit_fields(struct conn *c, const struct np_route *r)
{
	nono_audit_event *ev = &c->ev;
	snprintf(ev->mode, sizeof ev->mode, "reverse");
	snprintf(ev->target, sizeof ev->target, "%s", r->host);
	ev->port = r->port;
	np_route_audit(ev, r);
}

int np_route_rewrite(const struct np_route *r, const http_head *h, const char *rest, size_t rest_len,
		     char **out, size_t *out_len)
{
	size_t qpos = 0;
	while (qpos < rest_len && rest[qpos] != '?')
		qpos++;
	size_t cap = h->head_len + strlen(r->base_path) + NP_HOST_MAX + 3 * r->secret_len + 512 +
		     (r->format ? strlen(r->format) : 0) + (r->path_replacement ? strlen(r->path_replacement) : 0) +
		     (r->query_param ? strlen(r->query_param) : 0);
	struct obuf o = {.b = malloc(cap), .cap = cap};
	if (!o.b)
		return -ENOMEM;
	put(&o, h->method, h->method_len);
	put(&o, " ", 1);
	puts_(&o, r->base_path);
	if (qpos == 0)
		put(&o, "/", 1);
	bool presented = put_path(&o, r, rest, qpos);
	presented |= put_query(&o, r, rest + qpos + (qpos < rest_len), qpos < rest_len ? rest_len - qpos - 1 : 0);
	char line[NP_HOST_MAX + 64];
	bool v6 = strchr(r->host, ':') != NULL;
	bool dflt = r->port == (r->tls ? 443 : 80);
	snprintf(line, sizeof line, " HTTP/1.%d\r\nHost: %s%s%s", h->version_minor, v6 ? "[" : "", r->host,
		 v6 ? "]" : "");
	puts_(&o, line);
	if (!dflt) {
		snprintf(line, sizeof line, ":%u", r->port);
		puts_(&o, line);
	}
	put(&o, "\r\n", 2);
	presented |= put_headers(&o, h, r);
	/* The body's framing as the proxy parsed it and relays it, never the client's own lines: an
	 * upstream that read `Transfer-Encoding: , chunked` differently would take the body for a
	 * request no route check saw, and the next request's injected secret for its body (review of
	 * 2026-12-05, B3). The callers refused a head whose framing does not parse. */
	http_body b;
	const char *why;
	if (http_request_body(h, &b, &why) < 0)
		o.over = true;
	else if (b.kind == HTTP_BODY_CHUNKED)
		puts_(&o, "Transfer-Encoding: chunked\r\n");
	else if (b.kind == HTTP_BODY_LENGTH) {
		snprintf(line, sizeof line, "Content-Length: %llu\r\n", (unsigned long long)b.remaining);
		puts_(&o, line);
	}
	put(&o, "\r\n", 2); /* HTTP/1.1: the upstream connection is kept for the next request */
	if (o.over) { /* cannot happen: cap covers every expansion; fail closed if it does */
		explicit_bzero(o.b, o.len);
		free(o.b);
		return -ENOMEM;
	}
	*out = o.b;
	*out_len = o.len;
	return presented || !r->secret ? 1 : 0;
}

static int refused(struct np_route_refusal *d, int status, const char *phrase, const char *code,
		   const char *category)
{
	d->status = status;
	d->phrase = phrase;
	d->code = code;
	d->category = category;
	return status;
}

static int deny_auth(const struct np_route *r, nono_audit_event *ev, struct np_route_refusal *d)
{
	static const char *const where[] = {"in header", "in the path", "in query parameter", "in basic auth"};
	snprintf(d->reason, sizeof d->reason, "route %s: the request does not present this session's placeholder "
		 "credential (%s %s, from $%s)", r->prefix, where[r->mode],
		 r->mode == NONO_INJECT_HEADER ? r->inject_header
		 : r->mode == NONO_INJECT_QUERY_PARAM ? r->query_param : r->mode == NONO_INJECT_URL_PATH ? r->path_pattern : "",
		 r->env_var);
	snprintf(ev->auth_outcome, sizeof ev->auth_outcome, "failed");
	return refused(d, 401, "Unauthorized", "credential-required", "authentication_failed");
}

int np_route_apply(const struct np_route *r, const http_head *h, size_t off, nono_audit_event *ev,
		   char **out, size_t *out_len, struct np_route_refusal *d)
{
	const char *rest = h->target + off;
	size_t rest_len = h->target_len - off, plen;
	*out = NULL;
	*out_len = 0;
	for (plen = 0; plen < rest_len && rest[plen] != '?';)
		plen++;
	np_route_audit_path(ev, r, h->target, off + plen);
	if (!plain_path(rest, plen) || memchr(h->target, '#', h->target_len)) {
		snprintf(d->reason, sizeof d->reason, "%s",
			 "the path has a dot segment, \"//\", a backslash or an encoded '.', '/' or '\\'");
		return refused(d, 400, "Bad Request", "bad-request", "bad_request");
	}
	int b = np_route_rewrite(r, h, rest, rest_len, out, out_len);
	if (b < 0) {
		snprintf(d->reason, sizeof d->reason, "out of memory");
		return refused(d, 503, "Service Unavailable", NULL, "internal");
	}
	if (b == 0) {
		np_route_wipe(out, out_len);
		return deny_auth(r, ev, d);
	}
	if (r->secret)
		snprintf(ev->auth_outcome, sizeof ev->auth_outcome, "succeeded");
	if (r->nrules) {
		bool ok = np_route_endpoint_ok(r, h->method, h->method_len, plen ? rest : "/", plen ? plen : 1);
		snprintf(ev->endpoint_decision, sizeof ev->endpoint_decision, "%s", ok ? "allow" : "deny");
		if (!ok) {
			np_route_wipe(out, out_len);
			snprintf(d->reason, sizeof d->reason,
				 "route %.40s: %.*s %.100s is not among the route's allowed endpoints", r->prefix,
				 (int)(h->method_len < 16 ? h->method_len : 16), h->method,
				 plen && strlen(ev->path) > off ? ev->path + off : "/");
			return refused(d, 403, "Forbidden", "endpoint-denied", "endpoint_policy");
		}
	}
	ev->managed_credential_active = r->secret != NULL;
	return 0;
}

void np_route_wipe(char **buf, size_t *len)
{
	if (*buf) {
		explicit_bzero(*buf, *len);
		free(*buf);
	}
	*buf = NULL;
	*len = 0;
}

int route_request(struct conn *c, const http_head *h, char *host, np_verdict *v)
{
	char reason[NONO_REASON_MAX];
	size_t off;
	const char *why = "";
	const struct np_route *r = np_route_match(c->x->cfg, h->target, h->target_len, &off);
	snprintf(c->ev.mode, sizeof c->ev.mode, "reverse");
	if (!r) {
		snprintf(reason, sizeof reason, "no route for this path (routes: %s%s)",
			 c->x->cfg->nroutes ? c->x->cfg->routes[0]->prefix : "none",
			 c->x->cfg->nroutes > 1 ? ", …" : "");
		route_deny(c, 404, "Not Found", "no-route", "route_not_found", reason);
		return -1;
	}
	c->route = r;
	audit_fields(c, r);
	if (http_request_body(h, &c->req_body, &why) < 0) {
		route_deny(c, 400, "Bad Request", "bad-request", "bad_request", why);
		return -1;
	}
	struct np_route_refusal d;
	outq_reset(&c->uq);
	if (np_route_apply(r, h, off, &c->ev, &c->uq.buf, &c->uq.len, &d) != 0) {
		route_deny(c, d.status, d.phrase, d.code, d.category, d.reason);
		return -1;
	}
	/* The upstream's name: metadata and internal addresses are refused as for any request; the
	 * route is itself the grant for its upstream host:port (for routed requests only). */
	np_check_name(c->x->cfg, r->host, r->port, host, v);
	if (!v->allowed && strcmp(v->code, "host-not-allowed") == 0) {
		v->allowed = true;
		v->code = NULL;
	}
	v->connect_only = false;
	if (!v->allowed) {
		outq_reset(&c->uq);
		c->ev.managed_credential_active = false; /* never sent */
		route_deny(c, 403, "Forbidden", v->code, "host_denied", v->reason);
		return -1;
	}
	c->authorized = true;
	c->internal_ok = v->internal_ok;
	c->close_after = h->version_minor == 0;
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, "close"))
			c->close_after = true;
	return 0;
}
