/* proxy_cmd.c — `nono proxy`: the filtering proxy standalone, until SIGINT or SIGTERM. */
#include "commands.h"
#include "extproxy.h"
#include "help.h"
#include "icpt.h"
#include "nono.h"
#include "routes.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
	P_DOMAIN = 256,
	P_ALL,
	P_INTERNAL,
	P_LISTEN,
	P_AUDIT,
	P_NOTOKEN,
	P_MAXCONN,
	P_ROUTE,
	P_CREDENTIAL,
	P_ROUTE_CA,
	P_ROUTE_ENDPOINT,
	P_EXTPROXY,
	P_BYPASS,
	P_INTERCEPT,
	P_INTERCEPT_CA_DIR,
};

#define MAX_CONNECTIONS_LIMIT 1000000u /* the library's own upper bound */

/* The --listen address as given (serve() warns when it is not loopback). */
static char listen_addr[64] = "127.0.0.1";

/* 127.0.0.0/8 or ::1 (an unparsable address is not; the library refuses it anyway). */
static bool is_loopback(const char *addr)
{
	unsigned char b[16];
	static const unsigned char v6lo[16] = {[15] = 1};
	if (inet_pton(AF_INET, addr, b) == 1)
		return b[0] == 127;
	return inet_pton(AF_INET6, addr, b) == 1 && !memcmp(b, v6lo, 16);
}

/* Not loopback: any host that reaches this address may use the proxy (with the token). Say so,
 * with the address really listened on; the URL printed stays the one local clients use. */
static void warn_listen(uint16_t port)
{
	if (is_loopback(listen_addr))
		return;
	bool v6 = strchr(listen_addr, ':') != NULL;
	cli_err("warning: listening on %s%s%s:%u, not loopback: %s can use this proxy (with its "
		"token) and through it the allowed hosts; the URL below is for clients on this "
		"machine", v6 ? "[" : "", listen_addr, v6 ? "]" : "", (unsigned)port,
		strcmp(listen_addr, "0.0.0.0") && strcmp(listen_addr, "::")
			? "every host that reaches this address"
			: "every host that reaches this machine on any interface");
}

/* "PORT", "ADDR:PORT" or "[V6ADDR]:PORT" into addr (caller buffer) and port. */
static int parse_listen(const char *s, char *addr, size_t alen, uint16_t *port)
{
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		if ((size_t)(close - s - 1) >= alen)
			return -1;
		snprintf(addr, alen, "%.*s", (int)(close - s - 1), s + 1);
		colon = close + 1;
	} else if ((colon = strrchr(s, ':'))) {
		if ((size_t)(colon - s) >= alen || strchr(s, ':') != colon)
			return -1; /* bare IPv6 needs brackets */
		snprintf(addr, alen, "%.*s", (int)(colon - s), s);
	} else {
		snprintf(addr, alen, "127.0.0.1");
		colon = s - 1;
	}
	return cli_parse_port("--listen", colon + 1, port, true);
}

/* --max-connections N: 1..MAX_CONNECTIONS_LIMIT, decimal. */
static int parse_max_connections(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < 1 || v > MAX_CONNECTIONS_LIMIT)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void print_event(const nono_audit_event *e)
{
	fprintf(stderr, "%s: %s %s %s:%u", nono_prog, e->decision, e->method[0] ? e->method : e->mode,
		e->target, (unsigned)e->port);
	if (e->path[0])
		fprintf(stderr, " %s", e->path);
	if (e->status)
		fprintf(stderr, " -> %d", e->status);
	if (e->reason[0])
		fprintf(stderr, " (%s)", e->reason);
	if (e->bytes_up || e->bytes_down)
		fprintf(stderr, " [up %llu, down %llu bytes]", (unsigned long long)e->bytes_up,
			(unsigned long long)e->bytes_down);
	fputc('\n', stderr);
}

/* Start the proxy, print its URL, and print its decisions until SIGINT or SIGTERM. The stop
 * signals are blocked before the proxy thread exists (it inherits the mask), then waited for here.
 * Returns the exit status; *p is the proxy to stop. */
static int serve(const nono_proxy_config *cfg, const struct route_opts *ro, bool quiet, nono_proxy **p)
{
	nono_error err = {0};
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (nono_proxy_start(cfg, p, &err) < 0) {
		cli_err("starting the proxy: %s", err.message);
		return err.code == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
	}
	warn_listen(nono_proxy_port(*p));
	route_scrub_env(ro);
	printf("%s\n", nono_proxy_url(*p));
	/* Credential routes: the variables a client needs (base URLs and placeholders, never the
	 * secrets), one NAME=VALUE a line after the URL. */
	char **cenv = NULL;
	if (nono_proxy_credential_env(*p, &cenv, &err) == 0) {
		for (size_t i = 0; cenv[i]; i++)
			printf("%s\n", cenv[i]);
		nono_strv_free(cenv);
	}
	icpt_print_env(*p, stdout); /* with interception: the CA bundle's variables */
	fflush(stdout);
	if (!quiet)
		cli_err("proxy listening on port %u (HTTP, and SOCKS5 as socks5h://%s); stop with Ctrl-C "
			"or SIGTERM", (unsigned)nono_proxy_port(*p), nono_proxy_url(*p) + strlen("http://"));
	nono_audit *ring = nono_proxy_audit(*p);
	for (;;) {
		struct timespec ts = {0, 200 * 1000000L};
		int sig = sigtimedwait(&stop, NULL, &ts);
		nono_audit_event ev[32];
		size_t n;
		while ((n = nono_audit_drain(ring, ev, 32)) > 0)
			for (size_t i = 0; i < n && !quiet; i++)
				print_event(&ev[i]);
		if (sig > 0)
			return 0;
	}
}

/* --listen: -1 when parsed (*r holds the library's answer), else the usage exit status. */
static int opt_listen(nono_proxy_config *cfg, const char *arg, int *r, nono_error *err)
{
	char *addr = listen_addr;
	uint16_t port;
	if (parse_listen(arg, addr, sizeof listen_addr, &port) < 0)
		return cli_usage_error("proxy ", "--listen '%s': expected PORT, ADDR:PORT or "
						 "[ADDR6]:PORT", arg);
	*r = nono_proxy_config_set_listen(cfg, addr, port, err);
	return -1;
}

/* --max-connections: -1 when set, else the usage exit status. */
static int opt_max_connections(nono_proxy_config *cfg, const char *arg)
{
	nono_proxy_limits lim = {0};
	if (parse_max_connections(arg, &lim.max_connections) < 0)
		return cli_usage_error("proxy ", "--max-connections '%s': expected a number of "
						 "connections, 1..%u", arg, MAX_CONNECTIONS_LIMIT);
	nono_proxy_config_set_limits(cfg, &lim); /* zero fields keep their values */
	return -1;
}

/* The credential-route options (routes.c): -1 when taken, else the usage exit status. */
static int opt_route(struct route_opts *ro, int c, const char *arg, bool *any_host)
{
	switch (c) {
	case P_ROUTE: *any_host = true; return route_opts_route(ro, arg);
	case P_CREDENTIAL: return route_opts_credential(ro, arg);
	case P_ROUTE_CA: return route_opts_ca(ro, arg);
	default: return route_opts_endpoint(ro, arg);
	}
}

/* After the options: something must be allowed; the routes go into the config. -1 or a status. */
static int finish_config(nono_proxy_config *cfg, const struct route_opts *ro, bool any_host)
{
	if (!any_host)
		return cli_usage_error("proxy ", "no host allowed: give --allow-domain (or --allow-all-hosts, "
						 "or a --route); a proxy that denies everything is not useful");
	return route_opts_apply(ro, cfg);
}

/* The options of `nono proxy` (file scope: keeps cmd_proxy short). */
static const struct option proxy_longopts[] = {
	{"allow-domain", required_argument, NULL, P_DOMAIN},
	{"allow-all-hosts", no_argument, NULL, P_ALL},
	{"allow-internal", required_argument, NULL, P_INTERNAL},
	{"listen", required_argument, NULL, P_LISTEN},
	{"audit-log", required_argument, NULL, P_AUDIT},
	{"connect-without-token", no_argument, NULL, P_NOTOKEN},
	{"max-connections", required_argument, NULL, P_MAXCONN},
	{"external-proxy", required_argument, NULL, P_EXTPROXY},
	{"bypass", required_argument, NULL, P_BYPASS},
	{"route", required_argument, NULL, P_ROUTE},
	{"credential", required_argument, NULL, P_CREDENTIAL},
	{"route-ca", required_argument, NULL, P_ROUTE_CA},
	{"route-endpoint", required_argument, NULL, P_ROUTE_ENDPOINT},
	{"intercept", no_argument, NULL, P_INTERCEPT},
	{"intercept-ca-dir", required_argument, NULL, P_INTERCEPT_CA_DIR},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int cmd_proxy(int argc, char **argv)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_proxy *p = NULL;
	struct route_opts ro = {0};
	bool quiet = false, any_host = false;
	const char *ext_url = NULL;
	struct strvec bypass = {0};
	struct icpt_opts icpt = {0};
	char *ca_tmp = NULL;
	int status = EXIT_USAGE, c, u;
	if (!cfg) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:qh", proxy_longopts, NULL)) != -1) {
		int r = 0;
		const char *what = NULL;
		switch (c) {
		case P_DOMAIN:
			what = "--allow-domain";
			r = nono_proxy_config_allow_host(cfg, optarg, &err);
			any_host = true;
			break;
		case P_ALL:
			nono_proxy_config_allow_all_hosts(cfg, true);
			any_host = true;
			break;
		case P_INTERNAL:
			what = "--allow-internal";
			r = nono_proxy_config_allow_internal(cfg, optarg, &err);
			any_host = true;
			break;
		case P_LISTEN:
			what = "--listen";
			if ((u = opt_listen(cfg, optarg, &r, &err)) >= 0)
				goto usage;
			break;
		case P_AUDIT:
			what = "--audit-log";
			r = nono_proxy_config_set_audit_log(cfg, optarg, &err);
			break;
		case P_NOTOKEN: nono_proxy_config_set_connect_without_token(cfg, true); break;
		case P_MAXCONN:
			if ((u = opt_max_connections(cfg, optarg)) >= 0)
				goto usage;
			break;
		case P_ROUTE: case P_CREDENTIAL: case P_ROUTE_CA: case P_ROUTE_ENDPOINT:
			if ((u = opt_route(&ro, c, optarg, &any_host)) >= 0)
				goto usage;
			break;
		case P_EXTPROXY:
		case P_BYPASS:
			if ((u = cli_extproxy_opt(&ext_url, &bypass, c == P_BYPASS, optarg)) >= 0)
				goto usage;
			break;
		case P_INTERCEPT:
		case P_INTERCEPT_CA_DIR:
			if ((u = icpt_opt(&icpt, c == P_INTERCEPT ? NULL : optarg, "proxy ")) >= 0)
				goto usage;
			break;
		case 'q': quiet = true; break;
		case 'h': help_proxy(stdout); status = 0; goto out;
		case ':':
			status = cli_usage_error("proxy ", "option '%s' needs an argument", argv[optind - 1]);
			goto out;
		default:
			status = cli_usage_error("proxy ", "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
		if (r < 0) {
			cli_err("%s %s: %s", what, optarg, err.message);
			goto out;
		}
	}
	if (optind < argc) {
		status = cli_usage_error("proxy ", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if ((u = finish_config(cfg, &ro, any_host)) >= 0)
		goto usage;
	if ((u = cli_external_proxy(cfg, ext_url, &bypass)) >= 0)
		goto usage;
	if ((u = icpt_check(&icpt, ro.routes.n, "proxy ")) >= 0)
		goto usage;
	if ((status = icpt_prepare(&icpt, cfg, NULL, &ca_tmp)) < 0)
		status = serve(cfg, &ro, quiet, &p);
	goto out;
usage:
	status = u;
out:
	route_opts_free(&ro);
	nono_proxy_stop(p);
	icpt_remove(&ca_tmp); /* its files went with the proxy */
	nono_proxy_config_free(cfg);
	strvec_free(&bypass);
	return status;
}
