/* config.c — the proxy's configuration object and the policy verdicts built on netpolicy.c. */
#include "proxy_int.h"
#include "route.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define DEF_MAX_HEADER (32u * 1024)
#define DEF_HEADER_TIMEOUT 10000u
#define DEF_IDLE_TIMEOUT 300000u
#define DEF_MAX_CONN 256u
/* Upper bounds keep a typo from turning a limit into "unbounded". */
#define MAX_MAX_HEADER (1024u * 1024)
#define MAX_MAX_CONN 1000000u

nono_proxy_config *nono_proxy_config_new(void)
{
	nono_proxy_config *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->listen.family = AF_INET;
	c->listen.b[0] = 127;
	c->listen.b[3] = 1;
	c->lim.max_header_bytes = DEF_MAX_HEADER;
	c->lim.header_timeout_ms = DEF_HEADER_TIMEOUT;
	c->lim.idle_timeout_ms = DEF_IDLE_TIMEOUT;
	c->lim.max_connections = DEF_MAX_CONN;
	return c;
}

void nono_proxy_config_free(nono_proxy_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->allow);
	free(cfg->allow_connect);
	free(cfg->internal);
	free(cfg->audit_log);
	for (size_t i = 0; i < cfg->nroutes; i++)
		np_route_free(cfg->routes[i]);
	free(cfg->routes);
	np_upstream_free(cfg->ext);
	free(cfg->intercept_dir);
	free(cfg->intercept);
	np_intercept_free(cfg->icpt);
	free(cfg);
}

struct nono_proxy_config *nono_proxy_config_clone(const struct nono_proxy_config *c)
{
	nono_proxy_config *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	*n = *c;
	n->allow = NULL;
	n->allow_connect = NULL;
	n->internal = NULL;
	n->audit_log = NULL;
	n->routes = NULL;
	n->nroutes = 0;
	if (c->nroutes && !(n->routes = calloc(c->nroutes, sizeof *n->routes))) {
		nono_proxy_config_free(n);
		return NULL;
	}
	for (; n->nroutes < c->nroutes; n->nroutes++)
		if (!(n->routes[n->nroutes] = np_route_clone(c->routes[n->nroutes]))) {
			nono_proxy_config_free(n);
			return NULL;
		}
	bool ext_ok;
	n->ext = np_upstream_clone(c->ext, &ext_ok);
	n->intercept_dir = NULL;
	n->intercept = NULL;
	n->icpt = NULL; /* runtime state: made by np_intercept_prepare for a running proxy */
	if (!ext_ok || (c->intercept_dir && !(n->intercept_dir = strdup(c->intercept_dir))) ||
	    (c->nintercept && !(n->intercept = malloc(c->nintercept * sizeof *c->intercept))) ||
	    (c->nallow && !(n->allow = malloc(c->nallow * sizeof *c->allow))) ||
	    (c->nallow_connect && !(n->allow_connect = malloc(c->nallow_connect * sizeof *c->allow_connect))) ||
	    (c->ninternal && !(n->internal = malloc(c->ninternal * sizeof *c->internal))) ||
	    (c->audit_log && !(n->audit_log = strdup(c->audit_log)))) {
		nono_proxy_config_free(n);
		return NULL;
	}
	if (c->nallow)
		memcpy(n->allow, c->allow, c->nallow * sizeof *c->allow);
	if (c->nallow_connect)
		memcpy(n->allow_connect, c->allow_connect, c->nallow_connect * sizeof *c->allow_connect);
	if (c->ninternal)
		memcpy(n->internal, c->internal, c->ninternal * sizeof *c->internal);
	if (c->nintercept)
		memcpy(n->intercept, c->intercept, c->nintercept * sizeof *c->intercept);
	return n;
}

static int push_pattern(np_pattern **arr, size_t *n, const np_pattern *p, nono_error *err)
{
	if (*n >= NONO_PROXY_MAX_PATTERNS)
		return nono_fail(err, -EINVAL, "too many patterns (limit %d)", NONO_PROXY_MAX_PATTERNS);
	np_pattern *na = realloc(*arr, (*n + 1) * sizeof *na);
	if (!na)
		return nono_fail(err, -ENOMEM, "out of memory");
	na[(*n)++] = *p;
	*arr = na;
	return 0;
}

int nono_proxy_config_allow_host(nono_proxy_config *cfg, const char *pattern, nono_error *err)
{
	np_pattern p;
	const char *why = "";
	if (!cfg)
		return nono_fail(err, -EINVAL, "no config");
	if (np_pattern_parse(pattern, true, false, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "allow host \"%s\": %s", pattern ? pattern : "(null)", why);
	return push_pattern(&cfg->allow, &cfg->nallow, &p, err);
}

/* Same syntax and checks as allow_host; kept in a separate list so np_check_name can tell the two
 * apart. It grants the NAME only: internal and metadata addresses stay refused exactly as for
 * allow_host (a connect-only pattern never implies allow_internal). */
int nono_proxy_config_allow_host_connect_only(nono_proxy_config *cfg, const char *pattern,
					      nono_error *err)
{
	np_pattern p;
	const char *why = "";
	if (!cfg)
		return nono_fail(err, -EINVAL, "no config");
	if (np_pattern_parse(pattern, true, false, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "allow host (connect-only) \"%s\": %s",
				 pattern ? pattern : "(null)", why);
	return push_pattern(&cfg->allow_connect, &cfg->nallow_connect, &p, err);
}

int nono_proxy_config_allow_internal(nono_proxy_config *cfg, const char *host_port, nono_error *err)
{
	np_pattern p;
	const char *why = "";
	np_addr a;
	if (!cfg)
		return nono_fail(err, -EINVAL, "no config");
	if (np_pattern_parse(host_port, false, true, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "allow internal \"%s\": %s", host_port ? host_port : "(null)",
				 why);
	if (np_is_metadata_name(p.host) ||
	    (np_parse_ip_literal(p.host, &a) == 1 && np_classify(&a, &why) == NP_METADATA))
		return nono_fail(err, -EPERM, "allow internal \"%s\": cloud metadata endpoints can never be allowed",
				 host_port);
	np_internal_resolve(&p);
	return push_pattern(&cfg->internal, &cfg->ninternal, &p, err);
}

/* Combinations of options that contradict each other, refused the same way for every caller (the
 * CLI, the C API and nono_py). */
int nono_proxy_config_check(const nono_proxy_config *cfg, nono_error *err)
{
	if (!cfg)
		return nono_fail(err, -EINVAL, "proxy config is NULL");
	if (cfg->allow_all && cfg->nallow)
		return nono_fail(err, -EINVAL, "allowed hosts cannot be combined with allow-all-hosts "
					       "(allow_all_hosts), which already allows every public host");
	return np_upstream_check(cfg, err);
}

void nono_proxy_config_allow_all_hosts(nono_proxy_config *cfg, bool on)
{
	if (cfg)
		cfg->allow_all = on;
}

int nono_proxy_config_set_listen(nono_proxy_config *cfg, const char *addr, uint16_t port,
				 nono_error *err)
{
	np_addr a = {0};
	if (!cfg || !addr)
		return nono_fail(err, -EINVAL, "no config or address");
	char buf[64];
	size_t len = strlen(addr);
	if (len >= sizeof buf)
		return nono_fail(err, -EINVAL, "listen address \"%s\" is not an IP literal", addr);
	memcpy(buf, addr, len + 1);
	if (len >= 2 && buf[0] == '[' && buf[len - 1] == ']') {
		buf[len - 1] = '\0';
		memmove(buf, buf + 1, len - 1);
	}
	if (inet_pton(AF_INET, buf, a.b) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a.b) == 1)
		a.family = AF_INET6;
	else
		return nono_fail(err, -EINVAL, "listen address \"%s\" is not an IPv4/IPv6 literal", addr);
	cfg->listen = a;
	cfg->port = port;
	return 0;
}

void nono_proxy_config_set_limits(nono_proxy_config *cfg, const nono_proxy_limits *lim)
{
	if (!cfg || !lim)
		return;
	if (lim->max_header_bytes)
		cfg->lim.max_header_bytes = lim->max_header_bytes < 1024 ? 1024
					  : lim->max_header_bytes > MAX_MAX_HEADER ? MAX_MAX_HEADER
										   : lim->max_header_bytes;
	if (lim->header_timeout_ms)
		cfg->lim.header_timeout_ms = lim->header_timeout_ms;
	if (lim->idle_timeout_ms)
		cfg->lim.idle_timeout_ms = lim->idle_timeout_ms;
	if (lim->max_connections)
		cfg->lim.max_connections = lim->max_connections > MAX_MAX_CONN ? MAX_MAX_CONN
									  : lim->max_connections;
	if (lim->max_pending_heads)
		cfg->lim.max_pending_heads = lim->max_pending_heads > MAX_MAX_CONN
						     ? MAX_MAX_CONN
						     : lim->max_pending_heads;
}

int nono_proxy_config_set_audit_log(nono_proxy_config *cfg, const char *path, nono_error *err)
{
	if (!cfg || !path || !*path)
		return nono_fail(err, -EINVAL, "empty audit log path");
	char *d = strdup(path);
	if (!d)
		return nono_fail(err, -ENOMEM, "out of memory");
	free(cfg->audit_log);
	cfg->audit_log = d;
	return 0;
}

void nono_proxy_config_set_connect_without_token(nono_proxy_config *cfg, bool on)
{
	if (cfg)
		cfg->connect_without_token = on;
}

/* ---- verdicts ---- */

static void deny(np_verdict *v, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void deny(np_verdict *v, const char *code, const char *fmt, ...)
{
	va_list ap;
	v->allowed = false;
	v->code = code;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
}

/* Printable, bounded copy of an untrusted host for messages. */
static void printable(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (; *in && n + 1 < cap && n < 96; in++)
		out[n++] = (*in > 0x20 && *in < 0x7f && *in != '"' && *in != '\\') ? *in : '?';
	out[n] = '\0';
}

/* Would a pattern match `norm` on some other port? Then the port, not the host, is what is
 * missing, and the denial says so. */
static bool np_port_mismatch(const struct nono_proxy_config *c, const char *norm)
{
	const struct {
		const np_pattern *p;
		size_t n;
	} lists[] = {{c->allow, c->nallow}, {c->allow_connect, c->nallow_connect},
		     {c->internal, c->ninternal}};
	for (size_t l = 0; l < N_ELEMENTS(lists); l++)
		for (size_t i = 0; i < lists[l].n; i++) {
			np_pattern any = lists[l].p[i];
			any.port = 0;
			if (lists[l].p[i].port && np_pattern_match(&any, norm, 0))
				return true;
		}
	return false;
}

void np_check_name(const struct nono_proxy_config *c, const char *host, uint16_t port, char *norm,
		   np_verdict *v)
{
	char ph[100];
	const char *why = "";
	memset(v, 0, sizeof *v);
	printable(host, ph, sizeof ph);
	if (np_host_normalize(host, strlen(host), norm, NP_HOST_MAX) < 0) {
		snprintf(norm, NP_HOST_MAX, "%s", ph);
		deny(v, "bad-host", "host %s is not a valid host name", ph);
		return;
	}
	int lit = np_parse_ip_literal(norm, &v->addr);
	if (lit < 0) {
		deny(v, "bad-host", "host %s looks numeric but is not a valid IP address", norm);
		return;
	}
	v->literal = lit == 1;
	np_class cls = NP_PUBLIC;
	if (v->literal) {
		cls = np_classify(&v->addr, &why);
		if (cls == NP_METADATA) {
			deny(v, "metadata", "host %s is a %s", norm, why);
			return;
		}
	} else if (np_is_metadata_name(norm)) {
		deny(v, "metadata", "host %s is a cloud metadata service name", norm);
		return;
	}
	for (size_t i = 0; i < c->ninternal && !v->internal_ok; i++)
		v->internal_ok = np_pattern_match(&c->internal[i], norm, port);
	if (v->literal && !v->internal_ok)
		v->internal_ok = np_internal_addr_allowed(c, &v->addr, port);
	if (cls == NP_INTERNAL && !v->internal_ok && np_port_mismatch(c, norm)) {
		deny(v, "port-not-allowed", "port %u is not allowed for %s", (unsigned)port, norm);
		return;
	}
	if (cls == NP_INTERNAL && !v->internal_ok) {
		deny(v, "internal-address", "host %s is an internal address: %s", norm, why);
		return;
	}
	bool listed = v->internal_ok || c->allow_all;
	for (size_t i = 0; i < c->nallow && !listed; i++)
		listed = np_pattern_match(&c->allow[i], norm, port);
	/* Connect-only patterns are consulted only when nothing wider matched: if the same host:port
	 * is allowed both ways (allow_host, allow_all_hosts or allow_internal, and
	 * allow_host_connect_only), the wider grant wins and plain HTTP is allowed. Grants only add;
	 * a narrower rule never revokes a wider one, so the outcome does not depend on call order. */
	for (size_t i = 0; i < c->nallow_connect && !listed; i++)
		listed = v->connect_only = np_pattern_match(&c->allow_connect[i], norm, port);
	if (!listed && np_port_mismatch(c, norm)) {
		deny(v, "port-not-allowed", "port %u is not allowed for %s", (unsigned)port, norm);
		return;
	}
	if (!listed) {
		deny(v, "host-not-allowed", "host %s is not in the allowlist", norm);
		return;
	}
	v->allowed = true;
}

bool np_check_addr(const np_addr *a, const char *host, bool internal_ok, np_verdict *v)
{
	const char *why = "";
	char as[64];
	np_class cls = np_classify(a, &why);
	if (cls == NP_PUBLIC || (cls == NP_INTERNAL && internal_ok))
		return true;
	np_addr_format(a, as, sizeof as);
	if (cls == NP_METADATA)
		deny(v, "metadata", "host %s resolves to %s, a %s", host, as, why);
	else
		deny(v, "internal-address", "host %s resolves to %s, an internal address: %s", host, as, why);
	return false;
}
