/* query.c — the proxy's policy asked, not run: nono_proxy_config_query_host (nono why --host).
 * The same np_check_name the proxy applies to a request, plus the one thing a request never needs
 * to say: whether a host that is off the list for this port is listed for another. */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

/* The port of the first pattern that names `norm` (any port), 0 when none does. */
static uint16_t listed_port(const struct nono_proxy_config *c, const char *norm)
{
	const np_pattern *lists[] = {c->allow, c->allow_connect, c->internal};
	size_t ns[] = {c->nallow, c->nallow_connect, c->ninternal};
	for (size_t l = 0; l < N_ELEMENTS(lists); l++)
		for (size_t i = 0; i < ns[l]; i++)
			if (lists[l][i].port && np_pattern_match(&lists[l][i], norm, lists[l][i].port))
				return lists[l][i].port;
	return 0;
}

static void host_port(char *buf, size_t len, const char *host, uint16_t port)
{
	bool v6 = strchr(host, ':') != NULL;
	if (port)
		snprintf(buf, len, "%s%.200s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
	else
		snprintf(buf, len, "%s%.200s%s:PORT", v6 ? "[" : "", host, v6 ? "]" : "");
}

int nono_proxy_config_query_host(const nono_proxy_config *cfg, const char *host, uint16_t port,
				 nono_host_decision *out, nono_error *err)
{
	if (!cfg || !host || !out)
		return nono_fail(err, -EINVAL, "cfg, host and out are required");
	memset(out, 0, sizeof *out);
	char norm[NP_HOST_MAX];
	np_verdict v;
	np_check_name(cfg, host, port, norm, &v);
	char hp[240];
	host_port(hp, sizeof hp, norm, port);
	out->allowed = v.allowed;
	snprintf(out->code, sizeof out->code, "%s", v.allowed ? "allowed" : v.code);
	snprintf(out->reason, sizeof out->reason, "%s", v.allowed ? "in the allowlist" : v.reason);
	if (v.allowed && v.internal_ok)
		snprintf(out->reason, sizeof out->reason, "an allowed internal destination");
	else if (v.allowed && v.connect_only)
		snprintf(out->reason, sizeof out->reason, "allowed for CONNECT tunnels only");
	if (v.allowed)
		return 0;
	bool off = !strcmp(v.code, "host-not-allowed") || !strcmp(v.code, "port-not-allowed");
	uint16_t other = off ? listed_port(cfg, norm) : 0;
	if (other) {
		snprintf(out->code, sizeof out->code, "port-not-allowed");
		if (port)
			snprintf(out->reason, sizeof out->reason,
				 "port %u is not allowed for %.200s (listed for port %u)", (unsigned)port,
				 norm, (unsigned)other);
		else
			snprintf(out->reason, sizeof out->reason, "%.200s is allowed on port %u only",
				 norm, (unsigned)other);
	}
	if (!strcmp(out->code, "internal-address"))
		snprintf(out->flag, sizeof out->flag, "--allow-internal %.220s", hp);
	else if (!strcmp(out->code, "host-not-allowed") || !strcmp(out->code, "port-not-allowed"))
		snprintf(out->flag, sizeof out->flag, "--allow-domain %.200s", port ? hp : norm);
	return 0;
}
