/* under_listener — run a command under a seccomp filter, with or without a user-notification
 * listener, for bench/cli.py --features (the cost of nono's supervisor, same binary, no switch).
 *
 *     under_listener listener|filter CMD [ARGS...]
 *
 * `listener`: the filter has a listener (its fd stays open across exec, the filter notifies on one
 * syscall no benchmarked program makes). A process may sit under only one listener (EBUSY, Linux
 * 5.0), so nono run then plans without a supervisor (the metadata calls are refused outright, the
 * report says so), and everything else stays the same. `filter`: the same filter without a
 * listener, so that both sides pay the same filter evaluation on every syscall; nono supervises.
 * Not a test and not part of nono: a benchmark's harness. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "listener") && strcmp(argv[1], "filter"))) {
		fprintf(stderr, "usage: under_listener listener|filter CMD [ARGS...]\n");
		return 2;
	}
	int listener = !strcmp(argv[1], "listener");
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kexec_file_load, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, listener ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("PR_SET_NO_NEW_PRIVS");
		return 1;
	}
	long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			  listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
	if (fd < 0) {
		perror("seccomp");
		return 1;
	}
	/* The listener must outlive exec: closing its last fd detaches it (and nono would then
	 * find no listener above it). */
	if (listener && fcntl((int)fd, F_SETFD, 0) < 0) {
		perror("fcntl");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
