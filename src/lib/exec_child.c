/* exec_child.c — the forked side of nono_exec: the reaper and the command between fork and
 * execve. Async-signal-safe code only (raw syscalls, stack memory; no malloc, no stdio).
 * The lifetime design is described at the top of exec.c. */
#include "exec_int.h"
#include "uapi.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------------
 * The child (async-signal-safe only: raw syscalls and stack memory, no malloc, no stdio)
 * ---------------------------------------------------------------------------------------------- */

static void child_report(int fd, int stage, int value)
{
	struct child_msg m = {.stage = stage, .value = value};
	ssize_t r;
	do
		r = write(fd, &m, sizeof m);
	while (r < 0 && errno == EINTR);
}

__attribute__((noreturn)) static void child_fail(int fd, int stage, int value)
{
	child_report(fd, stage, value);
	_exit(127);
}

/* Duplicate `src` onto `dst`; `cloexec` keeps it closed across execve. */
static int child_place(int src, int dst, bool cloexec)
{
	if (src == dst)
		return cloexec ? 0 : fcntl(dst, F_SETFD, 0);
	return dup3(src, dst, cloexec ? O_CLOEXEC : 0) < 0 ? -1 : 0;
}

/* 3b. Deny paths and read-only grants inside writable grants: a private mount namespace (covers,
 * read-only binds, mounts.c), made before Landlock (which then forbids changing it) and after the
 * chdir (unshare moves the working directory into the new namespace; one inside a covered path is
 * refused). */
static void child_workdir(const struct child_ctx *c, int msg)
{
	if (c->cwd_fd >= 0 && fchdir(c->cwd_fd) < 0)
		child_fail(msg, ST_CHDIR, errno);
	if (c->plan->mount_ops) {
		int mr = nono_mounts_enter(c->plan->mount_ops);
		if (mr < 0)
			child_fail(msg, ST_MOUNTS, -mr);
	}
	int cr = nono_drop_read_search(); /* review of 2026-12-05, B2 */
	if (cr < 0)
		child_fail(msg, ST_CAPS, -cr);
}

__attribute__((noreturn)) static void child_main(const struct child_ctx *c, pid_t reaper)
{
	int msg = c->msg_w;

	/* 1. Session / process group. setsid gives the command no controlling terminal (no TIOCSTI
	 * target even before seccomp) and one group to kill. Interactive (`foreground`) runs instead
	 * get their own group that owns the terminal; all signals are still blocked here, so
	 * tcsetpgrp from what is now a background group does not raise SIGTTOU. */
	if (c->tty_fd >= 0) {
		if (setpgid(0, 0) < 0)
			child_fail(msg, ST_SESSION, errno);
		if (tcsetpgrp(c->tty_fd, getpid()) < 0)
			child_fail(msg, ST_TTY, errno);
	} else if (setsid() < 0) {
		child_fail(msg, ST_SESSION, errno);
	}

	/* 2. Die with the reaper (single-threaded, so its one thread is the forking thread). If it
	 * already died between fork and prctl, we were reparented: getppid() no longer matches. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(msg, ST_PDEATHSIG, errno);
	if (getppid() != reaper)
		child_fail(msg, ST_PARENT_DIED, ESRCH);

	/* 3. Working directory, by fd opened in the parent (no path lookup race, and the cwd was
	 * validated before fork). Before Landlock: the domain does not need to cover the cwd. */
	child_workdir(c, msg); /* and 3b., the mount namespace */

	/* 4. File descriptors. First lift every fd we keep above the target range (F_DUPFD_CLOEXEC
	 * >= 16 cannot collide with 0..5), then place them: 0,1,2 stdio (inherited), 3 the error
	 * pipe, 4 the ack pipe, 5 the Landlock ruleset (all three CLOEXEC), and close the rest. */
	struct nono_plan plan = *c->plan; /* stack copy: we renumber the ruleset fd */
	int src[6] = {c->in_fd, c->out_fd, c->err_fd, msg, c->ack_r, plan.ruleset_fd};
	int hi[6];
	for (int i = 0; i < 6; i++) {
		hi[i] = -1;
		if (src[i] >= 0 && (hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 16)) < 0)
			child_fail(msg, ST_FDS, errno);
	}
	for (int i = 0; i < 6; i++) {
		if (hi[i] >= 0 && child_place(hi[i], i, i >= 3) < 0)
			child_fail(hi[3], ST_FDS, errno);
	}
	for (int i = 3; i < 6; i++)
		if (hi[i] < 0)
			close(i); /* a slot we do not use must not keep an inherited fd */
	msg = 3;
	if (plan.ruleset_fd >= 0)
		plan.ruleset_fd = 5;
	/* close_range is 5.9; below that (or if it fails) close one by one up to the bound the parent
	 * computed from RLIMIT_NOFILE. */
	if (syscall(__NR_close_range, 6u, ~0u, 0u) < 0) {
		for (unsigned fd = 6; fd < c->close_max; fd++)
			close((int)fd);
	}

	/* 5. Enter the sandbox: no_new_privs, Landlock, seccomp (raw syscalls, apply.c). */
	int listener = -1;
	int rc = nono_plan_enter(&plan, &listener);
	if (rc < 0)
		child_fail(msg, ST_PLAN, -rc);
	if (plan.ruleset_fd >= 0)
		close(plan.ruleset_fd);

	/* 6. Listener handoff: tell the parent our listener fd number, wait for its ack (it has taken
	 * the fd with pidfd_getfd and started the supervisor), then drop our copy. write/read/close
	 * are never trapped by the filter. Without the ack we never exec: no unsupervised child. */
	if (plan.notify) {
		if (listener < 0)
			child_fail(msg, ST_HANDOFF, EBADF);
		child_report(msg, ST_LISTENER, listener);
		char ack;
		ssize_t r;
		do
			r = read(4, &ack, 1);
		while (r < 0 && errno == EINTR);
		if (r != 1)
			_exit(127); /* the parent gave up (it reports why) */
		close(listener);
		close(4);
	} else if (listener >= 0) {
		close(listener);
	}

	/* 7. Signals: exec resets handlers but keeps SIG_IGN and the mask. Give the program default
	 * dispositions and an empty mask (a caller that ignores SIGPIPE, like CPython, must not pass
	 * that on). Handlers are reset before unblocking so none of the caller's runs here. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG && s <= 64; s++) /* the ones not at SIG_DFL: exec.c */
		if ((c->sig_reset >> (s - 1)) & 1)
			sigaction(s, &dfl, NULL); /* SIGKILL/SIGSTOP, libc-internal ones fail: fine */
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(msg, ST_SIGNALS, errno);

	execve(c->path, c->argv, c->envp);
	child_fail(msg, ST_EXEC, errno);
}

/* ------------------------------------------------------------------------------------------------
 * The reaper (the forked child; not sandboxed; async-signal-safe only, like the command's setup:
 * raw syscalls and stack memory). See the file comment for why it exists.
 * ---------------------------------------------------------------------------------------------- */

/* Close every fd except `a` and `b` (a < b, both >= 0). close_range is 5.9; below that close one by
 * one up to the bound the parent computed. */
static void reaper_close_except(int a, int b, unsigned close_max)
{
	unsigned lo[3] = {0, (unsigned)a + 1, (unsigned)b + 1};
	unsigned hi[3] = {(unsigned)a, (unsigned)b, ~0u}; /* exclusive, except the last */
	for (int i = 0; i < 3; i++) {
		if (i < 2 && lo[i] >= hi[i])
			continue;
		unsigned last = i < 2 ? hi[i] - 1 : ~0u;
		if (syscall(__NR_close_range, lo[i], last, 0u) < 0) {
			for (unsigned fd = lo[i]; fd <= last && fd < close_max; fd++)
				close((int)fd);
		}
	}
}

/* SIGKILL every child listed in /proc/thread-self/children (`kids`, opened before the fork).
 * A full buffer may end in a cut number: that one is left for the next round. */
static void reaper_kill_children(int kids)
{
	char buf[4096];
	ssize_t n = pread(kids, buf, sizeof buf, 0);
	if (n <= 0)
		return;
	ssize_t end = n;
	if ((size_t)n == sizeof buf)
		while (end > 0 && buf[end - 1] != ' ')
			end--;
	pid_t pid = 0;
	for (ssize_t i = 0; i < end; i++) {
		if (buf[i] >= '0' && buf[i] <= '9') {
			pid = pid * 10 + (buf[i] - '0');
		} else {
			if (pid > 0)
				kill(pid, SIGKILL);
			pid = 0;
		}
	}
	if (pid > 0 && end == n)
		kill(pid, SIGKILL);
}

/* Look at what SIGCHLD announced. Returns true once the command (`cmd`) has exited: its group has
 * been killed and it is reaped, status in *cmd_status. Reaps other (reparented) children on the
 * way. In foreground mode a stopped command (^Z) stops the reaper too, so the caller, which waits
 * for its own child, sees the stop and does the job control (follow_stop, exec_wait.c). */
static bool reaper_on_sigchld(pid_t cmd, bool foreground, int *cmd_status)
{
	for (;;) {
		siginfo_t w;
		memset(&w, 0, sizeof w);
		int opts = WEXITED | WNOHANG | WNOWAIT | __WALL | (foreground ? WSTOPPED : 0);
		if (waitid(P_ALL, 0, &w, opts) < 0 || w.si_pid == 0)
			return false;
		if (w.si_code == CLD_STOPPED || w.si_code == CLD_TRAPPED) {
			siginfo_t x;
			waitid(P_PID, (id_t)w.si_pid, &x, WSTOPPED | WNOHANG | __WALL); /* consume */
			if (w.si_pid == cmd && w.si_code == CLD_STOPPED)
				kill(getpid(), SIGSTOP); /* until the caller continues us */
			continue;
		}
		if (w.si_pid == cmd) {
			/* Unreaped: its pid still names its group, nobody else's. */
			kill(-cmd, SIGKILL);
			while (waitpid(cmd, cmd_status, __WALL) < 0 && errno == EINTR)
				;
			return true;
		}
		int st;
		waitpid(w.si_pid, &st, WNOHANG | __WALL);
	}
}

/* Become the reaper: default SIGCHLD, own process group, child subreaper, death signal. Returns
 * the fd of /proc/thread-self/children. Fails (exits) closed. */
static int reaper_setup(const struct child_ctx *c)
{
	int msg = c->msg_w;
	/* Signals stay blocked (since the fork) for the reaper's whole life: it takes the ones it
	 * waits for with sigwaitinfo, nothing is ever delivered. Dispositions: a caller that ignores
	 * SIGCHLD (or uses SA_NOCLDWAIT) would make children auto-reap and hide the command's status. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &dfl, NULL);
	sigaction(REAPER_KILL_SIG, &dfl, NULL);
	/* Own process group: see exec.c's file comment. */
	if (setpgid(0, 0) < 0)
		child_fail(msg, ST_REAPER, errno);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		child_fail(msg, ST_REAPER, errno);
	/* Catchable, so the reaper can kill the tree before it goes. Fires when the caller's forking
	 * thread exits; nono_exec blocks that thread until the reaper is reaped. */
	if (prctl(PR_SET_PDEATHSIG, REAPER_KILL_SIG, 0, 0, 0) < 0)
		child_fail(msg, ST_PDEATHSIG, errno);
	if (getppid() != c->parent)
		child_fail(msg, ST_PARENT_DIED, ESRCH);
	/* Opened before the command exists: without it we could not find reparented descendants,
	 * so fail closed now rather than run a command we cannot clean up after. */
	int kids = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
	if (kids < 0)
		child_fail(msg, ST_REAPER, errno);
	return kids;
}

/* Tell the parent the command's pid (it continues the command's group after ^Z) and, for a
 * supervised plan, hand it a pidfd for the command (our unreaped child, so the pid is its own):
 * the parent takes the seccomp listener from the command with pidfd_getfd on it. Then drop
 * everything else: the capture pipes' write ends (their EOF is the command's business), the setup
 * pipe (EOF there means the command exec'd), the caller's fds. Keeps `kids` and the pidfd. */
static void reaper_handoff(const struct child_ctx *c, pid_t cmd, int kids)
{
	child_report(c->msg_w, ST_CMD_PID, cmd);
	int cmdfd = -1;
	if (c->plan->notify) {
		cmdfd = (int)syscall(__NR_pidfd_open, cmd, 0);
		if (cmdfd < 0)
			child_report(c->msg_w, ST_REAPER, errno); /* the parent aborts: REAPER_KILL_SIG */
		else
			child_report(c->msg_w, ST_CMD_PIDFD, cmdfd);
	}
	/* Nothing else to keep: name `kids` twice. (kids + 1 was kept here before; when `kids` took a
	 * hole in the fd table that number could be the setup pipe's write end, whose EOF the parent
	 * then waited for forever while the command blocked on a full capture pipe.) */
	if (cmdfd < 0)
		cmdfd = kids;
	reaper_close_except(kids < cmdfd ? kids : cmdfd, kids < cmdfd ? cmdfd : kids, c->close_max);
}

/* Until the command exits (true: reaped, status in *cmd_status) or REAPER_KILL_SIG (false):
 * pass the forwarded signals on to the command's group. */
static bool reaper_wait(pid_t cmd, bool foreground, int *cmd_status)
{
	sigset_t waitset;
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	sigaddset(&waitset, REAPER_KILL_SIG);
	for (size_t i = 0; i < N_ELEMENTS(nono_exec_forwarded_signals); i++)
		sigaddset(&waitset, nono_exec_forwarded_signals[i]);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&waitset, &si);
		if (sig == REAPER_KILL_SIG)
			return false;
		if (sig > 0 && sig != SIGCHLD) { /* forwarded; the command is unreaped */
			if (kill(-cmd, sig) < 0)
				kill(cmd, sig);
			continue;
		}
		if (sig == SIGCHLD && reaper_on_sigchld(cmd, foreground, cmd_status))
			return true;
	}
}

/* Kill everything left, reap, until no child remains. Each round kills the current children; the
 * children of killed processes are reparented to us and die in the next round. The children file
 * may miss entries under concurrent fork/exit, so never block for long on one list: wake every
 * 20 ms to read it again. Updates *cmd_reaped / *cmd_status if the command is reaped here. */
static void reaper_kill_all(pid_t cmd, int kids, bool *cmd_reaped, int *cmd_status)
{
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		if (!*cmd_reaped)
			kill(-cmd, SIGKILL);
		reaper_kill_children(kids);
		bool reaped = false;
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG | __WALL);
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0)
				return; /* ECHILD: nothing left */
			if (p == 0)
				break;
			reaped = true;
			if (p == cmd) {
				*cmd_status = st;
				*cmd_reaped = true;
			}
		}
		if (!reaped)
			sigtimedwait(&chld, NULL, &tick);
	}
}

/* Mirror the command's end: same exit code, or death by the same signal. No core dump of the
 * reaper for SIGSEGV & co: RLIMIT_CORE 0 for file patterns, not dumpable for pipe helpers. */
__attribute__((noreturn)) static void reaper_exit_as(bool cmd_reaped, int cmd_status)
{
	if (!cmd_reaped || WIFEXITED(cmd_status))
		_exit(cmd_reaped ? WEXITSTATUS(cmd_status) : 127);
	int tsig = WTERMSIG(cmd_status);
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(tsig, &dfl, NULL);
	kill(getpid(), tsig);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, tsig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	_exit(128 + tsig); /* not reached for a terminating signal */
}

void nono_exec_reaper_main(const struct child_ctx *c)
{
	int kids = reaper_setup(c);
	/* Told to stop (the parent gave up, or died) before the command started: do not start it. */
	sigset_t pending;
	if (sigpending(&pending) == 0 && sigismember(&pending, REAPER_KILL_SIG))
		_exit(127);
	pid_t self = getpid();
	pid_t cmd = fork();
	if (cmd < 0)
		child_fail(c->msg_w, ST_REAPER, errno);
	if (cmd == 0) {
		close(kids);
		child_main(c, self);
	}
	reaper_handoff(c, cmd, kids);
	int cmd_status = 0;
	bool cmd_reaped = reaper_wait(cmd, c->tty_fd >= 0, &cmd_status);
	reaper_kill_all(cmd, kids, &cmd_reaped, &cmd_status);
	if (c->remove_dir) /* nothing of the command's is left to write there */
		nono_exec_rmtree(c->remove_dir);
	reaper_exit_as(cmd_reaped, cmd_status);
}
