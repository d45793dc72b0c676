/* test_route.c — credential routes without a network (route_cfg.c, route.c): spec checks and their
 * messages, sources read at start, the endpoint glob, prefix matching, and the head rewrite of every
 * injection mode (the client's credential stripped, the secret in its place, the placeholder
 * required), and the same step seen through TLS interception (route_icpt.c's hooks). */
#include "proxy/intercept.h"
#include "proxy/route.h"
#include "unit.h"

#include <stdlib.h>
#include <strings.h>

#define PH "nono_00112233445566778899aabbccddeeff"

static int add(nono_proxy_config *cfg, const nono_route_spec *s, char *msg)
{
	nono_error err = {0};
	int rc = nono_proxy_config_add_route(cfg, s, &err);
	snprintf(msg, 256, "%.200s", err.message);
	return rc;
}

static void test_spec_checks(void)
{
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	char msg[256];
	nono_route_spec_init(&s);
	s.prefix = "/openai/";
	s.upstream = "https://api.openai.com/v1/";
	s.credential_value = "sk-secret";
	CHECK_EQ_INT(add(cfg, &s, msg), 0);
	CHECK_STR(cfg->routes[0]->prefix, "/openai");
	CHECK_STR(cfg->routes[0]->base_path, "/v1");
	CHECK_EQ_INT(cfg->routes[0]->port, 443);
	CHECK_STR(cfg->routes[0]->env_var, "OPENAI_API_KEY"); /* no key: PREFIX_API_KEY */
	s.prefix = "openai";
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	CHECK(strstr(msg, "duplicate") != NULL);
	const char *bad_prefix[] = {"", "/", "a/../b", "a b", "a//b", "."};
	for (size_t i = 0; i < N_ELEMENTS(bad_prefix); i++) {
		s.prefix = bad_prefix[i];
		CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	}
	s.prefix = "x";
	const char *bad_up[] = {"ftp://h", "https://u:p@h", "https://h/?q", "https://h/#f", "https://", "https://h:0",
				"https://h:99999", "https://h/a b"};
	for (size_t i = 0; i < N_ELEMENTS(bad_up); i++) {
		s.upstream = bad_up[i];
		CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
		CHECK(strstr(msg, "sk-secret") == NULL);
	}
	s.upstream = "https://h";
	s.credential_value = "bad\r\nX: y";
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	CHECK(strstr(msg, "control character") && !strstr(msg, "bad"));
	s.credential_value = "ok";
	s.inject_mode = NONO_INJECT_QUERY_PARAM;
	s.inject_header = "X-Key"; /* a field of another mode: refused, not ignored */
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	s.inject_header = NULL;
	s.query_param_name = "a&b";
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	s.inject_mode = NONO_INJECT_HEADER;
	s.query_param_name = NULL;
	s.credential_format = "Bearer {} {}";
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	s.credential_format = NULL;
	s.tls_client_cert = "/c.pem"; /* without its key */
	CHECK_EQ_INT(add(cfg, &s, msg), -EINVAL);
	nono_proxy_config_free(cfg);
}

static void test_sources_read_at_start(void)
{
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	nono_error err = {0};
	nono_route_spec_init(&s);
	s.prefix = "svc";
	s.upstream = "http://svc.example:8080";
	s.credential_key = "env://NONO_UNIT_ROUTE_SECRET";
	unsetenv("NONO_UNIT_ROUTE_SECRET");
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0); /* not read yet */
	CHECK_STR(cfg->routes[0]->env_var, "NONO_UNIT_ROUTE_SECRET");
	char d[512];
	CHECK(nono_proxy_config_describe_route(cfg, 0, d, sizeof d) > 0);
	CHECK(strstr(d, "env://NONO_UNIT_ROUTE_SECRET") != NULL);
	CHECK_EQ_INT(nono_proxy_config_describe_route(cfg, 1, d, sizeof d), -ENOENT);
	nono_proxy *p = NULL;
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), -ENOENT);
	CHECK(strstr(err.message, "NONO_UNIT_ROUTE_SECRET") && strstr(err.message, "not set"));
	setenv("NONO_UNIT_ROUTE_SECRET", "sk-from-env", 1);
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
	char **env = NULL;
	CHECK_EQ_INT(nono_proxy_credential_env(p, &env, &err), 0);
	CHECK(env && env[0] && strncmp(env[0], "SVC_BASE_URL=http://127.0.0.1:", 30) == 0);
	CHECK(env && env[1] && strncmp(env[1], "NONO_UNIT_ROUTE_SECRET=nono_", 28) == 0 && !env[2]);
	nono_strv_free(env);
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
	unsetenv("NONO_UNIT_ROUTE_SECRET");
}

static void test_glob_and_match(void)
{
	CHECK(np_route_glob("/v1/models", "/v1/models", 10));
	CHECK(!np_route_glob("/v1/models", "/v1/models/x", 12));
	CHECK(np_route_glob("/v1/*", "/v1/models", 10));
	CHECK(!np_route_glob("/v1/*", "/v1/a/b", 7));
	CHECK(np_route_glob("/v1/**", "/v1/a/b", 7));
	CHECK(np_route_glob("/v1/*/x", "/v1/a/x", 7));
	CHECK(np_route_glob("**", "", 0));
	CHECK(!np_route_glob("/a*", "/b", 2));
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	nono_error err = {0};
	nono_route_spec_init(&s);
	s.upstream = "https://h";
	s.prefix = "a";
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0);
	s.prefix = "a/b";
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0);
	size_t off = 0;
	const struct np_route *r = np_route_match(cfg, "/a/b/c", 6, &off);
	CHECK(r && strcmp(r->prefix, "/a/b") == 0 && off == 4); /* the longest prefix */
	r = np_route_match(cfg, "/a?x", 4, &off);
	CHECK(r && strcmp(r->prefix, "/a") == 0 && off == 2);
	CHECK(np_route_match(cfg, "/ab", 3, &off) == NULL);
	CHECK_EQ_INT(nono_proxy_config_add_endpoint_rule(cfg, "a", "get", "/x/*", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_add_endpoint_rule(cfg, "zz", "GET", "/x", &err), -ENOENT);
	CHECK_EQ_INT(nono_proxy_config_add_endpoint_rule(cfg, "a", "GET", "x", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_add_endpoint_rule(cfg, "a", "GET", "/*/*/*/*/*/*/*/*/*", &err), -EINVAL);
	r = cfg->routes[0];
	CHECK(np_route_endpoint_ok(r, "GET", 3, "/x/1", 4));
	CHECK(!np_route_endpoint_ok(r, "POST", 4, "/x/1", 4));
	CHECK(np_route_endpoint_ok(cfg->routes[1], "POST", 4, "/anything", 9)); /* no rules */
	nono_proxy_config_free(cfg);
}

/* Rewrite `req` for a route made from `s`; returns the rewrite's result, the head in out. */
static int rewrite(nono_route_spec *s, const char *req, char *out, size_t cap)
{
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_error err = {0};
	s->prefix = "svc";
	s->upstream = "https://api.example:8443/base";
	s->credential_value = "se cret";
	int rc = nono_proxy_config_add_route(cfg, s, &err);
	CHECK_EQ_INT(rc, 0);
	np_route_set_placeholder(cfg->routes[0], PH);
	http_head h;
	size_t scan = 0, off = 0;
	const char *why = "";
	CHECK_EQ_INT(http_parse_request(req, strlen(req), &scan, &h, &why), 1);
	CHECK(np_route_match(cfg, h.target, h.target_len, &off) != NULL);
	char *b = NULL;
	size_t len = 0;
	rc = np_route_rewrite(cfg->routes[0], &h, h.target + off, h.target_len - off, &b, &len);
	snprintf(out, cap, "%.*s", (int)len, b ? b : "");
	free(b);
	nono_proxy_config_free(cfg);
	return rc;
}

static void test_rewrite_modes(void)
{
	char out[2048];
	nono_route_spec s;
	nono_route_spec_init(&s);
	CHECK_EQ_INT(rewrite(&s, "GET /svc/v1/m?q=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nAuthorization: Bearer " PH
				 "\r\nProxy-Authorization: x\r\nConnection: close\r\nX-A: 1\r\n\r\n", out, sizeof out), 1);
	CHECK(strncmp(out, "GET /base/v1/m?q=1 HTTP/1.1\r\nHost: api.example:8443\r\n", 52) == 0);
	CHECK(strstr(out, "Authorization: Bearer se cret\r\n") && !strstr(out, PH) && !strstr(out, "Proxy-Auth"));
	CHECK(strstr(out, "X-A: 1\r\n") && !strstr(out, "Connection"));
	nono_route_spec_init(&s);
	CHECK_EQ_INT(rewrite(&s, "GET /svc HTTP/1.1\r\nAuthorization: Bearer other\r\n\r\n", out, sizeof out), 0);
	nono_route_spec_init(&s);
	s.inject_mode = NONO_INJECT_URL_PATH;
	s.path_pattern = "/bot{}/";
	CHECK_EQ_INT(rewrite(&s, "GET /svc/bot" PH "/getMe HTTP/1.1\r\n\r\n", out, sizeof out), 1);
	CHECK(strncmp(out, "GET /base/botse%20cret/getMe HTTP/1.1\r\n", 39) == 0);
	nono_route_spec_init(&s);
	s.inject_mode = NONO_INJECT_QUERY_PARAM;
	s.query_param_name = "key";
	CHECK_EQ_INT(rewrite(&s, "GET /svc/x?a=1&key=" PH "&key=2&b HTTP/1.1\r\n\r\n", out, sizeof out), 1);
	CHECK(strncmp(out, "GET /base/x?a=1&b&key=se%20cret HTTP/1.1\r\n", 42) == 0);
	nono_route_spec_init(&s);
	s.inject_mode = NONO_INJECT_BASIC_AUTH;
	/* base64("u:" PH) */
	CHECK_EQ_INT(rewrite(&s, "GET /svc/ HTTP/1.1\r\nAuthorization: Basic dTpub25vXzAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZm\r\n\r\n",
			     out, sizeof out), 1);
	CHECK(strstr(out, "Authorization: Basic c2UgY3JldA==\r\n") != NULL); /* base64("se cret") */
	CHECK(strstr(out, "dTpub25v") == NULL);
}

#define PH2 "nono_ffeeddccbbaa99887766554433221100"

/* One decrypted request through the interception hooks of `cfg` for api.example:8443. */
static int icpt(nono_proxy_config *cfg, const char *req, char *out, size_t cap, nono_audit_event *ev,
		char *reason)
{
	const struct np_intercept_hooks *hk = &np_route_intercept_hooks;
	http_head h;
	size_t scan = 0, len = 0;
	const char *why = "";
	char *b = NULL;
	CHECK_EQ_INT(http_parse_request(req, strlen(req), &scan, &h, &why), 1);
	memset(ev, 0, sizeof *ev);
	reason[0] = '\0';
	int st = hk->request(cfg, hk->route(cfg, "api.example", 8443), &h, req, &b, &len, reason, 256, ev);
	CHECK(st == 0 ? b != NULL : b == NULL);
	snprintf(out, cap, "%.*s", (int)len, b ? b : "");
	np_route_wipe(&b, &len);
	return st;
}

static void test_intercept_hooks(void)
{
	const struct np_intercept_hooks *hk = &np_route_intercept_hooks;
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	nono_error err = {0};
	nono_audit_event ev;
	char out[2048], reason[256];
	nono_route_spec_init(&s);
	s.prefix = "api";
	s.upstream = "https://API.example:8443/v1";
	s.credential_value = "sekret";
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0);
	s.prefix = "files";
	s.upstream = "https://api.example:8443/v1/files";
	s.credential_value = "other";
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0);
	nono_route_spec_init(&s);
	s.prefix = "plain";
	s.upstream = "http://plain.example";
	CHECK_EQ_INT(nono_proxy_config_add_route(cfg, &s, &err), 0);
	np_route_set_placeholder(cfg->routes[0], PH);
	np_route_set_placeholder(cfg->routes[1], PH2);
	/* Which CONNECTs are intercepted: an https upstream's host (any case) and port only. */
	CHECK(hk->route(cfg, "api.example", 8443) == cfg->routes[0]);
	CHECK(hk->route(cfg, "api.example", 443) == NULL);
	CHECK(hk->route(cfg, "plain.example", 80) == NULL);
	/* The placeholder where the key goes is swapped; the path stays; the close wish passes. */
	CHECK_EQ_INT(icpt(cfg, "GET /v1/models?x=1 HTTP/1.1\r\nHost: api.example:8443\r\nAuthorization: Bearer " PH
			       "\r\nConnection: close\r\n\r\n", out, sizeof out, &ev, reason), 0);
	CHECK(strncasecmp(out, "GET /v1/models?x=1 HTTP/1.1\r\nHost: api.example:8443\r\n", 52) == 0);
	CHECK(strstr(out, "Authorization: Bearer sekret\r\n") && !strstr(out, PH));
	CHECK(strlen(out) > 21 && strcmp(out + strlen(out) - 21, "Connection: close\r\n\r\n") == 0);
	CHECK_STR(ev.route_id, "/api");
	CHECK_STR(ev.path, "/v1/models");
	CHECK(ev.managed_credential_active);
	CHECK_STR(ev.auth_outcome, "succeeded");
	/* The longest base path picks the route; kept alive without a Connection field. */
	CHECK_EQ_INT(icpt(cfg, "POST /v1/files/up HTTP/1.1\r\nAuthorization: Bearer " PH2 "\r\nContent-Length: 2\r\n\r\n",
			  out, sizeof out, &ev, reason), 0);
	CHECK(strstr(out, "Authorization: Bearer other\r\n") && strstr(out, "Content-Length: 2\r\n"));
	CHECK(!strstr(out, "Connection"));
	CHECK_STR(ev.route_id, "/files");
	/* The other route's placeholder is no key here. */
	CHECK_EQ_INT(icpt(cfg, "GET /v1/files/x HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out, &ev,
			  reason), 401);
	CHECK(strstr(reason, "placeholder") != NULL);
	CHECK_STR(ev.denial_category, "authentication_failed");
	/* Outside every base path of the upstream, not in origin form, or not plain: refused. */
	CHECK_EQ_INT(icpt(cfg, "GET /v2/x?k=" PH " HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out,
			  &ev, reason), 403);
	CHECK(strstr(reason, "outside the route's base path /v1/") && !strstr(reason, PH));
	CHECK_STR(ev.path, "/v2/x");
	CHECK_STR(ev.denial_category, "endpoint_policy");
	CHECK_EQ_INT(icpt(cfg, "GET /v1x HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out, &ev, reason),
		     403);
	CHECK_EQ_INT(icpt(cfg, "GET http://api.example/v1 HTTP/1.1\r\n\r\n", out, sizeof out, &ev, reason), 400);
	CHECK_EQ_INT(icpt(cfg, "GET /v1/../admin HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out, &ev,
			  reason), 400);
	/* Endpoint rules match the path under the base path. */
	CHECK_EQ_INT(nono_proxy_config_add_endpoint_rule(cfg, "api", "GET", "/models", &err), 0);
	CHECK_EQ_INT(icpt(cfg, "GET /v1/models HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out, &ev,
			  reason), 0);
	CHECK_STR(ev.endpoint_decision, "allow");
	CHECK_EQ_INT(icpt(cfg, "DELETE /v1/models HTTP/1.1\r\nAuthorization: Bearer " PH "\r\n\r\n", out, sizeof out, &ev,
			  reason), 403);
	CHECK_STR(ev.endpoint_decision, "deny");
	CHECK(strstr(reason, "DELETE /models is not among") != NULL);
	nono_proxy_config_free(cfg);
}

int main(void)
{
	test_spec_checks();
	test_sources_read_at_start();
	test_glob_and_match();
	test_rewrite_modes();
	test_intercept_hooks();
	UNIT_DONE();
}
