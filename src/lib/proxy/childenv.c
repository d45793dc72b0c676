/* childenv.c — the environment a sandboxed child gets to use a running proxy: the proxy variables with
 * the URL (token included), NO_PROXY for loopback, NODE_USE_ENV_PROXY; built by nono_env_build. */
#include "route.h"

#include <stdio.h>
#include <string.h>

int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out, nono_error *err)
{
	if (!p || !out)
		return nono_fail(err, -EINVAL, "no proxy");
	static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
					    "http_proxy", "https_proxy", "all_proxy"};
	const char *url = nono_proxy_url(p);
	char *ov[12] = {0};
	int rc = -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < 6; i++)
		if (asprintf(&ov[n++], "%s=%s", names[i], url) < 0) {
			ov[--n] = NULL;
			goto out;
		}
	/* The token never leaves through NO_PROXY; loopback stays direct (proxy-only mode lets the
	 * child reach nothing on loopback but the proxy anyway). */
	if (!(ov[n++] = strdup("NO_PROXY=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("no_proxy=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("NODE_USE_ENV_PROXY=1")))
		goto out;
	rc = nono_env_build(false, extra, (const char *const *)ov, out, err);
	goto done;
out:
	rc = nono_fail(err, -ENOMEM, "out of memory");
done:
	for (size_t i = 0; i < N_ELEMENTS(ov); i++)
		free(ov[i]);
	return rc;
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
	const struct nono_proxy_config *cfg = np_proxy_cfg(p);
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
