/* childenv.c — the environment a sandboxed child gets to use a running proxy: the proxy variables with
 * the URL (token included), NO_PROXY for loopback, NODE_USE_ENV_PROXY; built by nono_env_build.
 * ALL_PROXY / all_proxy name the same listener as socks5h://nono:TOKEN@… (socks5.c): clients that
 * read it (curl for schemes without their own variable, git, ssh wrappers) then get SOCKS5 for
 * plain TCP, with names resolved by the proxy ("h"). HTTP(S)_PROXY win for HTTP clients. */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out, nono_error *err)
{
	if (!p || !out)
		return nono_fail(err, -EINVAL, "no proxy");
	static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
					    "http_proxy", "https_proxy", "all_proxy"};
	const char *url = nono_proxy_url(p);
	char *ov[16] = {0};
	int rc = -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < 6; i++)
		if (asprintf(&ov[n++], "%s=%s%s", names[i], i % 3 == 2 ? "socks5h://" : "",
			     i % 3 == 2 ? url + strlen("http://") : url) < 0) {
			ov[--n] = NULL;
			goto out;
		}
	/* The token never leaves through NO_PROXY; loopback stays direct (proxy-only mode lets the
	 * child reach nothing on loopback but the proxy anyway). */
	if (!(ov[n++] = strdup("NO_PROXY=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("no_proxy=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("NODE_USE_ENV_PROXY=1")))
		goto out;
	/* TLS interception: the clients' CA variables name the bundle (system roots + session CA). */
	static const char *const ca_vars[] = {"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
					      "CURL_CA_BUNDLE"};
	const char *bundle = nono_proxy_ca_bundle(p);
	for (size_t i = 0; bundle && i < N_ELEMENTS(ca_vars); i++)
		if (asprintf(&ov[n++], "%s=%s", ca_vars[i], bundle) < 0) {
			ov[--n] = NULL;
			goto out;
		}
	rc = nono_env_build(false, extra, (const char *const *)ov, out, err);
	goto done;
out:
	rc = nono_fail(err, -ENOMEM, "out of memory");
done:
	for (size_t i = 0; i < N_ELEMENTS(ov); i++)
		free(ov[i]);
	return rc;
}

const char *nono_proxy_ca_bundle(const nono_proxy *p)
{
	return np_intercept_bundle_path(np_proxy_config(p));
}

const char *nono_proxy_ca_cert(const nono_proxy *p)
{
	return np_intercept_ca_path(np_proxy_config(p));
}
