/* bench_meta.c — the latency of one metadata call, as the calling program sees it. bench/meta.py
 * runs it plain and under `nono run` (where the supervisor resolves, checks and performs each call)
 * in the same run and prints the ratio.
 *   bench_meta DIR [N=20000]
 * creates DIR/bench-meta-file and prints, for each call, the median and p90 in nanoseconds over N
 * calls:  <call> median_ns=M p90_ns=P
 * The last rows are the floor of any supervised call on this kernel: a syscall trapped by a filter
 * of our own (SECCOMP_RET_USER_NOTIF) and answered at once, with no work, by a thread of ours with
 * SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP set (6.6) — once with the bare RECV + SEND, once with the shape
 * of nono's loop around it (poll for the stop fd, RECV, ID_VALID, SEND). Under `nono run` a second
 * listener cannot be had (EBUSY: one per filter stack), so these rows are printed only plain. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64) /* 6.6 */
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#if defined(__x86_64__)
#define BENCH_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define BENCH_ARCH AUDIT_ARCH_AARCH64
#endif

/* ---- the floor: a trapped call answered at once ---- */

static int listener = -1;
/* 0: RECV + SEND; 1: poll + RECV + ID_VALID + SEND; 2: the syscalls nono's supervisor makes for
 * an fchmod, with none of its logic: poll, RECV, pidfd_getfd, readlinkat of the copy, ID_VALID,
 * fstat, fchmod, close, SEND (getpgid's argument is the fd). */
static atomic_int loop_shape;
static int stop_fd[2] = {-1, -1};
static int self_pidfd = -1, fd_dir = -1;

static int fchmod_steps(const struct seccomp_notif *req)
{
	int fd = (int)syscall(__NR_pidfd_getfd, self_pidfd, (int)req->data.args[0], 0);
	char canon[4096], name[16];
	snprintf(name, sizeof name, "%d", fd);
	struct stat st;
	int r = fd < 0 || readlinkat(fd_dir, name, canon, sizeof canon) < 0 ||
		ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0 || fstat(fd, &st) < 0 ||
		fchmod(fd, st.st_mode & 0100 ? 0644 : 0744) < 0;
	if (fd >= 0)
		close(fd);
	return r ? -1 : 0;
}

static void *answer_at_once(void *arg)
{
	(void)arg;
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (;;) {
		if (atomic_load(&loop_shape)) {
			struct pollfd p[2] = {{listener, POLLIN, 0}, {stop_fd[0], POLLIN, 0}};
			if (poll(p, 2, -1) < 0 || p[1].revents)
				return NULL;
		}
		memset(&req, 0, sizeof req);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			return NULL;
		if (atomic_load(&loop_shape) == 1)
			(void)ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id);
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		if (atomic_load(&loop_shape) == 2 && fchmod_steps(&req) < 0)
			resp.error = -EIO;
		(void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}

/* Trap getpgid (which nothing else here calls), for answer_at_once to answer (that thread inherits
 * the filter but never calls getpgid). 0, or -1 where no listener can be had. */
static int floor_setup(void)
{
#ifdef BENCH_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BENCH_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getpgid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof *f, f};
	if (pipe(stop_fd) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	listener = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
				SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		return -1; /* EBUSY under nono run */
	(void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	self_pidfd = (int)syscall(__NR_pidfd_open, getpid(), 0);
	fd_dir = open("/proc/thread-self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return 0;
#else
	return -1;
#endif
}

/* One of the supervisor's steps alone, on this thread (no notification around it). */
static int step(size_t op, int fd)
{
	char buf[4096], name[16];
	struct stat st;
	uint64_t stale = 0;
	switch (op) {
	case 10: {
		int c = (int)syscall(__NR_pidfd_getfd, self_pidfd, fd, 0);
		return c < 0 ? -1 : close(c);
	}
	case 11:
		snprintf(name, sizeof name, "%d", fd);
		return readlinkat(fd_dir, name, buf, sizeof buf) < 0;
	case 12:
		return fstat(fd, &st);
	default: /* no such id: the same lock and list walk as a valid one */
		return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &stale) == 0;
	}
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
			       "setxattr", "notify floor", "notify+loop floor", "notify+fchmod steps",
			       "step pidfd_getfd+close", "step readlinkat", "step fstat", "step id_valid"};
	size_t nops = sizeof names / sizeof *names;
	for (size_t op = 0; op < nops; op++) {
		if (op == 7) { /* last: the filter stays on this thread for good */
			pthread_t th;
			if (floor_setup() < 0 || pthread_create(&th, NULL, answer_at_once, NULL) != 0)
				break;
		}
		atomic_store(&loop_shape, op == 8 ? 1 : op == 9 ? 2 : 0);
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
			case 6: r = setxattr(path, "user.bench", "1", 1, 0); break;
			case 7: case 8: r = (int)syscall(__NR_getpgid, 0) != 0; break;
			case 9: r = (int)syscall(__NR_getpgid, fd) != 0; break;
			default: r = step(op, fd); break;
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
