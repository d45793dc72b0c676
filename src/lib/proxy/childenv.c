/* childenv.c — the environment a sandboxed child gets to use a running proxy: the proxy variables with
 * the URL (token included), NO_PROXY for loopback, NODE_USE_ENV_PROXY; built by nono_env_build. */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

/* Every variable nono_proxy_env sets (nono_env_compose's `reserved` for the CLI). */
static const char *const proxy_env_names[] = {
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
	"NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY", NULL,
};

const char *const *nono_proxy_env_names(void)
{
	return proxy_env_names;
}

/* A proxy variable in `extra` would be overwritten without a word: refuse it, naming it. */
static int nono_proxy_env_check_extra(const char *const *extra, nono_error *err)
{
	for (size_t i = 0; extra && extra[i]; i++) {
		size_t n = strcspn(extra[i], "=");
		for (size_t j = 0; proxy_env_names[j]; j++)
			if (strlen(proxy_env_names[j]) == n && !memcmp(extra[i], proxy_env_names[j], n))
				return nono_fail(err, -EINVAL, "%s is set by nono for the proxy; "
						 "giving it too would be silently overwritten",
						 proxy_env_names[j]);
	}
	return 0;
}

int nono_proxy_env(const nono_proxy *p, const char *const *extra, char ***out, nono_error *err)
{
	if (!p || !out)
		return nono_fail(err, -EINVAL, "no proxy");
	static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
					    "http_proxy", "https_proxy", "all_proxy"};
	int conflict = nono_proxy_env_check_extra(extra, err);
	if (conflict)
		return conflict;
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

int nono_proxy_env_url(const char *url, const char *const *extra, char ***out, nono_error *err)
{
	if (!out)
		return nono_fail(err, -EINVAL, "output pointer is NULL");
	*out = NULL;
	int rc = nono_proxy_url_parse(url, NULL, NULL, err);
	if (!rc)
		rc = nono_proxy_env_check_extra(extra, err);
	if (rc)
		return rc;
	char *ov[10] = {0};
	size_t n = 0;
	rc = -ENOMEM;
	for (size_t i = 0; i < 6; i++)
		if (asprintf(&ov[n++], "%s=%s", proxy_env_names[i], url) < 0) {
			ov[--n] = NULL;
			goto done;
		}
	if (!(ov[n++] = strdup("NO_PROXY=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("no_proxy=localhost,127.0.0.1,::1")) ||
	    !(ov[n++] = strdup("NODE_USE_ENV_PROXY=1")))
		goto done;
	rc = nono_env_build(false, extra, (const char *const *)ov, out, err);
done:
	if (rc == -ENOMEM)
		rc = nono_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < N_ELEMENTS(ov); i++)
		free(ov[i]);
	return rc;
}
