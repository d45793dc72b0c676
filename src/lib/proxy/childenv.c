/* childenv.c — the environment a sandboxed child gets to use a proxy: the proxy variables with the URL
 * (token included), NO_PROXY (what may be reached directly), NODE_USE_ENV_PROXY, and with TLS
 * interception the CA-bundle variables; built by nono_env_build. ALL_PROXY / all_proxy name the same
 * listener as socks5h://nono:TOKEN@… (socks5.c): clients that read it (curl for schemes without
 * their own variable, git, ssh wrappers) then get SOCKS5 for plain TCP, with names resolved by the
 * proxy ("h"). HTTP(S)_PROXY win for HTTP clients. */
#include "route.h"

#include <stdio.h>
#include <string.h>

/* Every variable nono_proxy_env sets (nono_env_compose's `reserved` for the CLI). */
static const char *const proxy_env_names[] = {
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
	"NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY", NULL,
};
#define LOOPBACK_NO_PROXY "localhost,127.0.0.1,::1"

const char *const *nono_proxy_env_names(void)
{
	return proxy_env_names;
}

/* TLS interception: the clients' CA variables name the bundle (system roots + session CA). */
static const char *const ca_vars[] = {"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
				      "CURL_CA_BUNDLE", NULL};

/* One of `names` in `extra` would be overwritten without a word: refuse it, naming it. */
static int check_extra(const char *const *extra, const char *const *names, nono_error *err)
{
	for (size_t i = 0; extra && extra[i]; i++) {
		size_t n = strcspn(extra[i], "=");
		for (size_t j = 0; names[j]; j++)
			if (strlen(names[j]) == n && !memcmp(extra[i], names[j], n))
				return nono_fail(err, -EINVAL, "%s is set by nono for the proxy; "
						 "giving it too would be silently overwritten",
						 names[j]);
	}
	return 0;
}

/* The one builder: HTTP(S)_PROXY (+ lowercase) with `url` (token included), ALL_PROXY/all_proxy as
 * socks5h:// on the same listener, NO_PROXY/no_proxy, NODE_USE_ENV_PROXY, and with a CA `bundle`
 * (interception) the four CA variables; merged after `extra`. */
static int proxy_env(const char *url, const char *no_proxy, const char *bundle,
		     const char *const *extra, char ***out, nono_error *err)
{
	if (!out)
		return nono_fail(err, -EINVAL, "output pointer is NULL");
	*out = NULL;
	int rc = check_extra(extra, proxy_env_names, err);
	if (!rc && bundle)
		rc = check_extra(extra, ca_vars, err);
	if (rc)
		return rc;
	const char *hostpart = strncmp(url, "http://", 7) ? url : url + 7;
	char *ov[16] = {0};
	size_t n = 0;
	for (size_t i = 0; i < 6; i++) /* HTTP_PROXY HTTPS_PROXY ALL_PROXY, then lowercase */
		if (asprintf(&ov[n++], "%s=%s%s", proxy_env_names[i], i % 3 == 2 ? "socks5h://" : "",
			     i % 3 == 2 ? hostpart : url) < 0)
			goto oom;
	if (asprintf(&ov[n++], "NO_PROXY=%s", no_proxy) < 0 ||
	    asprintf(&ov[n++], "no_proxy=%s", no_proxy) < 0 ||
	    !(ov[n++] = strdup("NODE_USE_ENV_PROXY=1")))
		goto oom;
	for (size_t i = 0; bundle && ca_vars[i]; i++)
		if (asprintf(&ov[n++], "%s=%s", ca_vars[i], bundle) < 0)
			goto oom;
	rc = nono_env_build(false, extra, (const char *const *)ov, out, err);
	goto done;
oom:
	ov[--n] = NULL; /* the failed slot holds nothing we own */
	rc = nono_fail(err, -ENOMEM, "out of memory");
done:
	for (size_t i = 0; i < N_ELEMENTS(ov); i++)
		free(ov[i]);
	return rc;
}

int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out, nono_error *err)
{
	if (!p)
		return nono_fail(err, -EINVAL, "no proxy");
	return proxy_env(nono_proxy_url(p), LOOPBACK_NO_PROXY, nono_proxy_ca_bundle(p), extra, out,
			 err);
}

/* NO_PROXY is what the supervisor lets `caps` reach directly (nono_caps_no_proxy), no more: a
 * client that honours it goes straight to an internal grant or its own listener, and everything
 * else goes through the proxy, which answers with a reason instead of a bare EACCES. */
static int proxy_env_caps(const char *url, const char *bundle, const nono_caps *caps,
			  const char *const *extra, char ***out, nono_error *err)
{
	if (!caps)
		return proxy_env(url, LOOPBACK_NO_PROXY, bundle, extra, out, err);
	cleanup_free char *np = nono_caps_no_proxy(caps);
	if (!np)
		return nono_fail(err, -ENOMEM, "out of memory");
	return proxy_env(url, np, bundle, extra, out, err);
}

int nono_proxy_env_for(const nono_proxy *p, const nono_caps *caps, const char *const *extra,
		       char ***out, nono_error *err)
{
	if (!p || !caps)
		return nono_fail(err, -EINVAL, "no proxy or no capability set");
	return proxy_env_caps(nono_proxy_url(p), nono_proxy_ca_bundle(p), caps, extra, out, err);
}

/* ---- a proxy given by URL (--proxy-url: a shared 'nono proxy' with its token) ----
 * Only a literal loopback address: proxy-only lets the command reach exactly one loopback address
 * and port, and a name (localhost) may resolve to the other loopback address first. */
int nono_proxy_url_parse(const char *url, const char **addr, uint16_t *port, nono_error *err)
{
	static const char scheme[] = "http://";
	if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0)
		return nono_fail(err, -EINVAL, "expected http://[USER:TOKEN@]127.0.0.1:PORT (or "
				 "[::1]:PORT), the URL 'nono proxy' prints");
	const char *hp = url + sizeof scheme - 1;
	size_t auth_len = strcspn(hp, "/?#"); /* the authority: userinfo@host:port */
	const char *at = memrchr(hp, '@', auth_len);
	if (at)
		hp = at + 1;
	const char *a = NULL, *rest = NULL;
	if (strncmp(hp, "127.0.0.1:", 10) == 0)
		a = "127.0.0.1", rest = hp + 10;
	else if (strncmp(hp, "[::1]:", 6) == 0)
		a = "::1", rest = hp + 6;
	else
		return nono_fail(err, -EINVAL, "the proxy URL's host must be 127.0.0.1 or [::1] with a "
				 "port (a name such as localhost may resolve to the other loopback "
				 "address, which the command cannot reach)");
	char *end;
	errno = 0;
	unsigned long p = strtoul(rest, &end, 10);
	if (end == rest || *rest == '-' || *rest == '+' || errno || p == 0 || p > 65535 ||
	    (*end && strcmp(end, "/") != 0))
		return nono_fail(err, -EINVAL, "the proxy URL needs a port 1..65535 and no path");
	if (addr)
		*addr = a;
	if (port)
		*port = (uint16_t)p;
	nono_error_clear(err);
	return 0;
}

int nono_proxy_env_url(const char *url, const nono_caps *caps, const char *const *extra,
		       char ***out, nono_error *err)
{
	int rc = nono_proxy_url_parse(url, NULL, NULL, err);
	if (rc)
		return rc;
	return proxy_env_caps(url, NULL, caps, extra, out, err);
}

/* "{PREFIX}_BASE_URL": the prefix upper-cased, '/', '.', '-', '~' as '_'. */
static int base_url_var(const struct np_route *r, const char *base, char **out)
{
	char name[NP_ROUTE_PREFIX_MAX + 16];
	size_t n = 0;
	for (const char *s = r->prefix + 1; *s; s++)
		name[n++] = (*s >= 'a' && *s <= 'z') ? (char)(*s - 32)
			    : ((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')) ? *s : '_';
	name[n] = '\0';
	return asprintf(out, "%s_BASE_URL=%s%s", name, base, r->prefix) < 0 ? -ENOMEM : 0;
}

int nono_proxy_credential_env(const nono_proxy *p, char ***out, nono_error *err)
{
	const struct nono_proxy_config *cfg = np_proxy_config(p);
	if (!cfg || !out)
		return nono_fail(err, -EINVAL, "no proxy");
	/* The base URL: the proxy URL without its userinfo (the token is not needed on routes). */
	const char *url = nono_proxy_url(p), *at = strchr(url, '@');
	char base[128];
	snprintf(base, sizeof base, "http://%s", at ? at + 1 : url + 7);
	char **v = calloc(2 * cfg->nroutes + 1, sizeof *v);
	if (!v)
		return nono_fail(err, -ENOMEM, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct np_route *r = cfg->routes[i];
		if (base_url_var(r, base, &v[n]) < 0 ||
		    (++n, r->secret && asprintf(&v[n++], "%s=%s", r->env_var, r->placeholder) < 0)) {
			v[n - (r->secret ? 1 : 0)] = NULL;
			nono_strv_free(v);
			return nono_fail(err, -ENOMEM, "out of memory");
		}
	}
	*out = v;
	return 0;
}

const char *nono_proxy_ca_bundle(const nono_proxy *p)
{
	return np_intercept_bundle_path(np_proxy_config(p));
}

const char *nono_proxy_ca_cert(const nono_proxy *p)
{
	return np_intercept_ca_path(np_proxy_config(p));
}
