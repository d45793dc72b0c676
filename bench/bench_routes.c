/* bench_routes — a credential route (issue 14) against the same local HTTPS upstream as a direct
 * TLS client, in one run:
 *   latency: sequential small GETs, p50/p90 — direct TLS on a new connection each (full
 *            handshake), direct TLS kept alive, and routed (plain HTTP kept alive to the proxy;
 *            the proxy opens a TLS connection to the upstream per request, resuming the session);
 *   bulk:    one 100 MiB response, direct TLS vs routed, MiB/s;
 *   CPU:     this process's CPU time per kept-alive request (getrusage: the client, and for routed
 *            requests the proxy's threads as well; the upstream is another process).
 * The upstream is a forked OpenSSL server (a thread per connection) with a test CA written to a
 * temporary directory by the `openssl` command; the proxy runs in this process from the library.
 *   bench_routes [ROUNDS=2000] [BULK_MIB=100] [REPEATS=3] */
#include "nono.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64] = "/tmp/nono-bench-routes-XXXXXX";

/* CPU time of this process (the client, and for routed requests the proxy's threads too), ms. */
static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int tcp_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* ---- the upstream (child process) ---- */

static SSL_CTX *srv_ctx;
static char *bulk;
#define BULK_CHUNK (1 << 20)

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	SSL *s = SSL_new(srv_ctx);
	SSL_set_fd(s, fd);
	char buf[16384];
	if (SSL_accept(s) == 1) {
		for (;;) {
			size_t len = 0;
			while (!memmem(buf, len, "\r\n\r\n", 4)) {
				int n = SSL_read(s, buf + len, (int)(sizeof buf - len));
				if (n <= 0)
					goto out;
				len += (size_t)n;
			}
			buf[len] = 0;
			unsigned long mib = 0;
			char *b = strstr(buf, "/bulk/");
			if (b)
				mib = strtoul(b + 6, NULL, 10);
			char head[256];
			int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %lu\r\n\r\n%s",
					  mib ? mib << 20 : 2, mib ? "" : "ok");
			if (SSL_write(s, head, hl) <= 0)
				goto out;
			for (unsigned long i = 0; i < mib; i++)
				if (SSL_write(s, bulk, BULK_CHUNK) <= 0)
					goto out;
			if (strstr(buf, "Connection: close"))
				break;
		}
	}
out:
	SSL_shutdown(s);
	SSL_free(s);
	close(fd);
	return NULL;
}

static void upstream_main(int lfd)
{
	srv_ctx = SSL_CTX_new(TLS_server_method());
	char p[128];
	snprintf(p, sizeof p, "%s/leaf.pem", dir);
	SSL_CTX_use_certificate_chain_file(srv_ctx, p);
	snprintf(p, sizeof p, "%s/leaf.key", dir);
	SSL_CTX_use_PrivateKey_file(srv_ctx, p, SSL_FILETYPE_PEM);
	bulk = malloc(BULK_CHUNK);
	memset(bulk, 'x', BULK_CHUNK);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_t t;
		pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

/* ---- clients ---- */

static SSL_CTX *cli_ctx;

/* Read one response (Content-Length framed) through `rd`; returns the body length. */
typedef int (*read_fn)(void *h, char *b, int n);
static int rd_ssl(void *h, char *b, int n) { return SSL_read(h, b, n); }
static int rd_fd(void *h, char *b, int n) { return (int)read((int)(intptr_t)h, b, (size_t)n); }

static size_t read_response(read_fn rd, void *h)
{
	static char buf[1 << 18];
	size_t len = 0;
	char *end;
	while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
		int n = rd(h, buf + len, (int)(sizeof buf - len - 1));
		if (n <= 0) {
			fprintf(stderr, "response ended early\n");
			exit(1);
		}
		len += (size_t)n;
	}
	buf[len] = 0;
	if (strncmp(buf, "HTTP/1.1 200", 12)) {
		fprintf(stderr, "unexpected: %.200s\n", buf);
		exit(1);
	}
	size_t want = strtoul(strcasestr(buf, "Content-Length:") + 15, NULL, 10);
	size_t have = len - (size_t)(end + 4 - buf);
	while (have < want) {
		int n = rd(h, buf, (int)sizeof buf);
		if (n <= 0) {
			fprintf(stderr, "body ended early\n");
			exit(1);
		}
		have += (size_t)n;
	}
	return want;
}

static SSL *tls_open(uint16_t port, int *fdp)
{
	int fd = tcp_connect(port);
	SSL *s = SSL_new(cli_ctx);
	SSL_set_fd(s, fd);
	SSL_set1_host(s, "127.0.0.1");
	if (SSL_connect(s) != 1) {
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	*fdp = fd;
	return s;
}

static void tls_close(SSL *s, int fd)
{
	SSL_free(s);
	close(fd);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct lat { double p50, p90; };

static struct lat stats(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return (struct lat){v[n / 2], v[n * 9 / 10]};
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2000, mib = argc > 2 ? atoi(argv[2]) : 100;
	int repeats = argc > 3 ? atoi(argv[3]) : 3;
	if (!mkdtemp(dir))
		return 1;
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca "
		 "-keyout ca.key -out ca.pem 2>/dev/null && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-subj /CN=127.0.0.1 -keyout leaf.key -out leaf.csr 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\n' > ext "
		 "&& openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out leaf.pem 2>/dev/null",
		 dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "openssl failed\n");
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	bind(lfd, (struct sockaddr *)&sa, sizeof sa);
	listen(lfd, 1024);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	uint16_t uport = ntohs(sa.sin_port);
	pid_t up = fork();
	if (up == 0)
		upstream_main(lfd);
	close(lfd);

	char ca[128], upstream[64], internal[64];
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(upstream, sizeof upstream, "https://127.0.0.1:%u", uport);
	snprintf(internal, sizeof internal, "127.0.0.1:%u", uport);
	cli_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(cli_ctx, ca, NULL);
	SSL_CTX_set_verify(cli_ctx, SSL_VERIFY_PEER, NULL);

	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_route_spec s;
	nono_route_spec_init(&s);
	s.prefix = "r";
	s.upstream = upstream;
	s.credential_value = "sk-bench-secret";
	s.env_var = "TOK";
	s.tls_ca = ca;
	nono_proxy *p = NULL;
	if (nono_proxy_config_add_route(cfg, &s, &err) < 0 || nono_proxy_config_allow_internal(cfg, internal, &err) < 0 ||
	    nono_proxy_start(cfg, &p, &err) < 0) {
		fprintf(stderr, "proxy: %s\n", err.message);
		return 1;
	}
	char **env = NULL, tok[64] = "";
	nono_proxy_credential_env(p, &env, &err);
	for (char **e = env; *e; e++)
		if (!strncmp(*e, "TOK=", 4))
			snprintf(tok, sizeof tok, "%s", *e + 4);
	nono_strv_free(env);
	uint16_t pport = nono_proxy_port(p);

	double *v = malloc(sizeof(double) * (size_t)rounds);
	char req[512];
	printf("routes bench: %d sequential requests x %d repeats, bulk %d MiB\n", rounds, repeats, mib);
	printf("%-8s %-26s %10s %10s\n", "repeat", "case", "p50 ms", "p90 ms");
	for (int rep = 0; rep < repeats; rep++) {
		struct lat lnew, lka, lr;
		int fd;
		for (int i = 0; i < rounds; i++) { /* direct, new TLS connection per request */
			double t = now_ms();
			SSL *c = tls_open(uport, &fd);
			int n = snprintf(req, sizeof req, "GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
			SSL_write(c, req, n);
			read_response(rd_ssl, c);
			tls_close(c, fd);
			v[i] = now_ms() - t;
		}
		lnew = stats(v, rounds);
		SSL *c = tls_open(uport, &fd);
		double cpu0 = cpu_ms();
		for (int i = 0; i < rounds; i++) { /* direct, kept alive */
			double t = now_ms();
			int n = snprintf(req, sizeof req, "GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
			SSL_write(c, req, n);
			read_response(rd_ssl, c);
			v[i] = now_ms() - t;
		}
		double cpu_ka = (cpu_ms() - cpu0) / rounds;
		tls_close(c, fd);
		lka = stats(v, rounds);
		int pfd = tcp_connect(pport);
		cpu0 = cpu_ms();
		for (int i = 0; i < rounds; i++) { /* routed, kept alive to the proxy */
			double t = now_ms();
			int n = snprintf(req, sizeof req, "GET /r/small HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", tok);
			if (write(pfd, req, (size_t)n) != n)
				return 1;
			read_response(rd_fd, (void *)(intptr_t)pfd);
			v[i] = now_ms() - t;
		}
		double cpu_r = (cpu_ms() - cpu0) / rounds;
		lr = stats(v, rounds);
		printf("%-8d %-26s %10.3f %10.3f\n", rep, "direct TLS, new conn", lnew.p50, lnew.p90);
		printf("%-8d %-26s %10.3f %10.3f\n", rep, "direct TLS, keep-alive", lka.p50, lka.p90);
		printf("%-8d %-26s %10.3f %10.3f\n", rep, "routed, keep-alive", lr.p50, lr.p90);
		printf("%-8d added vs new-conn p50: %.3f ms = %.2fx of direct; vs keep-alive: %.3f ms = %.2fx\n", rep,
		       lr.p50 - lnew.p50, (lr.p50 - lnew.p50) / lnew.p50, lr.p50 - lka.p50, (lr.p50 - lka.p50) / lka.p50);
		printf("%-8d CPU per request (this process): direct keep-alive %.1f us (client), routed %.1f us "
		       "(client + proxy)\n", rep, cpu_ka * 1e3, cpu_r * 1e3);
		/* bulk */
		double t = now_ms();
		c = tls_open(uport, &fd);
		int n = snprintf(req, sizeof req, "GET /bulk/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", mib);
		SSL_write(c, req, n);
		read_response(rd_ssl, c);
		tls_close(c, fd);
		double direct = mib / ((now_ms() - t) / 1e3);
		t = now_ms();
		n = snprintf(req, sizeof req, "GET /r/bulk/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", mib, tok);
		if (write(pfd, req, (size_t)n) != n)
			return 1;
		read_response(rd_fd, (void *)(intptr_t)pfd);
		double routed = mib / ((now_ms() - t) / 1e3);
		close(pfd);
		printf("%-8d bulk %d MiB: direct %.0f MiB/s, routed %.0f MiB/s, ratio %.2fx\n", rep, mib, direct, routed,
		       routed / direct);
		fflush(stdout);
	}
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
	kill(up, SIGKILL);
	waitpid(up, NULL, 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
