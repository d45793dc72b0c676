/* bench_exec — wall time of nono_exec("/bin/true") under a small policy vs plain fork+execve+wait
 * of /bin/true, measured in the same process, interleaved (one of each per round) so machine noise
 * hits both alike. Prints median and p90 for each, the ratio and the absolute added time.
 *
 *   bench_exec [ROUNDS=200] [REPEATS=3]
 *
 * Policies measured against the same baseline:
 *   fs        read /usr /bin /lib /lib64 /etc, rw /dev/null; network allowed (Landlock + the
 *             always-on seccomp filter)
 *   net-block the same plus --net-block (seccomp filter with the user-notification supervisor)
 * Target (issue 2): fs adds < 1 ms at the median. Not a test: numbers are noisy on a shared box.
 * The `reaper` column is nested_once - plain_once at the median: the cost of the reaper's extra
 * process layer, and `share` that as a fraction of nono's added time. */
#include "nono.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof *v, cmp_double);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static char *const true_argv[] = {"/bin/true", NULL};
static char *const empty_env[] = {NULL};

static double plain_once(void)
{
	double t0 = now_us();
	pid_t pid = fork();
	if (pid == 0) {
		execve("/bin/true", true_argv, empty_env);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_exec: plain fork/exec failed\n");
		exit(1);
	}
	return now_us() - t0;
}

/* The reaper's shape without its work: fork a middle process that forks+execs /bin/true, waits
 * for it and exits; wait for the middle one. Minus plain_once, it estimates what the reaper's
 * extra process layer costs (fork, exit, wait), the share of nono_exec that the lifetime
 * guarantees (exec.c) take. */
static double nested_once(void)
{
	double t0 = now_us();
	pid_t mid = fork();
	if (mid == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			execve("/bin/true", true_argv, empty_env);
			_exit(127);
		}
		int st;
		_exit(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	int st;
	if (mid < 0 || waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_exec: nested fork/exec failed\n");
		exit(1);
	}
	return now_us() - t0;
}

/* < 0 when nono_exec fails (message printed once). */
static double nono_once(const nono_caps *caps)
{
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	nono_exec_result r;
	nono_error e = {0};
	double t0 = now_us();
	int rc = nono_exec(caps, (const char *const *)true_argv, &o, &r, &e);
	double t = now_us() - t0;
	if (rc < 0 || r.exit_code != 0) {
		fprintf(stderr, "bench_exec: nono_exec: rc=%d exit=%d %s\n", rc, r.exit_code, e.message);
		return -1;
	}
	nono_exec_result_free(&r);
	return t;
}

static nono_caps *make_caps(bool block)
{
	nono_caps *c = nono_caps_new();
	const char *dirs[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (access(dirs[i], F_OK) == 0 && nono_caps_allow_path(c, dirs[i], NONO_ACCESS_READ, NULL) < 0)
			return NULL;
	if (nono_caps_allow_file(c, "/dev/null", NONO_ACCESS_READ_WRITE, NULL) < 0)
		return NULL;
	if (block && nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL) < 0)
		return NULL;
	return c;
}

int main(int argc, char **argv)
{
	size_t rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
	int repeats = argc > 2 ? atoi(argv[2]) : 3;
	if (rounds < 10 || repeats < 1) {
		fprintf(stderr, "usage: bench_exec [ROUNDS>=10] [REPEATS>=1]\n");
		return 2;
	}
	const char *names[] = {"fs", "net-block"};
	printf("bench_exec: /bin/true, %zu rounds interleaved, %d repeats (medians in ms)\n", rounds,
	       repeats);
	printf("%-10s %6s %10s %10s %10s %10s %8s %10s %8s %6s\n", "policy", "repeat", "plain p50",
	       "plain p90", "nono p50", "nono p90", "ratio", "added p50", "reaper", "share");
	for (int p = 0; p < 2; p++) {
		nono_caps *caps = make_caps(p == 1);
		if (!caps) {
			fprintf(stderr, "bench_exec: cannot build the policy\n");
			return 1;
		}
		double *plain = calloc(rounds, sizeof *plain), *nono = calloc(rounds, sizeof *nono);
		double *nested = calloc(rounds, sizeof *nested);
		double *added = calloc((size_t)repeats, sizeof *added);
		double *ratio = calloc((size_t)repeats, sizeof *ratio);
		bool failed = false;
		for (int rep = 0; rep < repeats && !failed; rep++) {
			for (size_t i = 0; i < 5 && !failed; i++) /* warm up both paths */
				failed = plain_once() < 0 || nono_once(caps) < 0;
			for (size_t i = 0; i < rounds && !failed; i++) {
				/* Alternate which goes first so neither always follows the other. */
				if (i & 1) {
					plain[i] = plain_once();
					nested[i] = nested_once();
					nono[i] = nono_once(caps);
				} else {
					nono[i] = nono_once(caps);
					nested[i] = nested_once();
					plain[i] = plain_once();
				}
				failed = nono[i] < 0;
			}
			if (failed)
				break;
			double p50 = pct(plain, rounds, 0.5), p90 = pct(plain, rounds, 0.9);
			double n50 = pct(nono, rounds, 0.5), n90 = pct(nono, rounds, 0.9);
			double r50 = pct(nested, rounds, 0.5) - p50;
			added[rep] = (n50 - p50) / 1000;
			ratio[rep] = n50 / p50;
			printf("%-10s %6d %10.3f %10.3f %10.3f %10.3f %7.2fx %10.3f %8.3f %5.0f%%\n",
			       names[p], rep + 1, p50 / 1000, p90 / 1000, n50 / 1000, n90 / 1000, n50 / p50,
			       (n50 - p50) / 1000, r50 / 1000, n50 > p50 ? 100 * r50 / (n50 - p50) : 0);
		}
		if (failed) {
			printf("%-10s n/a (nono_exec failed, see stderr)\n", names[p]);
		} else {
			printf("%-10s median of repeats: ratio %.2fx, added %.3f ms (target < 1 ms)\n",
			       names[p], pct(ratio, (size_t)repeats, 0.5), pct(added, (size_t)repeats, 0.5));
		}
		free(plain);
		free(nested);
		free(nono);
		free(added);
		free(ratio);
		nono_caps_free(caps);
	}
	return 0;
}
