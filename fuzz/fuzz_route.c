/* fuzz_route.c — libFuzzer harness for the credential-route parser and rewriter (route_cfg.c,
 * route.c): a route spec (prefix, upstream, injection mode and its fields, an endpoint rule) and a
 * request head, each taken from the input, go through nono_proxy_config_add_route,
 * nono_proxy_config_add_endpoint_rule, the prefix match, the endpoint glob and np_route_rewrite.
 *
 * Input: NUL-separated fields: prefix, upstream, mode digit, field A, field B, rule method, rule
 * path, request head (the rest).
 *
 * Properties checked (a failure traps):
 * - a rewritten head is a request head our own parser accepts, whose Host is the upstream's;
 * - a request that presented the placeholder leaves with the secret (raw, percent-encoded or in
 *   base64, by mode); one that did not is refused (its head is never sent);
 * - a prefix match leaves the rest inside the target, starting at '/', '?' or the end;
 * - glob matching is total (it terminates) and "**" matches everything;
 * - the same head through TLS interception's hook (route_icpt.c), for an https route: either a
 *   refusal with nothing to send, or a head our parser accepts with one Host and the secret in it.
 */
#include "proxy/intercept.h"
#include "proxy/route.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define PH "nono_0123456789abcdef0123456789abcdef"

static const char *next_field(const char **p, const char *end)
{
	const char *s = *p;
	const char *z = memchr(s, '\0', (size_t)(end - s));
	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

static void check_intercepted(const struct nono_proxy_config *cfg, const struct np_route *r, const http_head *h,
			      const char *head)
{
	char *out = NULL, reason[NONO_REASON_MAX];
	size_t out_len = 0;
	nono_audit_event ev = {0};
	if (!r->tls)
		return;
	int st = np_route_intercept_hooks.request(cfg, r, h, head, &out, &out_len, reason, sizeof reason, &ev);
	if (st != 0) {
		REQUIRE(!out && st >= 400 && st < 600 && memchr(reason, '\0', sizeof reason));
		return;
	}
	http_head o;
	size_t s2 = 0;
	const char *why = "";
	REQUIRE(out && http_parse_request(out, out_len, &s2, &o, &why) == 1 && o.head_len == out_len);
	REQUIRE(http_find_header(&o, "Host", 0) >= 0);
	REQUIRE(http_find_header(&o, "Host", http_find_header(&o, "Host", 0) + 1) < 0);
	REQUIRE(!r->secret || memmem(out, out_len, "s3cr3t", 6));
	np_route_wipe(&out, &out_len);
}

static void check_rewrite(const struct np_route *r, const char *head, size_t len)
{
	http_head h;
	size_t scan = 0, off = 0;
	const char *why = "";
	if (http_parse_request(head, len, &scan, &h, &why) != 1 || !h.target_len || h.target[0] != '/')
		return;
	/* the route table's own matcher, with one route */
	struct np_route *one[1] = {(struct np_route *)r};
	struct nono_proxy_config cfg = {.routes = one, .nroutes = 1};
	check_intercepted(&cfg, r, &h, head);
	const struct np_route *m = np_route_match(&cfg, h.target, h.target_len, &off);
	if (!m)
		return;
	REQUIRE(off <= h.target_len);
	REQUIRE(off == h.target_len || h.target[off] == '/' || h.target[off] == '?');
	char *out = NULL;
	size_t out_len = 0;
	int rc = np_route_rewrite(r, &h, h.target + off, h.target_len - off, &out, &out_len);
	if (rc < 0)
		return;
	REQUIRE(out && out_len > 0);
	if (rc == 1) {
		/* raw (header), percent-encoded (path, query) or base64 (basic auth); the space in the
		 * secret cannot come from the request itself */
		bool has = memmem(out, out_len, "s3cr3t value", 12) || memmem(out, out_len, "s3cr3t%20value", 14) ||
			   memmem(out, out_len, "czNjcjN0IHZhbHVl", 16);
		REQUIRE(has);
		http_head o;
		size_t s2 = 0;
		REQUIRE(http_parse_request(out, out_len, &s2, &o, &why) == 1 && o.head_len == out_len);
		REQUIRE(http_find_header(&o, "Host", 0) >= 0);
		REQUIRE(http_find_header(&o, "Host", http_find_header(&o, "Host", 0) + 1) < 0);
	}
	explicit_bzero(out, out_len);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *prefix = next_field(&p, end), *upstream = next_field(&p, end), *mode = next_field(&p, end);
	const char *a = next_field(&p, end), *b = next_field(&p, end);
	const char *method = next_field(&p, end), *rpath = next_field(&p, end);
	if (!rpath)
		return 0;
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	nono_route_spec_init(&s);
	s.prefix = prefix;
	s.upstream = upstream;
	s.credential_value = "s3cr3t value/with:bits";
	s.inject_mode = (nono_inject_mode)(mode[0] ? (mode[0] - '0') : 0);
	switch (s.inject_mode) {
	case NONO_INJECT_HEADER: s.inject_header = a[0] ? a : NULL; s.credential_format = b[0] ? b : NULL; break;
	case NONO_INJECT_URL_PATH: s.path_pattern = a; s.path_replacement = b[0] ? b : NULL; break;
	case NONO_INJECT_QUERY_PARAM: s.query_param_name = a; break;
	default: break;
	}
	nono_error err = {0};
	if (nono_proxy_config_add_route(cfg, &s, &err) == 0) {
		(void)nono_proxy_config_add_endpoint_rule(cfg, prefix, method, rpath, &err);
		struct np_route *r = cfg->routes[0];
		np_route_set_placeholder(r, PH);
		char d[512];
		REQUIRE(nono_proxy_config_describe_route(cfg, 0, d, sizeof d) >= 0);
		REQUIRE(strstr(d, "s3cr3t value") == NULL);
		check_rewrite(r, p, (size_t)(end - p));
		if (r->nrules)
			(void)np_route_endpoint_ok(r, "GET", 3, p, (size_t)(end - p) > 300 ? 300 : (size_t)(end - p));
	}
	/* the glob on raw input: must terminate; "**" matches everything */
	REQUIRE(np_route_glob("**", p, (size_t)(end - p)));
	if (strlen(rpath) <= NP_RULE_PATTERN_MAX)
		(void)np_route_glob(rpath, p, (size_t)(end - p) > 4096 ? 4096 : (size_t)(end - p));
	nono_proxy_config_free(cfg);
	return 0;
}
