/* bench_intercept.c — an intercepted CONNECT's first request vs direct TLS, all in C (issue 14:
 * intercepted ≤ 2 ms over direct, with cached leaf certificates). Loopback only.
 *
 *   ninja -C build bench/bench_intercept && build/bench/bench_intercept [ROUNDS=300] [REPEATS=3]
 *
 * A test CA and a 127.0.0.1 server certificate are made with the openssl command in a temporary
 * directory; a one-thread TLS upstream (OpenSSL, blocking) answers each connection's request with
 * "ok". The proxy runs in-process (the library) with interception for 127.0.0.1 (the built-in
 * pass-through) and the test CA as its trust store (SSL_CERT_FILE). Each round, interleaved and
 * alternating which goes first:
 *   direct       connect + TLS handshake (verify against the test CA) + GET + response to EOF;
 *   intercepted  connect to the proxy + CONNECT/200 + TLS handshake (verify against the session
 *                CA) + GET + response to EOF.
 * Neither client resumes sessions; the proxy resumes its upstream session (its own cache). One
 * warm-up request mints the leaf. Prints per repeat the medians and p90s, the ratio and the added
 * time at the median, then the median over repeats. */
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/nono-bench-intercept-XXXXXX";
static SSL_CTX *srv_ctx;
static int srv_fd;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int run(const char *cmd)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "cd %s && %s >/dev/null 2>&1", dir, cmd);
	return system(buf);
}

static void *upstream(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(srv_fd, NULL, NULL);
		if (c < 0)
			continue;
		int one = 1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		SSL *s = SSL_new(srv_ctx);
		SSL_set_fd(s, c);
		char buf[4096];
		size_t got = 0;
		if (SSL_accept(s) == 1) {
			int n;
			while (got < sizeof buf - 1 && (n = SSL_read(s, buf + got, (int)(sizeof buf - 1 - got))) > 0) {
				got += (size_t)n;
				buf[got] = '\0';
				if (strstr(buf, "\r\n\r\n"))
					break;
			}
			static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
			SSL_write(s, resp, sizeof resp - 1);
			SSL_shutdown(s);
		}
		SSL_free(s);
		close(c);
		ERR_clear_error();
	}
	return NULL;
}

static int tcp(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* TLS on fd, GET, read to EOF; exits on any failure (a benchmark of a broken path means nothing). */
static void tls_get(int fd, SSL_CTX *ctx)
{
	SSL *s = SSL_new(ctx);
	SSL_set_fd(s, fd);
	SSL_set1_host(s, NULL);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), "127.0.0.1");
	static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	int n;
	if (SSL_connect(s) != 1 || SSL_write(s, req, sizeof req - 1) <= 0) {
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	while ((n = SSL_read(s, buf + got, (int)(sizeof buf - 1 - got))) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (!strstr(buf, "\r\n\r\nok")) {
		fprintf(stderr, "bad response: %s\n", buf);
		exit(1);
	}
	SSL_free(s);
	close(fd);
	ERR_clear_error();
}

static double direct(uint16_t port, SSL_CTX *ctx)
{
	double t0 = now_ms();
	tls_get(tcp(port), ctx);
	return now_ms() - t0;
}

static double intercepted(uint16_t pport, const char *token, uint16_t port, SSL_CTX *ctx)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char plain[64], enc[128], head[512], buf[256];
	size_t pl = (size_t)snprintf(plain, sizeof plain, "nono:%s", token), o = 0;
	for (size_t i = 0; i < pl; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)plain[i] << 16 |
			     (i + 1 < pl ? (uint32_t)(unsigned char)plain[i + 1] << 8 : 0) |
			     (i + 2 < pl ? (unsigned char)plain[i + 2] : 0);
		enc[o++] = b64[v >> 18 & 63];
		enc[o++] = b64[v >> 12 & 63];
		enc[o++] = i + 1 < pl ? b64[v >> 6 & 63] : '=';
		enc[o++] = i + 2 < pl ? b64[v & 63] : '=';
	}
	enc[o] = '\0';
	int hl = snprintf(head, sizeof head,
			  "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nProxy-Authorization: Basic %s\r\n\r\n",
			  port, port, enc);
	double t0 = now_ms();
	int fd = tcp(pport);
	ssize_t n = write(fd, head, (size_t)hl);
	size_t got = 0;
	while (n > 0 && got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "CONNECT refused: %s\n", buf);
		exit(1);
	}
	tls_get(fd, ctx);
	return now_ms() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return v[(int)(n * p)];
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300, repeats = argc > 2 ? atoi(argv[2]) : 3;
	char path[256], cadir[256];
	if (!mkdtemp(dir) ||
	    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
		"-out ca.pem -days 2 -subj /CN=bench-CA") ||
	    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr "
		"-subj /CN=127.0.0.1") ||
	    run("printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && openssl x509 -req -in srv.csr -CA ca.pem "
		"-CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf")) {
		fprintf(stderr, "making the test PKI failed (openssl command)\n");
		return 1;
	}
	snprintf(path, sizeof path, "%s/ca.pem", dir);
	setenv("SSL_CERT_FILE", path, 1); /* the proxy's trust store for the upstream */
	srv_ctx = SSL_CTX_new(TLS_server_method());
	snprintf(path, sizeof path, "%s/srv.pem", dir);
	SSL_CTX_use_certificate_file(srv_ctx, path, SSL_FILETYPE_PEM);
	snprintf(path, sizeof path, "%s/srv.key", dir);
	SSL_CTX_use_PrivateKey_file(srv_ctx, path, SSL_FILETYPE_PEM);
	srv_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	bind(srv_fd, (struct sockaddr *)&a, sizeof a);
	listen(srv_fd, 128);
	getsockname(srv_fd, (struct sockaddr *)&a, &al);
	uint16_t port = ntohs(a.sin_port);
	pthread_t th;
	pthread_create(&th, NULL, upstream, NULL);

	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	char hp[64];
	snprintf(hp, sizeof hp, "127.0.0.1:%u", port);
	snprintf(cadir, sizeof cadir, "%s/ca", dir);
	mkdir(cadir, 0700);
	nono_proxy *p = NULL;
	if (nono_proxy_config_allow_internal(cfg, hp, &err) < 0 ||
	    nono_proxy_config_set_intercept_ca_dir(cfg, cadir, &err) < 0 ||
	    np_intercept_add_host(cfg, "127.0.0.1", &err) < 0 || nono_proxy_start(cfg, &p, &err) < 0) {
		fprintf(stderr, "proxy: %s\n", err.message);
		return 1;
	}
	SSL_CTX *dctx = SSL_CTX_new(TLS_client_method()), *ictx = SSL_CTX_new(TLS_client_method());
	snprintf(path, sizeof path, "%s/ca.pem", dir);
	SSL_CTX_load_verify_locations(dctx, path, NULL);
	SSL_CTX_load_verify_locations(ictx, nono_proxy_ca_cert(p), NULL);
	SSL_CTX_set_verify(dctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify(ictx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(dctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_cache_mode(ictx, SSL_SESS_CACHE_OFF);
	uint16_t pport = nono_proxy_port(p);
	const char *token = nono_proxy_token(p);
	intercepted(pport, token, port, ictx); /* mints and caches the leaf */
	direct(port, dctx);
	double *da = calloc((size_t)rounds, sizeof *da), *ib = calloc((size_t)rounds, sizeof *ib);
	double added[64];
	for (int r = 0; r < repeats && r < 64; r++) {
		for (int i = 0; i < rounds; i++) {
			if (i % 2) {
				da[i] = direct(port, dctx);
				ib[i] = intercepted(pport, token, port, ictx);
			} else {
				ib[i] = intercepted(pport, token, port, ictx);
				da[i] = direct(port, dctx);
			}
		}
		double d50 = pct(da, rounds, 0.5), d90 = pct(da, rounds, 0.9);
		double i50 = pct(ib, rounds, 0.5), i90 = pct(ib, rounds, 0.9);
		added[r] = i50 - d50;
		printf("repeat %d: direct p50 %.3f ms p90 %.3f | intercepted p50 %.3f ms p90 %.3f | ratio %.2fx | "
		       "added p50 %.3f ms\n", r + 1, d50, d90, i50, i90, i50 / d50, i50 - d50);
	}
	printf("median added over %d repeats: %.3f ms (target: <= 2 ms)\n", repeats,
	       pct(added, repeats < 64 ? repeats : 64, 0.5));
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
	char rm[300];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	return system(rm) == 0 ? 0 : 1;
}
