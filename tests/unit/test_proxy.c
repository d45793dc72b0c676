/* test_proxy.c — the proxy API end to end over loopback sockets (config errors, env, token, CONNECT,
 * plain HTTP, denials, audit ring, stop with live connections). The only name used is "localhost"
 * (/etc/hosts → loopback), so nothing could leave the machine even with a broken proxy.
 *
 * Also the integration tests' driver: `test_proxy --serve [options]` starts a proxy from the library,
 * prints "PORT TOKEN URL" on one line, then serves until stdin reaches EOF. A line "audit" on stdin
 * prints the drained audit events as JSON lines followed by "END"; "conns" prints the number of
 * connections the proxy holds, then "END". Options: --allow PATTERN,
 * --allow-connect-only PATTERN,
 * --internal HOST:PORT, --allow-all, --connect-without-token, --max-conn N, --header-timeout MS,
 * --idle-timeout MS, --max-header N, --audit-log FILE, --listen ADDR, --external-proxy URL,
 * --bypass HOST, --intercept-ca-dir DIR, --intercept HOST (intercepted without a route). A line
 * "ca" prints the CA bundle's path. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------- serve mode ---------------------------------- */

static int serve(int argc, char **argv)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_proxy_limits lim = {0};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		if (!strcmp(a, "--allow-all")) {
			nono_proxy_config_allow_all_hosts(cfg, true);
			continue;
		}
		if (!strcmp(a, "--connect-without-token")) {
			nono_proxy_config_set_connect_without_token(cfg, true);
			continue;
		}
		if (!v) {
			fprintf(stderr, "missing value for %s\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--allow"))
			rc = nono_proxy_config_allow_host(cfg, v, &err);
		else if (!strcmp(a, "--allow-connect-only"))
			rc = nono_proxy_config_allow_host_connect_only(cfg, v, &err);
		else if (!strcmp(a, "--internal"))
			rc = nono_proxy_config_allow_internal(cfg, v, &err);
		else if (!strcmp(a, "--max-conn"))
			lim.max_connections = (unsigned)atoi(v);
		else if (!strcmp(a, "--header-timeout"))
			lim.header_timeout_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--idle-timeout"))
			lim.idle_timeout_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--max-header"))
			lim.max_header_bytes = (size_t)atol(v);
		else if (!strcmp(a, "--audit-log"))
			rc = nono_proxy_config_set_audit_log(cfg, v, &err);
		else if (!strcmp(a, "--listen"))
			rc = nono_proxy_config_set_listen(cfg, v, 0, &err);
		else if (!strcmp(a, "--external-proxy"))
			rc = nono_proxy_config_set_external_proxy(cfg, v, &err);
		else if (!strcmp(a, "--bypass"))
			rc = nono_proxy_config_add_bypass_host(cfg, v, &err);
		else if (!strcmp(a, "--intercept-ca-dir"))
			rc = nono_proxy_config_set_intercept_ca_dir(cfg, v, &err);
		else if (!strcmp(a, "--intercept"))
			rc = np_intercept_add_host(cfg, v, &err);
		else {
			fprintf(stderr, "unknown option %s\n", a);
			return 2;
		}
		if (rc < 0) {
			fprintf(stderr, "%s %s: %s\n", a, v, err.message);
			return 2;
		}
	}
	nono_proxy_config_set_limits(cfg, &lim);
	nono_proxy *p = NULL;
	if (nono_proxy_start(cfg, &p, &err) < 0) {
		fprintf(stderr, "start: %s\n", err.message);
		return 1;
	}
	nono_proxy_config_free(cfg);
	printf("%u %s %s\n", nono_proxy_port(p), nono_proxy_token(p), nono_proxy_url(p));
	fflush(stdout);
	char line[256];
	while (fgets(line, sizeof line, stdin)) {
		if (strncmp(line, "audit", 5) == 0) {
			nono_audit_event ev[64];
			size_t n;
			while ((n = nono_audit_drain(nono_proxy_audit(p), ev, 64)) > 0)
				for (size_t i = 0; i < n; i++) {
					char j[NONO_AUDIT_LINE_MAX];
					fputs(nono_audit_event_format(&ev[i], j, sizeof j) > 0 ? j : "{}\n", stdout);
				}
			printf("END\n");
			fflush(stdout);
		} else if (strncmp(line, "ca", 2) == 0) {
			printf("%s\nEND\n", nono_proxy_ca_bundle(p) ? nono_proxy_ca_bundle(p) : "none");
			fflush(stdout);
		} else if (strncmp(line, "conns", 5) == 0) {
			printf("%u\nEND\n", np_proxy_connections(p));
			fflush(stdout);
		} else if (strncmp(line, "env", 3) == 0) {
			char **env = NULL;
			/* a proxy variable of the caller's is refused, not silently overwritten */
			const char *clash[] = {"FOO=bar", "HTTP_PROXY=http://evil", NULL};
			if (nono_proxy_env(p, clash, &env, &err) < 0)
				printf("REFUSED %s\n", err.message);
			const char *extra[] = {"FOO=bar", NULL};
			if (!env && nono_proxy_env(p, extra, &env, &err) < 0) {
				printf("ERROR %s\n", err.message);
			} else {
				for (char **e = env; *e; e++)
					printf("%s\n", *e);
				nono_strv_free(env);
			}
			printf("END\n");
			fflush(stdout);
		}
	}
	nono_proxy_stop(p);
	return 0;
}

/* ---------------------------------- unit tests ---------------------------------- */

/* A tiny upstream: answers each connection's first request with a fixed body, then closes. */
static int up_fd;
static volatile int up_requests;

static void *upstream_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(up_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		char buf[4096];
		size_t len = 0;
		while (len < sizeof buf - 1) {
			ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		__atomic_add_fetch(&up_requests, 1, __ATOMIC_SEQ_CST);
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\nhello";
		if (send(fd, resp, strlen(resp), MSG_NOSIGNAL) < 0) {
			/* the client went away */
		}
		close(fd);
	}
}

static int dial(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send `req`, read until EOF or `until` appears; returns malloc'd text. */
static char *exchange(uint16_t port, const char *req, const char *until)
{
	int fd = dial(port);
	if (fd < 0)
		return strdup("");
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		close(fd);
		return strdup("");
	}
	size_t cap = 65536, len = 0;
	char *buf = calloc(1, cap);
	while (len < cap - 1) {
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (until && strstr(buf, until))
			break;
	}
	close(fd);
	return buf;
}

static char basic[128];

static void make_basic(const char *token)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char plain[64];
	int n = snprintf(plain, sizeof plain, "nono:%s", token);
	size_t o = 0;
	for (int i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)plain[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)plain[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)plain[i + 2];
		basic[o++] = tbl[(v >> 18) & 63];
		basic[o++] = tbl[(v >> 12) & 63];
		basic[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		basic[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	basic[o] = '\0';
}

static void test_config_errors(void)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	CHECK(cfg != NULL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "*", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "a.*.com", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "example.com:0", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "example.com:70000", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "ex ample.com", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "example.com", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "*.example.com:443", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "127.0.0.1", &err), -EINVAL); /* port required */
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "*.lan:80", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "169.254.169.254:80", &err), -EPERM);
	CHECK(strstr(err.message, "metadata") != NULL);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "[::ffff:169.254.169.254]:80", &err), -EPERM);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "0xa9fea9fe:80", &err), -EPERM);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "metadata.google.internal:80", &err), -EPERM);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "[fd00:ec2::254]:80", &err), -EPERM);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "127.0.0.1:8080", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_set_listen(cfg, "localhost", 0, &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_set_listen(cfg, "::1", 0, &err), 0);
	CHECK_EQ_INT(nono_proxy_config_set_audit_log(cfg, "", &err), -EINVAL);
	nono_proxy_config_free(cfg);
	nono_proxy_config_free(NULL);
	nono_proxy_stop(NULL);
}

/* An explicit allowlist together with allow_all_hosts contradicts itself: refused at start (the
 * same rule for the CLI and nono_py), in either order of the calls. Connect-only hosts and
 * allow_internal still combine with allow_all_hosts. */
static void test_allow_all_with_allowlist(void)
{
	nono_error err = {0};
	nono_proxy *p = NULL;
	for (int order = 0; order < 2; order++) {
		nono_proxy_config *cfg = nono_proxy_config_new();
		if (order)
			nono_proxy_config_allow_all_hosts(cfg, true);
		CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "example.com", &err), 0);
		if (!order)
			nono_proxy_config_allow_all_hosts(cfg, true);
		CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), -EINVAL);
		CHECK(p == NULL);
		CHECK(strstr(err.message, "cannot be combined with allow-all-hosts") != NULL);
		nono_proxy_config_allow_all_hosts(cfg, false);
		CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
		nono_proxy_stop(p);
		p = NULL;
		nono_proxy_config_free(cfg);
	}
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_proxy_config_allow_all_hosts(cfg, true);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(cfg, "example.com:443", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, "127.0.0.1:8080", &err), 0);
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
}

static void test_listen_in_use(void)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_proxy *a = NULL, *b = NULL;
	CHECK_EQ_INT(nono_proxy_start(cfg, &a, &err), 0);
	CHECK_EQ_INT(nono_proxy_config_set_listen(cfg, "127.0.0.1", nono_proxy_port(a), &err), 0);
	CHECK_EQ_INT(nono_proxy_start(cfg, &b, &err), -EADDRINUSE);
	CHECK(b == NULL);
	nono_proxy_stop(a);
	nono_proxy_config_free(cfg);
}

static void test_listen_v6(void)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_proxy *p = NULL;
	CHECK_EQ_INT(nono_proxy_config_set_listen(cfg, "[::1]", 0, &err), 0);
	int rc = nono_proxy_start(cfg, &p, &err);
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) { /* no IPv6 loopback here */
		nono_proxy_config_free(cfg);
		return;
	}
	CHECK_EQ_INT(rc, 0);
	char want[128];
	snprintf(want, sizeof want, "http://nono:%s@[::1]:%u", nono_proxy_token(p), nono_proxy_port(p));
	CHECK_STR(nono_proxy_url(p), want);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(nono_proxy_port(p)),
				 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
	const char *req = "CONNECT localhost:443 HTTP/1.1\r\n\r\n";
	CHECK(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
	char buf[256] = "";
	CHECK(recv(fd, buf, sizeof buf - 1, 0) > 12);
	CHECK(strncmp(buf, "HTTP/1.1 403 ", 13) == 0);
	close(fd);
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
}

static void test_end_to_end(void)
{
	nono_error err = {0};
	up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	CHECK(bind(up_fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(listen(up_fd, 64) == 0);
	getsockname(up_fd, (struct sockaddr *)&a, &al);
	uint16_t up_port = ntohs(a.sin_port);
	pthread_t t;
	pthread_create(&t, NULL, upstream_main, NULL);

	nono_proxy_config *cfg = nono_proxy_config_new();
	char internal[64];
	snprintf(internal, sizeof internal, "127.0.0.1:%u", up_port);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, internal, &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(cfg, "localhost:443", &err), 0);
	nono_proxy *p = NULL;
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
	nono_proxy_config_free(cfg); /* the proxy keeps its own copy */
	if (!p)
		return;
	uint16_t port = nono_proxy_port(p);
	const char *tok = nono_proxy_token(p);
	CHECK_EQ_INT(strlen(tok), 32);
	CHECK_EQ_INT(strspn(tok, "0123456789abcdef"), 32);
	char want_url[128];
	snprintf(want_url, sizeof want_url, "http://nono:%s@127.0.0.1:%u", tok, port);
	CHECK_STR(nono_proxy_url(p), want_url);
	make_basic(tok);

	/* env: a proxy variable in extra would be overwritten: refused, naming it; loader variables
	 * refused */
	char **env = NULL;
	const char *clash[] = {"FOO=1", "HTTPS_PROXY=http://elsewhere", NULL};
	CHECK_EQ_INT(nono_proxy_env(p, clash, &env, &err), -EINVAL);
	CHECK(strstr(err.message, "HTTPS_PROXY") != NULL);
	CHECK(env == NULL);
	const char *extra[] = {"FOO=1", NULL};
	CHECK_EQ_INT(nono_proxy_env(p, extra, &env, &err), 0);
	int seen = 0;
	for (char **e = env; e && *e; e++) {
		if (!strncmp(*e, "HTTPS_PROXY=", 12)) {
			CHECK_STR(*e + 12, want_url);
			seen |= 1;
		}
		if (!strcmp(*e, "NO_PROXY=localhost,127.0.0.1,::1"))
			seen |= 2;
		if (!strcmp(*e, "NODE_USE_ENV_PROXY=1"))
			seen |= 4;
		if (!strcmp(*e, "FOO=1"))
			seen |= 8;
		if (!strncmp(*e, "all_proxy=", 10))
			seen |= 16;
	}
	CHECK_EQ_INT(seen, 31);
	nono_strv_free(env);
	const char *bad[] = {"LD_PRELOAD=/x.so", NULL};
	env = NULL;
	CHECK_EQ_INT(nono_proxy_env(p, bad, &env, &err), -EINVAL);

	char req[1024];
	/* plain HTTP, allowed internal upstream */
	snprintf(req, sizeof req,
		 "GET http://127.0.0.1:%u/x HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Basic %s\r\n"
		 "Connection: close\r\n\r\n", up_port, basic);
	char *r = exchange(port, req, NULL);
	CHECK(strncmp(r, "HTTP/1.1 200 OK", 15) == 0);
	CHECK(strstr(r, "\r\n\r\nhello") != NULL);
	CHECK(strstr(r, "Connection: close") != NULL);
	free(r);
	/* CONNECT, then a request through the tunnel */
	snprintf(req, sizeof req,
		 "CONNECT 127.0.0.1:%u HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n"
		 "GET / HTTP/1.1\r\nHost: x\r\n\r\n", up_port, basic);
	r = exchange(port, req, "hello");
	CHECK(strncmp(r, "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK", 54) == 0);
	free(r);
	/* off the allowlist: 403 even without credentials (policy wins) */
	r = exchange(port, "CONNECT otherhost:443 HTTP/1.1\r\n\r\n", NULL);
	CHECK(strncmp(r, "HTTP/1.1 403 Forbidden: host otherhost is not in the allowlist\r\n", 64) == 0);
	CHECK(strstr(r, "X-Nono-Denial: host-not-allowed\r\n") != NULL);
	free(r);
	/* the host is listed on another port: the answer names the port */
	r = exchange(port, "CONNECT localhost:444 HTTP/1.1\r\n\r\n", NULL);
	static const char port444[] = "HTTP/1.1 403 Forbidden: port 444 is not allowed for localhost\r\n";
	CHECK(strncmp(r, port444, strlen(port444)) == 0);
	CHECK(strstr(r, "X-Nono-Denial: port-not-allowed\r\n") != NULL);
	free(r);
	/* allowed name resolving to loopback, no credentials: the policy answers first (403). Which
	 * loopback address comes first depends on /etc/hosts and gai.conf (::1 on some hosts). */
	r = exchange(port, "CONNECT localhost:443 HTTP/1.1\r\n\r\n", NULL);
	static const char resolves[] = "HTTP/1.1 403 Forbidden: host localhost resolves to ";
	CHECK(strncmp(r, resolves, strlen(resolves)) == 0);
	const char *addr = r + strlen(resolves);
	CHECK(strncmp(addr, "127.0.0.1, an internal address: loopback", 40) == 0 ||
	      strncmp(addr, "::1, an internal address: loopback", 34) == 0);
	CHECK(strstr(r, "X-Nono-Denial: internal-address\r\n") != NULL);
	free(r);
	/* allowed destination, no credentials: 407 */
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", up_port);
	r = exchange(port, req, NULL);
	CHECK(strncmp(r, "HTTP/1.1 407 ", 13) == 0);
	CHECK(strstr(r, "Proxy-Authenticate: Basic") != NULL);
	free(r);
	/* wrong token */
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\nProxy-Authorization: Basic bm9ubzp4\r\n\r\n",
		 up_port);
	r = exchange(port, req, NULL);
	CHECK(strncmp(r, "HTTP/1.1 407 ", 13) == 0);
	free(r);
	/* internal port not allowed explicitly */
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
		 up_port == 65535 ? 1 : up_port + 1, basic);
	r = exchange(port, req, NULL);
	char want_port[96];
	snprintf(want_port, sizeof want_port, "HTTP/1.1 403 Forbidden: port %u is not allowed for 127.0.0.1",
		 up_port == 65535 ? 1 : up_port + 1);
	CHECK(strncmp(r, want_port, strlen(want_port)) == 0);
	CHECK(strstr(r, "X-Nono-Denial: port-not-allowed\r\n") != NULL);
	free(r);
	/* loopback in decimal, port not allowed (metadata spellings: tests/integration, in a netns) */
	r = exchange(port, "GET http://2130706433:1/ HTTP/1.1\r\n\r\n", NULL);
	CHECK(strstr(r, "X-Nono-Denial: port-not-allowed\r\n") != NULL);
	free(r);
	/* an internal address no pattern names at all */
	r = exchange(port, "GET http://127.0.0.2:1/ HTTP/1.1\r\n\r\n", NULL);
	CHECK(strstr(r, "X-Nono-Denial: internal-address\r\n") != NULL);
	free(r);
	/* malformed */
	r = exchange(port, "GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
	CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
	free(r);
	/* audit: every decision above is in the ring */
	nono_audit_event ev[64];
	size_t n = nono_audit_drain(nono_proxy_audit(p), ev, 64);
	int denies = 0, allows = 0, closes = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK_STR(ev[i].source, "proxy");
		if (!strcmp(ev[i].decision, "deny"))
			denies++;
		else if (!strncmp(ev[i].reason, "closed", 6))
			closes++;
		else
			allows++;
	}
	CHECK_EQ_INT(denies, 9); /* 7 + the port and unnamed-internal denials */
	CHECK_EQ_INT(allows, 2);
	CHECK_EQ_INT(closes, 2);
	/* stop with a connection still open (a half-sent head): stop closes it. Wait (bounded) until
	 * the proxy holds it — before that, stop would only drop it from the listener's backlog. */
	int held = dial(port);
	CHECK(send(held, "GET http://", 11, 0) == 11);
	for (int i = 0; i < 2000 && np_proxy_connections(p) != 1; i++)
		usleep(1000);
	CHECK_EQ_INT(np_proxy_connections(p), 1);
	nono_proxy_stop(p);
	char c;
	errno = 0;
	ssize_t got = recv(held, &c, 1, 0); /* SO_RCVTIMEO 10 s: a timeout would mean still open */
	CHECK(got == 0 || (got < 0 && errno == ECONNRESET));
	close(held);
	shutdown(up_fd, SHUT_RDWR);
	close(up_fd);
	pthread_join(t, NULL);
}

/* A connect-only host over plain HTTP: 403 with X-Nono-Denial: connect-only, refused before any
 * lookup or credential check, and audited. (CONNECT to such a host needs a public address: the
 * network-namespace integration test covers the tunnel.) */
static void test_connect_only_plain_http(void)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(cfg, "localhost", &err), 0);
	nono_proxy *p = NULL;
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
	nono_proxy_config_free(cfg);
	if (!p)
		return;
	make_basic(nono_proxy_token(p));
	char req[512];
	snprintf(req, sizeof req,
		 "GET http://localhost:8080/x HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n", basic);
	char *r = exchange(nono_proxy_port(p), req, NULL);
	CHECK(strncmp(r, "HTTP/1.1 403 Forbidden: host localhost is allowed for CONNECT tunnels only "
			 "(connect-only)", 89) == 0);
	CHECK(strstr(r, "X-Nono-Denial: connect-only\r\n") != NULL);
	free(r);
	/* without credentials too: the policy answers first */
	r = exchange(nono_proxy_port(p), "GET http://localhost/ HTTP/1.1\r\n\r\n", NULL);
	CHECK(strstr(r, "X-Nono-Denial: connect-only\r\n") != NULL);
	free(r);
	nono_audit_event ev[8];
	size_t n = nono_audit_drain(nono_proxy_audit(p), ev, 8);
	CHECK_EQ_INT(n, 2);
	for (size_t i = 0; i < n && i < 8; i++) {
		CHECK_STR(ev[i].decision, "deny");
		CHECK_STR(ev[i].mode, "http");
		CHECK_STR(ev[i].target, "localhost");
		CHECK_EQ_INT(ev[i].status, 403);
		CHECK(strstr(ev[i].reason, "connect-only") != NULL);
	}
	nono_proxy_stop(p);
}

/* Audit lines are written in batches from the loop; a batch that cannot be written is counted per
 * line (here /dev/full: ENOSPC), and the ring still has every event. */
static void test_audit_write_errors_counted(void)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	CHECK_EQ_INT(nono_proxy_config_set_audit_log(cfg, "/dev/full", &err), 0);
	nono_proxy *p = NULL;
	CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
	nono_proxy_config_free(cfg);
	if (!p)
		return;
	for (int i = 0; i < 3; i++) {
		char *r = exchange(nono_proxy_port(p), "CONNECT example.com:443 HTTP/1.1\r\n\r\n", NULL);
		CHECK(strncmp(r, "HTTP/1.1 403 ", 13) == 0);
		free(r);
	}
	/* the flush timer fires within NP_AUDIT_FLUSH_MS; wait for it, bounded */
	for (int i = 0; i < 5000 && np_proxy_audit_write_errors(p) < 3; i++)
		usleep(1000);
	CHECK_EQ_INT((int)np_proxy_audit_write_errors(p), 3);
	nono_audit_event ev[8];
	CHECK_EQ_INT(nono_audit_drain(nono_proxy_audit(p), ev, 8), 3);
	nono_proxy_stop(p);
}

static int count_threads(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Threads:", 8))
			n = atoi(line + 8);
	if (f)
		fclose(f);
	return n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* nono_proxy_stop returns only when the loop thread and every resolver worker not inside getaddrinfo
 * are gone, and their fds closed: right after it the process is back to its pre-start thread count
 * (what nono_apply requires). Each round does a real lookup (localhost, from /etc/hosts) first, so
 * the workers have been busy; 20 rounds so a late-exiting worker would be caught. */
static void test_stop_joins_threads(void)
{
	nono_error err = {0};
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(listen(lfd, 64) == 0);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	char internal[64];
	snprintf(internal, sizeof internal, "localhost:%u", ntohs(a.sin_port));
	nono_proxy_config *cfg = nono_proxy_config_new();
	CHECK_EQ_INT(nono_proxy_config_allow_internal(cfg, internal, &err), 0);
	int threads0 = count_threads(), fds0 = count_fds();
	CHECK(threads0 >= 1 && fds0 > 0);
	for (int round = 0; round < 20; round++) {
		nono_proxy *p = NULL;
		CHECK_EQ_INT(nono_proxy_start(cfg, &p, &err), 0);
		if (!p)
			break;
		CHECK_EQ_INT(count_threads(), threads0 + NP_PROXY_THREADS);
		make_basic(nono_proxy_token(p));
		char req[512];
		snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
			 internal, basic);
		char *r = exchange(nono_proxy_port(p), req, "\r\n\r\n");
		CHECK(strncmp(r, "HTTP/1.1 200 Connection established", 35) == 0);
		free(r);
		int acc = accept(lfd, NULL, NULL); /* the dialled connection, queued on our listener */
		if (acc >= 0)
			close(acc);
		nono_proxy_stop(p);
		CHECK_EQ_INT(count_threads(), threads0);
		CHECK_EQ_INT(count_fds(), fds0);
	}
	nono_proxy_config_free(cfg);
	close(lfd);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--serve"))
		return serve(argc, argv);
	test_config_errors();
	test_allow_all_with_allowlist();
	test_listen_in_use();
	test_listen_v6();
	test_end_to_end();
	test_connect_only_plain_http();
	test_audit_write_errors_counted();
	test_stop_joins_threads();
	UNIT_DONE();
}
