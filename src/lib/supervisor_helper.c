/* supervisor_helper.c — the supervisor for in-process nono_apply: a helper process forked before
 * the filter exists takes the listener and supervises its forker (see the comment below). It runs
 * the same loop as the thread (nono_sup_new/nono_sup_main, supervisor.c) and the same decisions
 * (supervisor_decide.c); this file is the process plumbing only. */
#include "internal.h"
#include "uapi.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* ---- in-process nono_apply: a helper process supervises its forker ----
 *
 * helper_fork (before the filter exists): socketpair, then a double fork so the helper is nobody's
 * zombie and never shows up in the caller's wait(). The helper closes every fd but its end of the
 * socketpair, ignores the caller's signals (new session, all signals blocked), turns
 * non-dumpable (no ptrace, process_vm_writev or pidfd_getfd against it by the sandboxed process,
 * even where Landlock's ptrace restriction is absent) and waits for the listener's fd NUMBER.
 * handoff (after the filter, in the sandboxed process): PR_SET_PTRACER(helper) — Yama scope 1
 * would otherwise refuse the helper's pidfd_getfd and process_vm_readv, since it is not an
 * ancestor — then write(number) and read(ack): prctl, write and read are never trapped. The
 * helper takes the listener with pidfd_getfd on its parent's pidfd and supervises until the
 * listener hangs up (the last task using the filter exited).
 * Known limit: under Yama ptrace_scope >= 1 without CAP_SYS_PTRACE, PR_SET_PTRACER covers the
 * applying process only; its descendants' requests cannot be read and fail closed (EPERM). */

static void helper_main(int sock, pid_t target, const nono_caps *caps,
			const struct nono_sup_config *cfg)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setsid();
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)!chdir("/"); /* hold no directory of the caller's busy */
	int keep = fcntl(sock, F_DUPFD_CLOEXEC, 3);
	if (keep < 0)
		_exit(1);
	if (syscall(__NR_close_range, 0, (unsigned)keep - 1, 0) < 0 ||
	    syscall(__NR_close_range, (unsigned)keep + 1, ~0U, 0) < 0) {
		/* close_range is 5.9; pidfd_getfd (5.6) may come without it. */
		long max = sysconf(_SC_OPEN_MAX);
		for (int fd = 0; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			if (fd != keep)
				close(fd);
	}
	int n = -1;
	size_t got = 0;
	while (got < sizeof n) {
		ssize_t r = read(keep, (char *)&n + got, sizeof n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(0); /* the caller gave up (or died) before handing over */
		got += (size_t)r;
	}
	int pidfd = (int)syscall(__NR_pidfd_open, target, 0);
	if (pidfd < 0)
		_exit(2);
	int lfd = (int)syscall(__NR_pidfd_getfd, pidfd, n, 0);
	close(pidfd);
	if (lfd < 0)
		_exit(3);
	struct nono_supervisor *s;
	struct nono_sup_config hc = *cfg;
	hc.ring = NULL; /* the caller's memory is not ours to fill from another process */
	hc.audit_fd = -1;
	if (nono_sup_new(lfd, caps, &hc, &s, NULL) < 0)
		_exit(4);
	char ack = 'K';
	if (write(keep, &ack, 1) != 1)
		_exit(5);
	close(keep);
	nono_sup_main(s);
	_exit(0);
}

int nono_supervisor_helper_fork(const nono_caps *caps, const struct nono_sup_config *cfg,
				 struct nono_sup_helper *hh, nono_error *err)
{
	hh->fd = -1;
	hh->pid = -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return nono_fail(err, -errno, "supervisor helper: socketpair: %s", strerror(errno));
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return nono_fail(err, -e, "supervisor helper: pipe: %s", strerror(e));
	}
	pid_t target = getpid();
	pid_t mid = fork();
	if (mid == 0) {
		close(sv[0]);
		close(pp[0]);
		pid_t h = fork();
		if (h == 0) {
			close(pp[1]);
			helper_main(sv[1], target, caps, cfg);
		}
		(void)!write(pp[1], &h, sizeof h);
		_exit(h > 0 ? 0 : 1);
	}
	close(sv[1]);
	close(pp[1]);
	pid_t h = -1;
	ssize_t got = mid > 0 ? read(pp[0], &h, sizeof h) : -1;
	int e = errno;
	close(pp[0]);
	if (mid > 0) {
		int st;
		while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (mid < 0 || got != (ssize_t)sizeof h || h <= 0) {
		close(sv[0]);
		return nono_fail(err, mid < 0 ? -e : -ECHILD,
				 "cannot fork the supervisor helper process");
	}
	hh->pid = h;
	hh->fd = sv[0];
	return 0;
}

int nono_supervisor_helper_handoff(struct nono_sup_helper *hh, int listener_fd, nono_error *err)
{
	int handle = nono_steal_fd(&hh->fd);
	/* Yama: let the helper read us (EINVAL where Yama is absent: nothing to do). */
	(void)prctl(PR_SET_PTRACER, (unsigned long)hh->pid, 0, 0, 0);
	int r = 0;
	if (write(handle, &listener_fd, sizeof listener_fd) != (ssize_t)sizeof listener_fd)
		r = -EPIPE;
	char ack = 0;
	while (r == 0) {
		ssize_t n = read(handle, &ack, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1 || ack != 'K')
			r = -ECHILD;
		break;
	}
	close(listener_fd);
	close(handle);
	if (r < 0)
		return nono_fail(err, r,
				 "the supervisor helper did not take the listener: supervised "
				 "network calls will fail with ENOSYS");
	return 0;
}
