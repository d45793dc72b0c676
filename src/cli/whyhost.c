/* whyhost.c — `nono why --host HOST[:PORT]`: would the policy built from the same flags as `nono
 * run` let the command reach HOST? Directly (an --allow-internal grant), through the proxy (its
 * allowlist, asked with nono_proxy_config_query_host), or not at all; the reason (off-list,
 * internal, metadata, port, network blocked) and the flag that would allow it. Nothing runs and
 * no name is looked up, so an allowed name can still be refused per request when it resolves to
 * an internal address: the answer says so. */
#include "policy.h"
#include "whyhost.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct answer {
	bool allowed;
	const char *via; /* "network", "direct", "proxy" */
	char code[24];
	char reason[NONO_REASON_MAX];
	char flag[NONO_REASON_MAX];
};

/* HOST, [V6]:PORT, HOST:PORT, or a bare IPv6 literal (no port). */
static int split_host(const char *arg, char *host, size_t hl, uint16_t *port)
{
	const char *colon = NULL;
	*port = 0;
	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');
		if (!rb || (rb[1] && rb[1] != ':'))
			return -1;
		snprintf(host, hl, "%.*s", (int)(rb - arg - 1), arg + 1);
		colon = rb[1] ? rb + 1 : NULL;
	} else if ((colon = strchr(arg, ':')) && strchr(colon + 1, ':')) {
		snprintf(host, hl, "%s", arg); /* bare IPv6 literal */
		colon = NULL;
	} else {
		snprintf(host, hl, "%.*s", colon ? (int)(colon - arg) : (int)strlen(arg), arg);
	}
	if (colon && cli_parse_port("--host", colon + 1, port, false) < 0)
		return -1;
	return host[0] ? 0 : -1;
}

/* An --allow-internal grant covering host:port (by the name as given or a resolved address). */
static bool direct_grant(const nono_caps *caps, const char *host, uint16_t port)
{
	for (size_t i = 0; i < nono_caps_internal_count(caps); i++) {
		nono_internal_dest d;
		if (nono_caps_internal(caps, i, &d) == 0 && d.port == port &&
		    (!strcasecmp(d.host, host) || !strcmp(d.addr, host)))
			return true;
	}
	return false;
}

static int ask_proxy(const struct run_opts *o, const char *host, uint16_t port, struct answer *a)
{
	a->via = "proxy";
	if (!o->domains.n && !o->ro.routes.n) { /* --proxy-port only: someone else's proxy decides */
		snprintf(a->code, sizeof a->code, "external-proxy");
		snprintf(a->reason, sizeof a->reason,
			 "decided by the proxy listening on port %u, not by nono", (unsigned)o->proxy_port);
		return -1;
	}
	nono_proxy_config *cfg = NULL;
	int st = policy_build_proxy_config(o, &cfg);
	if (st >= 0)
		return st;
	nono_host_decision d;
	nono_error err = {0};
	int rc = nono_proxy_config_query_host(cfg, host, port, &d, &err);
	nono_proxy_config_free(cfg);
	if (rc < 0) {
		cli_err("--host %s: %s", host, err.message);
		return EXIT_USAGE;
	}
	a->allowed = d.allowed;
	snprintf(a->code, sizeof a->code, "%s", d.code);
	snprintf(a->reason, sizeof a->reason, "%s", d.reason);
	snprintf(a->flag, sizeof a->flag, "%s", d.flag);
	if (d.allowed && strcmp(d.reason, "an allowed internal destination") != 0)
		snprintf(a->reason + strlen(a->reason), sizeof a->reason - strlen(a->reason),
			 " (through the proxy; refused per request if the name resolves to an "
			 "internal or metadata address)");
	return -1;
}

static int decide(const nono_caps *caps, const struct run_opts *o, const char *host, uint16_t port,
		  struct answer *a)
{
	switch (nono_caps_network(caps, NULL)) {
	case NONO_NET_ALLOWED:
		a->allowed = true;
		a->via = "network";
		snprintf(a->code, sizeof a->code, "allowed");
		snprintf(a->reason, sizeof a->reason,
			 "the network is not restricted (no --net-block, --allow-domain or --proxy-port)");
		return -1;
	case NONO_NET_BLOCKED:
		a->via = "network";
		snprintf(a->code, sizeof a->code, "network-blocked");
		snprintf(a->reason, sizeof a->reason, "the network is blocked (--net-block)");
		snprintf(a->flag, sizeof a->flag, "--allow-domain %.200s (instead of --net-block)", host);
		return -1;
	case NONO_NET_PROXY_ONLY:
		break;
	}
	if (port && direct_grant(caps, host, port)) {
		a->allowed = true;
		a->via = "direct";
		snprintf(a->code, sizeof a->code, "allowed");
		snprintf(a->reason, sizeof a->reason,
			 "an --allow-internal grant: reached directly and through the proxy");
		return -1;
	}
	return ask_proxy(o, host, port, a);
}

static void print_json(const char *host, uint16_t port, const struct answer *a)
{
	json_t *j = json_pack("{s:s, s:o, s:b, s:s, s:s, s:s, s:o}", "host", host, "port",
			      port ? json_integer(port) : json_null(), "allowed", a->allowed, "via",
			      a->via, "code", a->code, "reason", a->reason, "flag",
			      a->flag[0] ? json_string(a->flag) : json_null());
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s)
		puts(s);
	free(s);
	json_decref(j);
}

int why_host(const nono_caps *caps, const struct run_opts *o)
{
	char host[256];
	uint16_t port;
	if (split_host(o->why_host, host, sizeof host, &port) < 0)
		return cli_usage_error("why ", "--host '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
				       o->why_host);
	struct answer a = {.via = "proxy"};
	int st = decide(caps, o, host, port, &a);
	if (st >= 0)
		return st;
	if (o->json) {
		print_json(host, port, &a);
	} else {
		bool v6 = strchr(host, ':') != NULL;
		printf("host %s%s%s", v6 ? "[" : "", host, v6 ? "]" : "");
		if (port)
			printf(":%u", (unsigned)port);
		printf(": %s (%s): %s\n", a.allowed ? "allowed" : "denied", a.code, a.reason);
		if (!a.allowed)
			printf("allow with: %s\n", a.flag[0] ? a.flag : "no flag can allow this");
	}
	return a.allowed ? 0 : 1;
}
