/* childenv.c — the environment a sandboxed child gets to use a running proxy: the proxy variables with
 * the URL (token included), NO_PROXY for loopback, NODE_USE_ENV_PROXY; built by nono_env_build. */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

static int proxy_env(const nono_proxy *p, const char *no_proxy, const char *const *extra,
		     char ***out, nono_error *err)
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
	if (asprintf(&ov[n++], "NO_PROXY=%s", no_proxy) < 0) {
		ov[--n] = NULL;
		goto out;
	}
	if (asprintf(&ov[n++], "no_proxy=%s", no_proxy) < 0) {
		ov[--n] = NULL;
		goto out;
	}
	if (
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

int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out, nono_error *err)
{
	return proxy_env(p, "localhost,127.0.0.1,::1", extra, out, err);
}

/* NO_PROXY is what the supervisor lets `caps` reach directly (nono_caps_no_proxy), no more: a
 * client that honours it goes straight to an internal grant or its own listener, and everything
 * else goes through the proxy, which answers with a reason instead of a bare EACCES. */
int nono_proxy_env_for(const nono_proxy *p, const nono_caps *caps, const char *const *extra,
		       char ***out, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "no capability set");
	cleanup_free char *np = nono_caps_no_proxy(caps);
	if (!np)
		return nono_fail(err, -ENOMEM, "out of memory");
	return proxy_env(p, np, extra, out, err);
}
