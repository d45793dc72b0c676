/* extproxy.c — the external (corporate) proxy options; see extproxy.h. */
#include "extproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_external_proxy(nono_proxy_config *cfg, const char *url, const struct strvec *bypass)
{
	nono_error err = {0};
	const char *arg_url = url;
	if (!url) {
		if (bypass->n) {
			cli_err("--bypass %s: needs --external-proxy (it names hosts that do not go "
				"through it)", bypass->v[0]);
			return EXIT_USAGE;
		}
		return -1;
	}
	if (strncmp(url, "env://", 6) == 0) {
		const char *name = url + 6;
		/* A name with '=' (or other odd bytes) would match the wrong environ entry and could
		 * not be unset afterwards: only ordinary variable names. */
		size_t ok = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
					 "0123456789");
		if (!*name || name[ok] || (*name >= '0' && *name <= '9')) {
			cli_err("--external-proxy env://%s: not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
				name);
			return EXIT_USAGE;
		}
		const char *v = getenv(name);
		if (!v || !*v) {
			cli_err("--external-proxy env://%s: the variable is not set or empty", name);
			return EXIT_USAGE;
		}
		url = v;
	}
	if (nono_proxy_config_set_external_proxy(cfg, url, &err) < 0) {
		cli_err("--external-proxy: %s", err.message);
		return EXIT_USAGE;
	}
	/* The config holds its copy now: an env:// variable leaves nono's environment (wiped, as
	 * /proc/PID/environ shows the original block), so --inherit-env or --env NAME cannot hand
	 * the proxy's credentials to the command (review of 2026-12-04). */
	if (strncmp(arg_url, "env://", 6) == 0) {
		explicit_bzero((char *)url, strlen(url));
		unsetenv(arg_url + 6);
	}
	for (size_t i = 0; i < bypass->n; i++)
		if (nono_proxy_config_add_bypass_host(cfg, bypass->v[i], &err) < 0) {
			cli_err("--bypass %s: %s", bypass->v[i], err.message);
			return EXIT_USAGE;
		}
	return -1;
}

int cli_extproxy_opt(const char **url, struct strvec *bypass, bool is_bypass, const char *arg)
{
	if (!is_bypass) {
		*url = arg;
		return -1;
	}
	if (strvec_push(bypass, arg) < 0) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	return -1;
}

const char *cli_external_proxy_shown(const char *url, char *buf, size_t cap)
{
	const char *at = strrchr(url, '@'), *scheme = strstr(url, "://");
	if (!at || strncmp(url, "env://", 6) == 0) {
		snprintf(buf, cap, "%s", url);
		return buf;
	}
	int slen = scheme && scheme < at ? (int)(scheme + 3 - url) : 0;
	snprintf(buf, cap, "%.*s***@%s", slen, url, at + 1);
	return buf;
}
