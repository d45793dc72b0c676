/* bench_connect.c — per-connect latency: plain connect() vs connect() under nono's seccomp
 * supervisor (proxy-only: the supervisor copies the sockaddr, takes the socket with pidfd_getfd,
 * connects it itself and answers), measured in the same run against the same loopback listener.
 *
 *   bench_connect [N=20000] [ROUNDS=5]      (pin it, e.g. `taskset -c 1`, for steadier numbers)
 *
 * Each round runs N connects in a plain child (fork+exec of this binary) and N in a child started
 * with nono_exec under proxy-only(PORT). The child times connect() alone (socket creation and the
 * RST close are outside the timed region) and prints its sorted sample's median and p99. We print
 * every round and the median over rounds, and the ratio supervised/plain (target: <= 1.7 at the
 * median). The 2 CPUs are shared: compare ratios, not absolute numbers.
 */
#include "nono.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Child mode: N timed connects; prints "median_ns p99_ns failures". nb: nonblocking sockets,
 * timed from connect() to POLLOUT (what event-loop runtimes — Go, Node, Python with timeouts —
 * do); else a blocking connect() (the supervisor's slower path: it bounds the attempt with a
 * send timeout it sets and restores around the call). */
static int child(int port, long n, bool nb)
{
	uint64_t *t = calloc((size_t)n, sizeof *t);
	if (!t)
		return 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	long fails = 0, k = 0;
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
		if (s < 0) {
			fails++;
			continue;
		}
		uint64_t t0 = now_ns();
		int r = connect(s, (struct sockaddr *)&a, sizeof a);
		if (nb && r < 0 && errno == EINPROGRESS) {
			struct pollfd p = {s, POLLOUT, 0};
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			r = poll(&p, 1, 5000) == 1 &&
					    getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr
				    ? 0
				    : -1;
		}
		uint64_t t1 = now_ns();
		if (r == 0)
			t[k++] = t1 - t0;
		else
			fails++;
		struct linger lg = {1, 0};
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(s);
	}
	if (k == 0) {
		printf("0 0 %ld\n", fails);
		return 1;
	}
	qsort(t, (size_t)k, sizeof *t, cmp_u64);
	printf("%llu %llu %ld\n", (unsigned long long)t[k / 2],
	       (unsigned long long)t[(size_t)((double)k * 0.99)], fails);
	free(t);
	return 0;
}

static int lsock;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(lsock, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		close(c);
	}
}

static int parse(const char *out, double *med, double *p99, long *fails)
{
	unsigned long long m, p;
	if (!out || sscanf(out, "%llu %llu %ld", &m, &p, fails) != 3)
		return -1;
	*med = (double)m / 1000.0;
	*p99 = (double)p / 1000.0;
	return 0;
}

static const char *child_mode = "block";

static int run_plain(const char *self, int port, long n, double *med, double *p99, long *fails)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		char ps[16], ns[24];
		snprintf(ps, sizeof ps, "%d", port);
		snprintf(ns, sizeof ns, "%ld", n);
		execl(self, self, "--child", ps, ns, child_mode, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[128] = "";
	ssize_t got = read(pfd[0], buf, sizeof buf - 1);
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	if (got > 0)
		buf[got] = '\0';
	return parse(buf, med, p99, fails);
}

static int run_supervised(const char *self, int port, long n, double *med, double *p99,
			  long *fails)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	const char *ro[] = {"/usr", "/lib", "/lib64", "/etc", NULL};
	for (int i = 0; ro[i]; i++)
		if (access(ro[i], F_OK) == 0)
			nono_caps_allow_path(c, ro[i], NONO_ACCESS_READ, &e);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", self);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	/* the binary's directory and the library's (build tree) */
	nono_caps_allow_path(c, dir, NONO_ACCESS_READ, &e);
	char libdir[4200];
	snprintf(libdir, sizeof libdir, "%s/../src/lib", dir);
	if (access(libdir, F_OK) == 0)
		nono_caps_allow_path(c, libdir, NONO_ACCESS_READ, &e);
	if (nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)port, &e) < 0)
		return -1;
	char ps[16], ns[24];
	snprintf(ps, sizeof ps, "%d", port);
	snprintf(ns, sizeof ns, "%ld", n);
	const char *argv[] = {self, "--child", ps, ns, child_mode, NULL};
	const char *ld = getenv("LD_LIBRARY_PATH");
	(void)ld; /* loader variables are refused by design: the binary finds libnono by rpath */
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	o.capture = true;
	nono_exec_result r;
	memset(&r, 0, sizeof r);
	int rc = nono_exec(c, argv, &o, &r, &e);
	nono_caps_free(c);
	if (rc < 0) {
		fprintf(stderr, "nono_exec: %s\n", e.message);
		return -1;
	}
	if (!r.report.supervisor)
		fprintf(stderr, "warning: the supervisor was not used\n");
	char buf[128] = "";
	if (r.out && r.out_len) {
		size_t l = r.out_len < sizeof buf - 1 ? r.out_len : sizeof buf - 1;
		memcpy(buf, r.out, l);
		buf[l] = '\0';
	}
	if (r.exit_code != 0 && r.err && r.err_len)
		fprintf(stderr, "child: %.*s\n", (int)r.err_len, (const char *)r.err);
	nono_exec_result_free(&r);
	return parse(buf, med, p99, fails);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "--child") == 0)
		return child(atoi(argv[2]), atol(argv[3]), strcmp(argv[4], "nb") == 0);
	long n = argc > 1 ? atol(argv[1]) : 20000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	if (n < 100 || rounds < 1 || rounds > 50)
		return 2;
	char self[4096];
	ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
	if (l <= 0)
		return 1;
	self[l] = '\0';

	lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lsock, (struct sockaddr *)&a, sizeof a) < 0 || listen(lsock, 4096) < 0)
		return 1;
	socklen_t al = sizeof a;
	getsockname(lsock, (struct sockaddr *)&a, &al);
	int port = ntohs(a.sin_port);
	pthread_t t;
	pthread_create(&t, NULL, acceptor, NULL);

	for (int mode = 0; mode < 2; mode++) {
		child_mode = mode == 0 ? "block" : "nb";
		double pm[50], pp[50], sm[50], sp[50], ratio[50];
		printf("bench_connect (%s sockets): %ld loopback connects per run, %d rounds "
		       "(median / p99, microseconds)\n",
		       mode == 0 ? "blocking" : "nonblocking, connect to POLLOUT", n, rounds);
		for (int i = 0; i < rounds; i++) {
			long f1 = 0, f2 = 0;
			if (run_plain(self, port, n, &pm[i], &pp[i], &f1) < 0 ||
			    run_supervised(self, port, n, &sm[i], &sp[i], &f2) < 0) {
				fprintf(stderr, "round %d failed\n", i);
				return 1;
			}
			ratio[i] = sm[i] / pm[i];
			printf("round %d: plain %.1f / %.1f   supervised %.1f / %.1f   ratio %.2f%s\n",
			       i + 1, pm[i], pp[i], sm[i], sp[i], ratio[i],
			       f1 || f2 ? "  (failures!)" : "");
		}
		double mpm = median(pm, rounds), mpp = median(pp, rounds), msm = median(sm, rounds),
		       msp = median(sp, rounds), mr = median(ratio, rounds);
		printf("median of rounds: plain %.1f us (p99 %.1f)  supervised %.1f us (p99 %.1f)\n",
		       mpm, mpp, msm, msp);
		printf("ratio supervised/plain at the median: %.2fx (target <= 1.70x) %s\n\n", mr,
		       mr <= 1.7 ? "OK" : "ABOVE TARGET");
	}
	return 0;
}
