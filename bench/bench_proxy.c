/* bench_proxy.c — the filtering proxy against direct connections (and optionally tinyproxy) on
 * loopback, in one run: bulk tunnel throughput, new tunnels per second, added latency of a plain
 * HTTP request on a new connection (p50/p99), and RSS holding N idle tunnels.
 *
 *   bench_proxy [--rounds N] [--idle N] [--bulk-mib N] [--secs S]
 *               [--tinyproxy PORT --tinyproxy-pid PID]
 *
 * Processes: an epoll upstream server (forked), the nono proxy started from the library in its own
 * forked process (so its RSS is its own), and this process as the load generator. Everything
 * shares the machine's CPUs: read the ratios, not the absolute numbers (bench/README.md). */
#include "nono.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* ------------------------------------------------------------------ upstream server (child) */

#define BULK_CHUNK (1 << 20)
static char bulk_buf[BULK_CHUNK];

struct uconn {
	char in[2048];
	size_t inlen;
	char out[256];
	size_t outlen, outoff;
	unsigned long long bulk_left;
	bool out_armed; /* EPOLLOUT is in the epoll set */
};

static void upstream_serve(int lfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	struct uconn **conns = calloc(rl.rlim_cur, sizeof *conns);
	memset(bulk_buf, 'x', sizeof bulk_buf);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				for (;;) {
					int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0)
						break;
					int one = 1;
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					conns[c] = calloc(1, sizeof **conns);
					struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
				}
				continue;
			}
			struct uconn *u = conns[fd];
			bool dead = false;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				ssize_t r = recv(fd, u->in + u->inlen, sizeof u->in - u->inlen, 0);
				if (r == 0 || (r < 0 && errno != EAGAIN))
					dead = true;
				else if (r > 0)
					u->inlen += (size_t)r;
				char *end;
				while (!dead && u->outlen == 0 && u->bulk_left == 0 &&
				       (end = memmem(u->in, u->inlen, "\r\n\r\n", 4))) {
					char *q = strstr(u->in, "/bulk?n=");
					if (q && q < end) {
						u->bulk_left = strtoull(q + 8, NULL, 10);
						u->outlen = (size_t)snprintf(u->out, sizeof u->out,
							"HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", u->bulk_left);
					} else {
						u->outlen = (size_t)snprintf(u->out, sizeof u->out,
							"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
					}
					u->outoff = 0;
					size_t used = (size_t)(end + 4 - u->in);
					memmove(u->in, end + 4, u->inlen - used);
					u->inlen -= used;
				}
				if (u->inlen == sizeof u->in)
					dead = true;
			}
			while (!dead && (u->outoff < u->outlen || u->bulk_left)) {
				ssize_t w;
				if (u->outoff < u->outlen) {
					w = send(fd, u->out + u->outoff, u->outlen - u->outoff, MSG_NOSIGNAL);
					if (w > 0 && (u->outoff += (size_t)w) == u->outlen)
						u->outoff = u->outlen = 0;
				} else {
					size_t k = u->bulk_left < BULK_CHUNK ? u->bulk_left : BULK_CHUNK;
					w = send(fd, bulk_buf, k, MSG_NOSIGNAL);
					if (w > 0)
						u->bulk_left -= (unsigned long long)w;
				}
				if (w < 0) {
					if (errno != EAGAIN)
						dead = true;
					break;
				}
			}
			if (dead) {
				close(fd);
				free(u);
				conns[fd] = NULL;
				continue;
			}
			/* Only when the interest changes: an epoll_ctl per event would make the upstream
			 * (a fixed cost in every tunnel) dearer than it needs to be. */
			bool want_out = u->outlen || u->bulk_left;
			if (want_out != u->out_armed) {
				struct epoll_event e = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.fd = fd};
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
				u->out_armed = want_out;
			}
		}
	}
}

/* ------------------------------------------------------------------ nono proxy (child) */

static void proxy_serve(uint16_t up_port, int out_fd, int ctl_fd)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	char hp[64];
	snprintf(hp, sizeof hp, "127.0.0.1:%u", up_port);
	if (nono_proxy_config_allow_internal(cfg, hp, &err) < 0)
		fprintf(stderr, "allow: %s\n", err.message), exit(1);
	snprintf(hp, sizeof hp, "localhost:%u", up_port); /* the named-target runs */
	if (nono_proxy_config_allow_internal(cfg, hp, &err) < 0)
		fprintf(stderr, "allow: %s\n", err.message), exit(1);
	nono_proxy_limits lim = {.max_connections = 30000, .idle_timeout_ms = 600000,
				 .header_timeout_ms = 60000};
	nono_proxy_config_set_limits(cfg, &lim);
	nono_proxy *p;
	if (nono_proxy_start(cfg, &p, &err) < 0)
		fprintf(stderr, "proxy: %s\n", err.message), exit(1);
	dprintf(out_fd, "%u %s\n", nono_proxy_port(p), nono_proxy_token(p));
	close(out_fd);
	char c;
	while (read(ctl_fd, &c, 1) > 0) /* until the bench exits */
		;
	nono_proxy_stop(p);
	nono_proxy_config_free(cfg);
	exit(0);
}

/* ------------------------------------------------------------------ load generator */

enum kind { DIRECT, TUNNEL, PLAIN };
struct target {
	const char *name;
	enum kind kind;
	uint16_t port; /* proxy port (or upstream port for DIRECT) */
	char auth[192];
	pid_t pid;     /* process whose RSS we report, 0 none */
	const char *host; /* the CONNECT target's host: NULL for 127.0.0.1, else a name to resolve */
};
static uint16_t up_port;
static pid_t up_pid; /* the upstream server process */

static int dial(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read one HTTP response (head + Content-Length body, body discarded). Returns body length or -1. */
static long long read_response(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end && len >= cap - 1)
			return -1;
	}
	char *cl = strcasestr(buf, "Content-Length:");
	long long want = cl && cl < end ? atoll(cl + 15) : 0;
	long long have = (long long)(len - (size_t)(end + 4 - buf));
	while (have < want) {
		ssize_t n = recv(fd, buf, cap, 0);
		if (n <= 0)
			return -1;
		have += n;
	}
	return want;
}

/* A connection ready for an origin-form request (TUNNEL: CONNECT done), or -1. */
static int open_to_upstream(const struct target *t, char *buf, size_t cap)
{
	if (t->kind == DIRECT || t->kind == PLAIN)
		return dial(t->kind == DIRECT ? up_port : t->port);
	int fd = dial(t->port);
	if (fd < 0)
		return -1;
	const char *h = t->host ? t->host : "127.0.0.1";
	int n = snprintf(buf, cap, "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n%s\r\n", h, up_port, h, up_port,
			 t->auth);
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n || read_response(fd, buf, cap) < 0 ||
	    strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 9, "200", 3)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_get(const struct target *t, int fd, const char *path, char *buf, size_t cap)
{
	int n;
	if (t->kind == PLAIN)
		n = snprintf(buf, cap, "GET http://127.0.0.1:%u%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%s\r\n", up_port,
			     path, up_port, t->auth);
	else
		n = snprintf(buf, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", path, up_port);
	return send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static double bench_bulk(const struct target *t, unsigned long long bytes)
{
	static char buf[BULK_CHUNK];
	int fd = open_to_upstream(t, buf, sizeof buf);
	if (fd < 0)
		return 0;
	char path[64];
	snprintf(path, sizeof path, "/bulk?n=%llu", bytes);
	double t0 = now_s();
	if (send_get(t, fd, path, buf, sizeof buf) < 0 || read_response(fd, buf, sizeof buf) != (long long)bytes) {
		close(fd);
		return 0;
	}
	double dt = now_s() - t0;
	close(fd);
	return bytes / dt / 1e6;
}

struct rate_arg {
	const struct target *t;
	double until;
	unsigned long ops, errors;
};

static void *rate_worker(void *arg)
{
	struct rate_arg *a = arg;
	char buf[4096];
	while (now_s() < a->until) {
		int fd = open_to_upstream(a->t, buf, sizeof buf);
		if (fd < 0 || send_get(a->t, fd, "/small", buf, sizeof buf) < 0 ||
		    read_response(fd, buf, sizeof buf) != 2)
			a->errors++;
		else
			a->ops++;
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* CPU seconds (user + system, all threads) a process has used so far; 0 without /proc. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* fields after the command name: state is field 3 */
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* TCP segments sent so far in this network namespace (all processes: load, proxy, upstream), from
 * /proc/net/snmp; 0 without it. Per tunnel it counts the packets a tunnel costs the whole machine. */
static double tcp_out_segs(void)
{
	char line[1024], names[1024] = "";
	FILE *f = fopen("/proc/net/snmp", "r");
	double v = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "Tcp:", 4))
			continue;
		if (!names[0]) {
			snprintf(names, sizeof names, "%s", line);
			continue;
		}
		/* the second "Tcp:" line holds the values, in the order of the first's names */
		char *sn, *sv, *n = strtok_r(names, " \n", &sn), *val = strtok_r(line, " \n", &sv);
		while (n && val && strcmp(n, "OutSegs"))
			n = strtok_r(NULL, " \n", &sn), val = strtok_r(NULL, " \n", &sv);
		if (n && val)
			v = atof(val);
		break;
	}
	if (f)
		fclose(f);
	return v;
}

static double bench_rate(const struct target *t, double secs, unsigned conc, unsigned long *errors,
			 double *cpu_us_per_op, double *segs_per_op, double *rest_us_per_op)
{
	double c0 = cpu_s(t->pid), s0 = tcp_out_segs(), r0 = cpu_s(getpid()) + cpu_s(up_pid);
	pthread_t th[64];
	struct rate_arg args[64];
	double until = now_s() + secs, t0 = now_s();
	for (unsigned i = 0; i < conc; i++) {
		args[i] = (struct rate_arg){.t = t, .until = until};
		pthread_create(&th[i], NULL, rate_worker, &args[i]);
	}
	unsigned long ops = 0;
	for (unsigned i = 0; i < conc; i++) {
		pthread_join(th[i], NULL);
		ops += args[i].ops;
		*errors += args[i].errors;
	}
	*cpu_us_per_op = ops ? (cpu_s(t->pid) - c0) * 1e6 / (double)ops : 0;
	*segs_per_op = ops ? (tcp_out_segs() - s0) / (double)ops : 0;
	*rest_us_per_op = ops ? (cpu_s(getpid()) + cpu_s(up_pid) - r0) * 1e6 / (double)ops : 0;
	return ops / (now_s() - t0);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Plain HTTP request on a new connection each time, sequential: p50/p99 in µs. */
static void bench_latency(const struct target *t, unsigned n, double *p50, double *p99)
{
	double *lat = calloc(n, sizeof *lat);
	char buf[4096];
	unsigned got = 0;
	for (unsigned i = 0; i < n; i++) {
		double t0 = now_s();
		int fd = open_to_upstream(t, buf, sizeof buf);
		if (fd < 0)
			continue;
		if (send_get(t, fd, "/small", buf, sizeof buf) == 0 && read_response(fd, buf, sizeof buf) == 2)
			lat[got++] = (now_s() - t0) * 1e6;
		close(fd);
	}
	qsort(lat, got, sizeof *lat, cmp_d);
	*p50 = got ? lat[got / 2] : 0;
	*p99 = got ? lat[got * 99 / 100] : 0;
	free(lat);
}

/* Plain HTTP requests on one kept-alive client connection, sequential: p50/p99 in µs. A proxy that
 * closes after each answer is reconnected (its client pays that, so it is in the time). */
static void bench_latency_keepalive(const struct target *t, unsigned n, double *p50, double *p99)
{
	double *lat = calloc(n, sizeof *lat);
	char buf[4096];
	unsigned got = 0;
	int fd = -1;
	for (unsigned i = 0; i < n; i++) {
		double t0 = now_s();
		for (int attempt = 0; attempt < 2; attempt++) {
			if (fd < 0 && (fd = open_to_upstream(t, buf, sizeof buf)) < 0)
				break;
			if (send_get(t, fd, "/small", buf, sizeof buf) == 0 && read_response(fd, buf, sizeof buf) == 2) {
				lat[got++] = (now_s() - t0) * 1e6;
				break;
			}
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	qsort(lat, got, sizeof *lat, cmp_d);
	*p50 = got ? lat[got / 2] : 0;
	*p99 = got ? lat[got * 99 / 100] : 0;
	free(lat);
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static void bench_idle(const struct target *t, unsigned count)
{
	int *fds = malloc(count * sizeof *fds);
	char buf[4096];
	long before = rss_kib(t->pid);
	unsigned open_n = 0;
	double t0 = now_s();
	for (unsigned i = 0; i < count; i++) {
		int fd = open_to_upstream(t, buf, sizeof buf);
		if (fd < 0)
			break;
		fds[open_n++] = fd;
	}
	double dt = now_s() - t0;
	usleep(200000);
	long after = rss_kib(t->pid);
	printf("  %-10s idle tunnels held: %u of %u (opened in %.1f s); RSS %.1f MiB (before %.1f MiB, "
	       "%.2f KiB/tunnel)\n", t->name, open_n, count, dt, after / 1024.0, before / 1024.0,
	       open_n ? (after - before) / (double)open_n : 0.0);
	for (unsigned i = 0; i < open_n; i++)
		close(fds[i]);
	free(fds);
	usleep(500000);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int rounds = 5;
	unsigned idle = 9900, conc = 8;
	unsigned long long bulk = 1024ull << 20;
	double secs = 2;
	uint16_t tiny_port = 0;
	pid_t tiny_pid = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--idle"))
			idle = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--bulk-mib"))
			bulk = strtoull(argv[i + 1], NULL, 10) << 20;
		else if (!strcmp(argv[i], "--secs"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--tinyproxy"))
			tiny_port = (uint16_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--tinyproxy-pid"))
			tiny_pid = atoi(argv[i + 1]);
	}
	if (rounds < 1 || rounds > 50)
		rounds = 5;
	signal(SIGPIPE, SIG_IGN);
	/* Two fds per tunnel: raise the soft fd limit to the hard one (no CAP_SYS_RESOURCE here). */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0)
		die("upstream listen");
	getsockname(lfd, (struct sockaddr *)&a, &al);
	up_port = ntohs(a.sin_port);
	up_pid = fork();
	if (up_pid == 0)
		upstream_serve(lfd);
	close(lfd);

	int outp[2], ctl[2];
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0)
		die("pipe");
	pid_t px_pid = fork();
	if (px_pid == 0) {
		close(outp[0]);
		close(ctl[1]);
		proxy_serve(up_port, outp[1], ctl[0]);
	}
	close(outp[1]);
	close(ctl[0]);
	char line[128] = "";
	ssize_t ln = read(outp[0], line, sizeof line - 1);
	if (ln <= 0)
		die("proxy start");
	line[ln] = '\0';
	unsigned pport;
	char token[64];
	if (sscanf(line, "%u %63s", &pport, token) != 2)
		die("proxy start output");

	struct target nono_t = {.name = "nono", .kind = TUNNEL, .port = (uint16_t)pport, .pid = px_pid};
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char plain[80], enc[128];
	int pl = snprintf(plain, sizeof plain, "nono:%s", token), o = 0;
	for (int i = 0; i < pl; i += 3) {
		unsigned v = (unsigned char)plain[i] << 16 | (i + 1 < pl ? (unsigned char)plain[i + 1] << 8 : 0) |
			     (i + 2 < pl ? (unsigned char)plain[i + 2] : 0);
		enc[o++] = b64[v >> 18 & 63];
		enc[o++] = b64[v >> 12 & 63];
		enc[o++] = i + 1 < pl ? b64[v >> 6 & 63] : '=';
		enc[o++] = i + 2 < pl ? b64[v & 63] : '=';
	}
	enc[o] = '\0';
	snprintf(nono_t.auth, sizeof nono_t.auth, "Proxy-Authorization: Basic %s\r\n", enc);
	struct target direct = {.name = "direct", .kind = DIRECT};
	struct target tiny_t = {.name = "tinyproxy", .kind = TUNNEL, .port = tiny_port, .pid = tiny_pid};
	struct target *ts[3] = {&direct, &nono_t, tiny_port ? &tiny_t : NULL};
	int nt = tiny_port ? 3 : 2;

	printf("bench_proxy: loopback, %d rounds (medians), %d CPUs shared by load, proxy and upstream\n",
	       rounds, (int)sysconf(_SC_NPROCESSORS_ONLN));

	double mb[3][50], rate[3][50], cpu[3][50], segs[3][50], rest[3][50], p50[3][50], p99[3][50], k50[3][50], k99[3][50];
	double vs_tiny[50], vs_direct[50], named[3][50], ncpu[3][50], nsegs[3][50], nrest[3][50], named_vs_tiny[50];
	unsigned long errors[3] = {0};
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < nt; k++)
			mb[k][r] = bench_bulk(ts[k], bulk);
		for (int k = 0; k < nt; k++)
			rate[k][r] = bench_rate(ts[k], secs, conc, &errors[k], &cpu[k][r], &segs[k][r], &rest[k][r]);
		vs_direct[r] = rate[1][r] / rate[0][r];
		vs_tiny[r] = nt > 2 ? rate[1][r] / rate[2][r] : 0;
		for (int k = 1; k < nt; k++) { /* the same tunnels to a name (/etc/hosts), resolved by the proxy */
			struct target nt_ = *ts[k];
			nt_.host = "localhost";
			named[k][r] = bench_rate(&nt_, secs, conc, &errors[k], &ncpu[k][r], &nsegs[k][r], &nrest[k][r]);
		}
		named_vs_tiny[r] = nt > 2 ? named[1][r] / named[2][r] : 0;
		for (int k = 0; k < nt; k++) {
			struct target lt = *ts[k];
			if (lt.kind == TUNNEL)
				lt.kind = PLAIN; /* latency: absolute-form HTTP */
			bench_latency(&lt, 2000, &p50[k][r], &p99[k][r]);
			bench_latency_keepalive(&lt, 2000, &k50[k][r], &k99[k][r]);
		}
	}
	double dmb = median(mb[0], rounds), drate = median(rate[0], rounds);
	printf("\n%-10s %10s %6s %11s %6s %8s %8s %8s | %-17s | %-17s\n", "", "bulk MB/s", "ratio", "new tun/s",
	       "ratio", "CPU/tun", "load+up", "segs/tun", "new conn p50/p99", "keep-alive p50/p99");
	for (int k = 0; k < nt; k++) {
		double m = median(mb[k], rounds), rt = median(rate[k], rounds);
		char c[32] = "-";
		if (ts[k]->pid)
			snprintf(c, sizeof c, "%.0f us", median(cpu[k], rounds));
		printf("%-10s %10.0f %6.2f %11.0f %6.2f %8s %5.0f us %8.1f | %7.0f %7.0f us | %7.0f %7.0f us%s\n", ts[k]->name, m,
		       m / dmb, rt, rt / drate, c, median(rest[k], rounds), median(segs[k], rounds), median(p50[k], rounds), median(p99[k], rounds),
		       median(k50[k], rounds), median(k99[k], rounds), errors[k] ? "  (errors!)" : "");
	}
	printf("(bulk: one tunnel, %llu MiB a round; new tun/s: %u clients, connect+CONNECT+GET+close through "
	       "the proxies, connect+GET+close direct; CPU/tun: the proxy process's CPU time per tunnel; "
	       "load+up: the CPU time of the load generator and the upstream server per tunnel (the same "
	       "work whichever proxy is in the middle); segs/tun: TCP segments sent per tunnel by everyone in the network namespace; "
	       "latency: absolute-form GET through the proxies, origin-form direct, 2,000 sequential, on a "
	       "new connection each / on one kept-alive connection)\n", bulk >> 20, conc);
	for (int k = 1; k < nt; k++)
		printf("%-10s %11.0f tunnels/s to localhost:PORT (a name), CPU/tun %.0f us\n", ts[k]->name,
		       median(named[k], rounds), median(ncpu[k], rounds));
	if (nt > 2)
		printf("new CONNECT tunnels/s to a name, nono vs tinyproxy: %.2fx\n", median(named_vs_tiny, rounds));
	printf("new CONNECT tunnels/s, nono vs direct: %.2fx", median(vs_direct, rounds));
	if (nt > 2)
		printf("; nono vs tinyproxy: %.2fx (medians of the per-round ratios)", median(vs_tiny, rounds));
	printf("\n\n");
	if (idle) {
		printf("memory with idle tunnels (proxy process RSS):\n");
		for (int k = 1; k < nt; k++)
			bench_idle(ts[k], idle);
	}
	close(ctl[1]);
	waitpid(px_pid, NULL, 0);
	kill(up_pid, SIGKILL);
	waitpid(up_pid, NULL, 0);
	return 0;
}
