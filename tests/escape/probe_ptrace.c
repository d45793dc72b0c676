/* probe_ptrace.c — attack the supervisor: under `nono run` the supervisor is a thread of the
 * parent process (getppid()). One attempt, chosen by argv[1]:
 *   seize        ptrace(PTRACE_SEIZE, parent) (does not stop it; detached when we exit)
 *   vm_writev    process_vm_writev into the parent at an unmapped address: EFAULT means the
 *                permission check passed (an escape), EPERM means it did not
 *   pidfd_getfd  pidfd_open(parent) + pidfd_getfd of its fds 0..63 (steal the listener)
 *   kill         kill(parent, 0) (signal scope, Landlock ABI 6) — informational
 */
#include "probe.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pid_t parent = getppid();
	if (strcmp(argv[1], "seize") == 0) {
		if (ptrace(PTRACE_SEIZE, parent, NULL, NULL) < 0)
			return probe_denied("ptrace(PTRACE_SEIZE)", errno);
		return probe_escaped("seized the supervisor's process");
	}
	if (strcmp(argv[1], "vm_writev") == 0) {
		char b[8] = "nono";
		struct iovec l = {b, sizeof b}, r = {(void *)0x1000, sizeof b};
		if (process_vm_writev(parent, &l, 1, &r, 1, 0) < 0 && errno != EFAULT)
			return probe_denied("process_vm_writev", errno);
		return probe_escaped("process_vm_writev passed the permission check");
	}
	if (strcmp(argv[1], "pidfd_getfd") == 0) {
		int pfd = (int)syscall(__NR_pidfd_open, parent, 0);
		if (pfd < 0)
			return probe_denied("pidfd_open", errno);
		int last = 0;
		for (int fd = 0; fd < 64; fd++) {
			long r = syscall(__NR_pidfd_getfd, pfd, fd, 0);
			if (r >= 0)
				return probe_escaped("took an fd of the supervisor's process");
			if (errno != EBADF)
				last = errno;
		}
		return probe_denied("pidfd_getfd", last ? last : EBADF);
	}
	if (strcmp(argv[1], "kill") == 0) {
		if (kill(parent, 0) < 0)
			return probe_denied("kill", errno);
		return probe_escaped("may signal the supervisor's process");
	}
	return 2;
}
