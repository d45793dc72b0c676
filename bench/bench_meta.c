/* bench_meta.c — the latency of one metadata call, as the calling program sees it. bench/meta.py
 * runs it plain and under `nono run` (where the supervisor resolves, checks and performs each call)
 * in the same run and prints the ratio.
 *   bench_meta DIR [N=20000]
 * creates DIR/bench-meta-file and prints, for each call, the median and p90 in nanoseconds over N
 * calls:  <call> median_ns=M p90_ns=P */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	long n = argc > 2 ? atol(argv[2]) : 20000;
	char path[4096];
	snprintf(path, sizeof path, "%s/bench-meta-file", argv[1]);
	int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	uint64_t *t = calloc((size_t)n, sizeof *t);
	const char *names[] = {"getppid (floor)", "chmod", "fchmod", "utimensat", "futimens", "fchown",
			       "setxattr"};
	for (size_t op = 0; op < sizeof names / sizeof *names; op++) {
		int bad = 0;
		for (long i = 0; i < n; i++) {
			uint64_t t0 = now_ns();
			int r = 0;
			switch (op) {
			case 0: r = getppid() < 0; break;
			case 1: r = chmod(path, i % 2 ? 0600 : 0644); break;
			case 2: r = fchmod(fd, i % 2 ? 0600 : 0644); break;
			case 3: r = utimensat(AT_FDCWD, path, NULL, 0); break;
			case 4: r = futimens(fd, NULL); break;
			case 5: r = fchown(fd, (uid_t)-1, (gid_t)-1); break;
			default: r = setxattr(path, "user.bench", "1", 1, 0); break;
			}
			t[i] = now_ns() - t0;
			bad += r != 0;
		}
		qsort(t, (size_t)n, sizeof *t, cmp);
		printf("%s median_ns=%llu p90_ns=%llu failed=%d\n", names[op],
		       (unsigned long long)t[n / 2], (unsigned long long)t[n * 9 / 10], bad);
	}
	unlink(path);
	return 0;
}
