/* exec.c — sandboxed exec: run argv under a capability set and report how it ended.
 *
 * Shape (design.md §3 "prepare before fork"):
 *   parent, before fork: environment (nono_env_build), program resolution in the child's PATH,
 *     the enforcement plan (Landlock ruleset fd + seccomp program), pipes, /dev/null, cwd fd,
 *     the terminal decision, and an fd-closing upper bound;
 *   reaper (the forked child, never sandboxed, async-signal-safe code only): becomes a child
 *     subreaper, forks the command, and owns every descendant of it (below);
 *   command (the reaper's child), between fork and execve: only async-signal-safe syscalls on
 *     memory prepared above; errors go to a CLOEXEC pipe as {stage, errno} and it _exits(127);
 *   parent, after fork: pidfd_open (5.3) of the reaper, the command's pidfd taken from the reaper
 *     (pidfd_getfd, 5.6), the seccomp listener handoff when the plan is supervised, then one ppoll
 *     loop over the capture pipes and the reaper's pidfd (timeout, capture limit), reap, stop the
 *     supervisor.
 *
 * Lifetime guarantees (design.md §2: sandboxed code must not survive a timeout or nono's death).
 * Why a reaper and not the process group: a process group is left with one setsid()/setpgid()
 * call, and PR_SET_PDEATHSIG is cleared on fork, so group kills and the death signal only ever
 * reached part of the tree. A PID namespace would need CAP_SYS_ADMIN or a user namespace (often
 * disabled, and it changes the uids the command sees); a cgroup needs a delegated hierarchy. A
 * child subreaper (PR_SET_CHILD_SUBREAPER, 3.4) needs neither: every process the command creates
 * is its descendant, and when an intermediate parent dies its children are reparented to the
 * reaper, not to init. Nothing changes for the caller (it is not made a subreaper; it only ever
 * has the one child). The reaper:
 *   - sits in its own process group (group signals meant for the caller, e.g. a terminal ^C in a
 *     pipeline, do not reach it) and waits with sigwaitinfo (all signals blocked since the fork);
 *   - passes SIGTERM, SIGHUP, SIGINT and SIGQUIT sent to it on to the command's group, as they
 *     reached the command before there was a reaper (the CLI forwards its own signals that way);
 *   - when the command exits, SIGKILLs the command's group (while the command is unreaped, its pid
 *     still names the group), then SIGKILLs every child listed in /proc/thread-self/children
 *     (3.5, CONFIG_PROC_CHILDREN) and reaps, in a loop until waitpid reports ECHILD: killed
 *     processes' children are reparented to the reaper and killed in the next round;
 *   - on REAPER_KILL_SIG (SIGUSR1) does the same: it is both its PR_SET_PDEATHSIG signal (the
 *     caller's thread died, e.g. nono was SIGKILLed) and the parent's kill request (timeout,
 *     capture cap, abort);
 *   - then exits with the command's own status (same exit code, or dies by the same signal with
 *     RLIMIT_CORE 0), so the caller still reports exit code / -signo / 124 as before.
 * So when nono_exec returns, no process of the command's tree is left, even one that called setsid.
 * The command also has PR_SET_PDEATHSIG(SIGKILL) for the reaper.
 * The reaper is not in the sandbox. With Landlock ABI 6 (6.12) signal scoping the sandboxed code
 * cannot signal it (ptrace is scoped at every ABI). Below ABI 6 the command can SIGKILL the reaper
 * (same uid): the command itself then dies by its PR_SET_PDEATHSIG, but its other descendants are
 * reparented to init and survive — the documented limit of old kernels.
 * The command gets a new session (or, for an interactive `foreground` run, a new process group
 * that owns the terminal); the reaper stays in the caller's process group. */
#include "internal.h"
#include "uapi.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

/* Captured stdout and stderr are each capped: a child that writes more is killed and nono_exec
 * fails with -EFBIG (never silently truncated: nono_exec_result has no "truncated" flag). */
#define NONO_CAPTURE_MAX (64u << 20)
/* After the reaper exited, wait at most this long for the capture pipes to reach EOF. Normally
 * immediate: the reaper exits only when the command's whole tree is gone. Only a process that
 * survived a killed reaper (Landlock ABI < 6, see below) may still hold them. */
#define NONO_DRAIN_GRACE_MS 1000
#define NONO_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
/* Foreground mode: how often to look for a stopped (^Z) command. */
#define NONO_STOP_POLL_MS 100
/* The reaper's "kill the whole tree and exit" signal: its PR_SET_PDEATHSIG and our kill request.
 * Catchable (unlike SIGKILL) and not one of the signals it forwards to the command. */
#define REAPER_KILL_SIG SIGUSR1

/* Stages reported by the child through the error pipe. */
enum child_stage {
	ST_SESSION = 1,
	ST_TTY,
	ST_PDEATHSIG,
	ST_PARENT_DIED,
	ST_CHDIR,
	ST_FDS,
	ST_PLAN,
	ST_HANDOFF,
	ST_SIGNALS,
	ST_EXEC,
	ST_REAPER,
	ST_LISTENER = 100, /* not an error: value is the listener fd number in the command */
	ST_CMD_PID,        /* not an error, from the reaper: value is the command's pid */
	ST_CMD_PIDFD,      /* not an error, from the reaper: its fd number of the command's pidfd */
};

struct child_msg {
	int32_t stage;
	int32_t value; /* errno, or the listener fd number for ST_LISTENER */
};

static const char *stage_name(int stage)
{
	switch (stage) {
	case ST_SESSION: return "creating the session / process group";
	case ST_TTY: return "taking the terminal (tcsetpgrp)";
	case ST_PDEATHSIG: return "PR_SET_PDEATHSIG";
	case ST_PARENT_DIED: return "parent exited before the child started";
	case ST_CHDIR: return "changing to the working directory";
	case ST_FDS: return "setting up file descriptors";
	case ST_PLAN: return "entering the sandbox (no_new_privs, Landlock, seccomp)";
	case ST_HANDOFF: return "handing the seccomp listener to the supervisor";
	case ST_SIGNALS: return "resetting signal dispositions";
	case ST_EXEC: return "execve";
	case ST_REAPER: return "starting the reaper (child subreaper, /proc/thread-self/children, fork)";
	default: return "unknown stage";
	}
}

/* Everything the child needs, prepared by the parent. The child only reads it. */
struct child_ctx {
	const char *path;          /* resolved program */
	char *const *argv;
	char *const *envp;
	int in_fd, out_fd, err_fd; /* sources for the child's 0, 1, 2 */
	int cwd_fd;                /* -1: stay */
	int tty_fd;                /* >= 0: foreground mode on this terminal; else setsid */
	int msg_w;                 /* CLOEXEC error / handoff pipe, write end */
	int ack_r;                 /* handoff ack pipe, read end (-1 unless plan->notify) */
	pid_t parent;              /* the caller (the reaper's parent) */
	unsigned close_max;        /* close_range fallback bound */
	const struct nono_plan *plan;
};

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
	if (c->cwd_fd >= 0 && fchdir(c->cwd_fd) < 0)
		child_fail(msg, ST_CHDIR, errno);

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
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* SIGKILL/SIGSTOP and libc-internal signals fail: fine */
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
 * for its own child, sees the stop and does the job control (follow_stop). */
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

__attribute__((noreturn)) static void reaper_main(const struct child_ctx *c)
{
	int msg = c->msg_w;

	/* Signals stay blocked (since the fork) for the reaper's whole life: it takes the ones in
	 * `waitset` with sigwaitinfo, nothing is ever delivered. Dispositions: a caller that ignores
	 * SIGCHLD (or uses SA_NOCLDWAIT) would make children auto-reap and hide the command's status. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &dfl, NULL);
	sigaction(REAPER_KILL_SIG, &dfl, NULL);
	/* Own process group: see the file comment. */
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

	sigset_t waitset, pending;
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	sigaddset(&waitset, REAPER_KILL_SIG);
	static const int forwarded[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&waitset, forwarded[i]);
	/* Told to stop (the parent gave up, or died) before the command started: do not start it. */
	if (sigpending(&pending) == 0 && sigismember(&pending, REAPER_KILL_SIG))
		_exit(127);

	pid_t self = getpid();
	pid_t cmd = fork();
	if (cmd < 0)
		child_fail(msg, ST_REAPER, errno);
	if (cmd == 0) {
		close(kids);
		child_main(c, self);
	}

	/* Tell the parent the command's pid (it continues the command's group after ^Z) and, for a
	 * supervised plan, hand it a pidfd for the command (our unreaped child, so the pid is its own):
	 * the parent takes the seccomp listener from the command with pidfd_getfd on it. Kept open. */
	child_report(msg, ST_CMD_PID, cmd);
	int cmdfd = -1;
	if (c->plan->notify) {
		cmdfd = (int)syscall(__NR_pidfd_open, cmd, 0);
		if (cmdfd < 0)
			child_report(msg, ST_REAPER, errno); /* the parent aborts: REAPER_KILL_SIG */
		else
			child_report(msg, ST_CMD_PIDFD, cmdfd);
	}
	/* Drop everything else: the capture pipes' write ends (their EOF is the command's business),
	 * the setup pipe (EOF there means the command exec'd), the caller's fds. */
	if (cmdfd < 0)
		cmdfd = kids + 1; /* any other number: nothing to keep */
	reaper_close_except(kids < cmdfd ? kids : cmdfd, kids < cmdfd ? cmdfd : kids, c->close_max);

	bool foreground = c->tty_fd >= 0;
	int cmd_status = 0;
	bool cmd_reaped = false;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&waitset, &si);
		if (sig == REAPER_KILL_SIG)
			break;
		if (sig > 0 && sig != SIGCHLD) { /* forwarded; the command is unreaped */
			if (kill(-cmd, sig) < 0)
				kill(cmd, sig);
			continue;
		}
		if (sig == SIGCHLD && reaper_on_sigchld(cmd, foreground, &cmd_status)) {
			cmd_reaped = true;
			break;
		}
	}

	/* Kill everything left, reap, until no child remains. Each round kills the current children;
	 * the children of killed processes are reparented to us and die in the next round. The
	 * children file may miss entries under concurrent fork/exit, so never block for long on one
	 * list: wake every 20 ms to read it again. */
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		if (!cmd_reaped)
			kill(-cmd, SIGKILL);
		reaper_kill_children(kids);
		bool reaped = false, none = false;
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG | __WALL);
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0) {
				none = true; /* ECHILD: nothing left */
				break;
			}
			if (p == 0)
				break;
			reaped = true;
			if (p == cmd) {
				cmd_status = st;
				cmd_reaped = true;
			}
		}
		if (none)
			break;
		if (!reaped)
			sigtimedwait(&chld, NULL, &tick);
	}

	/* Mirror the command's end: same exit code, or death by the same signal. No core dump of the
	 * reaper for SIGSEGV & co: RLIMIT_CORE 0 for file patterns, not dumpable for pipe helpers. */
	if (!cmd_reaped || WIFEXITED(cmd_status))
		_exit(cmd_reaped ? WEXITSTATUS(cmd_status) : 127);
	int tsig = WTERMSIG(cmd_status);
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	sigaction(tsig, &dfl, NULL);
	kill(self, tsig);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, tsig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	_exit(128 + tsig); /* not reached for a terminating signal */
}

/* ------------------------------------------------------------------------------------------------
 * The parent
 * ---------------------------------------------------------------------------------------------- */

void nono_exec_opts_init(nono_exec_opts *opts)
{
	if (opts)
		memset(opts, 0, sizeof *opts);
}

void nono_exec_result_free(nono_exec_result *result)
{
	if (!result)
		return;
	free(result->out);
	free(result->err);
	result->out = result->err = NULL;
	result->out_len = result->err_len = 0;
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* 1: executable regular file; 0: missing; -EACCES: exists but is not an executable file. */
static int probe_program(int dirfd, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, 0) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -EACCES;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (faccessat(dirfd, path, X_OK, AT_EACCESS) < 0)
		return -EACCES;
	return 1;
}

/* Resolve argv0 like execvp, in PATH of the child's environment (else the default path),
 * relative to the child's cwd. Returns the path (malloc'd) or NULL with *rc = -ENOENT / -EACCES. */
static char *resolve_program(const char *argv0, char *const *envp, int cwd_fd, int *rc,
			     nono_error *err)
{
	int dirfd = cwd_fd >= 0 ? cwd_fd : AT_FDCWD;
	if (strchr(argv0, '/')) {
		int p = probe_program(dirfd, argv0);
		if (p == 0) {
			*rc = nono_fail(err, -ENOENT, "program not found: %s", argv0);
			return NULL;
		}
		if (p < 0) {
			*rc = nono_fail(err, -EACCES, "not an executable file: %s", argv0);
			return NULL;
		}
		char *s = strdup(argv0);
		if (!s)
			*rc = nono_fail(err, -ENOMEM, "out of memory");
		return s;
	}
	const char *path = env_get(envp, "PATH");
	if (!path)
		path = NONO_DEFAULT_PATH;
	bool saw_eacces = false;
	size_t alen = strlen(argv0);
	const char *p = path;
	for (;;) {
		const char *colon = strchrnul(p, ':');
		size_t dlen = (size_t)(colon - p);
		char *cand = malloc(dlen + alen + 3);
		if (!cand) {
			*rc = nono_fail(err, -ENOMEM, "out of memory");
			return NULL;
		}
		if (dlen == 0) /* an empty PATH element means the current directory */
			snprintf(cand, dlen + alen + 3, "./%s", argv0);
		else
			snprintf(cand, dlen + alen + 3, "%.*s/%s", (int)dlen, p, argv0);
		int r = probe_program(dirfd, cand);
		if (r == 1)
			return cand;
		free(cand);
		if (r < 0)
			saw_eacces = true;
		if (!*colon)
			break;
		p = colon + 1;
	}
	if (saw_eacces)
		*rc = nono_fail(err, -EACCES, "not executable: %s (found in PATH, but not an executable file)",
				argv0);
	else
		*rc = nono_fail(err, -ENOENT, "program not found: %s (PATH=%s)", argv0, path);
	return NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct capbuf {
	unsigned char *data;
	size_t len, cap;
	int fd; /* read end, -1 when closed */
	const char *name;
};

/* Read what is available. 0 ok, 1 EOF, -EFBIG over the cap, -errno. */
static int capbuf_read(struct capbuf *b)
{
	for (;;) {
		if (b->len == b->cap) {
			if (b->cap >= NONO_CAPTURE_MAX)
				return -EFBIG;
			size_t ncap = b->cap ? b->cap * 2 : 16384;
			if (ncap > NONO_CAPTURE_MAX)
				ncap = NONO_CAPTURE_MAX;
			unsigned char *n = realloc(b->data, ncap);
			if (!n)
				return -ENOMEM;
			b->data = n;
			b->cap = ncap;
		}
		ssize_t r = read(b->fd, b->data + b->len, b->cap - b->len);
		if (r > 0) {
			b->len += (size_t)r;
			continue;
		}
		if (r == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
}

/* Pick the terminal for a foreground run. Only an interactive command line qualifies: stdin and
 * stdout are both terminals and our process group is the terminal's foreground group. Anything
 * else gets a new session instead:
 * - nono in the background: the child must not steal the terminal from the shell;
 * - nono in a pipeline (`nono run -- git log | less`): the other members of our job share our
 *   group, and moving the terminal to the child's group would stop them (SIGTTIN/SIGTTOU). */
static int pick_tty(void)
{
	if (!isatty(0) || !isatty(1))
		return -1;
	pid_t pg = getpgrp();
	if (tcgetpgrp(0) != pg || tcgetpgrp(1) != pg)
		return -1;
	return 0;
}

/* Give the terminal back to our group. We are now in a background group: block SIGTTOU (per
 * thread) so tcsetpgrp works instead of stopping us. */
static void tty_restore(int tty_fd)
{
	if (tty_fd < 0)
		return;
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &s, &old);
	(void)!tcsetpgrp(tty_fd, getpgrp());
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Ask the reaper to kill the command's whole tree and exit (SIGCONT: it may be stopped). Only
 * called while the reaper is unreaped, so its pid cannot have been reused. */
static void reaper_stop(pid_t pid)
{
	kill(pid, REAPER_KILL_SIG);
	kill(pid, SIGCONT);
}

static int reap(pid_t pid, int *status)
{
	for (;;) {
		if (waitpid(pid, status, 0) == pid)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Read one message from the child: 1 got it, 0 EOF (exec succeeded or child died), -errno. */
static int read_msg(int fd, struct child_msg *m)
{
	size_t got = 0;
	while (got < sizeof *m) {
		ssize_t r = read(fd, (char *)m + got, sizeof *m - got);
		if (r == 0)
			return got ? -EPROTO : 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 1;
}

struct exec_state {
	struct nono_plan plan;
	bool plan_ready;
	char **envp;
	char *path;
	int devnull, cwd_fd, tty_fd;
	int msg[2], ack[2], outp[2], errp[2];
	int pidfd;       /* the reaper's */
	pid_t pid;       /* the reaper (our child) */
	pid_t cmd_pid;   /* the command (the reaper's child), from the reaper */
	int cmd_pidfd;   /* the command's pidfd, taken from the reaper (supervised plans) */
	int cmd_pidfd_n; /* its fd number in the reaper, else -1 */
	int listener_n;  /* listener fd number reported before cmd_pidfd arrived, else -1 */
	struct nono_supervisor *sup;
	struct capbuf out, errb;
};

/* Foreground mode: if the command was stopped (^Z sends SIGTSTP to the terminal's foreground
 * group, which is the command's, not ours), act like a job of the user's shell: take the terminal
 * back and stop ourselves, so the shell regains control and sees nono as the stopped job. When we
 * are continued (`fg`), give the terminal back to the command and continue its group. If our own
 * group is orphaned or SIGTSTP is ignored, the kernel drops the stop and we continue at once. */
static void follow_stop(struct exec_state *s)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, s->pid, &si, WSTOPPED | WNOHANG) < 0 || si.si_pid != s->pid ||
	    si.si_code != CLD_STOPPED)
		return;
	tty_restore(s->tty_fd);
	kill(getpid(), SIGTSTP);
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	/* The reaper is stopped, so the command is unreaped and its pid still names its group. */
	(void)!tcsetpgrp(s->tty_fd, s->cmd_pid);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	kill(-s->cmd_pid, SIGCONT);
	kill(s->pid, SIGCONT);
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0) {
			close(p[i]);
			p[i] = -1;
		}
}

static void state_cleanup(struct exec_state *s)
{
	if (s->sup)
		nono_supervisor_stop(s->sup);
	if (s->plan_ready)
		nono_plan_release(&s->plan);
	nono_strv_free(s->envp);
	free(s->path);
	int *fds[] = {&s->devnull, &s->cwd_fd, &s->pidfd, &s->cmd_pidfd, &s->out.fd, &s->errb.fd};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	close_pair(s->msg);
	close_pair(s->ack);
	close_pair(s->outp);
	close_pair(s->errp);
	free(s->out.data);
	free(s->errb.data);
}

/* Kill the command's tree and reap the reaper (a failure on our side). */
static void abort_child(struct exec_state *s)
{
	if (s->pid > 0) {
		int st;
		reaper_stop(s->pid);
		reap(s->pid, &st);
		s->pid = -1;
	}
}

/* Take the seccomp listener (fd number `n` in the command) and start the supervisor on it. */
static int take_listener(struct exec_state *s, int n, const nono_caps *caps, const nono_exec_opts *o,
			 nono_error *err)
{
	/* pidfd_getfd (5.6) needs ptrace access: our own descendant, same uid. */
	int lfd = (int)syscall(__NR_pidfd_getfd, s->cmd_pidfd, n, 0);
	if (lfd < 0) {
		int e = errno;
		return nono_fail(err, e == ENOSYS ? -EOPNOTSUPP : -e,
				 "taking the seccomp listener from the child with pidfd_getfd "
				 "(kernel 5.6+): %s", strerror(e));
	}
	int rc = nono_supervisor_start(lfd, caps, o->audit, &s->sup, err);
	if (rc < 0) {
		s->sup = NULL;
		return rc;
	}
	char ack = 1;
	ssize_t w;
	do
		w = write(s->ack[1], &ack, 1);
	while (w < 0 && errno == EINTR);
	if (w != 1)
		return nono_fail(err, -errno, "acknowledging the listener handoff: %s", strerror(errno));
	close(s->ack[1]);
	s->ack[1] = -1;
	return 0;
}

/* The listener handoff, once both its messages are in: the command's pidfd from the reaper (fd
 * number s->cmd_pidfd_n there), then the listener (fd number s->listener_n in the command). Done
 * only now because only now are both alive for sure: the command blocks for our ack, and the
 * reaper outlives it. (Taken earlier, a command that failed or exited at once could have taken the
 * reaper with it, and pidfd_getfd would report ESRCH instead of the real error.) */
static int handoff(struct exec_state *s, const nono_caps *caps, const nono_exec_opts *o,
		   nono_error *err)
{
	s->cmd_pidfd = (int)syscall(__NR_pidfd_getfd, s->pidfd, s->cmd_pidfd_n, 0);
	if (s->cmd_pidfd < 0) {
		int e = errno;
		return nono_fail(err, e == ENOSYS ? -EOPNOTSUPP : -e,
				 "taking the command's pidfd from the reaper with pidfd_getfd "
				 "(kernel 5.6+): %s", strerror(e));
	}
	int n = s->listener_n;
	s->listener_n = -1;
	return take_listener(s, n, caps, o, err);
}

/* Phase 1: until execve succeeded (EOF on the CLOEXEC pipe: the reaper closed its end after its
 * two messages, the command's end closed on exec) or a failure was reported. Handles the listener
 * handoff on the way (the reaper's and the command's messages are not ordered). */
static int await_exec(struct exec_state *s, const nono_caps *caps, const nono_exec_opts *o,
		      nono_error *err)
{
	for (;;) {
		struct child_msg m;
		int r = read_msg(s->msg[0], &m);
		if (r < 0)
			return nono_fail(err, r, "reading from the child's setup pipe: %s", strerror(-r));
		if (r == 0) {
			if (s->cmd_pid <= 0 || s->listener_n >= 0)
				return nono_fail(err, -EPROTO, "the reaper exited before the command started");
			return 0; /* exec happened */
		}
		if (m.stage == ST_CMD_PID || m.stage == ST_CMD_PIDFD) {
			int *slot = m.stage == ST_CMD_PID ? &s->cmd_pid : &s->cmd_pidfd_n;
			if (*slot >= 0 || m.value < 0)
				return nono_fail(err, -EPROTO, "unexpected message from the reaper");
			*slot = m.value;
			if (m.stage == ST_CMD_PIDFD && s->listener_n >= 0) {
				int rc = handoff(s, caps, o, err);
				if (rc < 0)
					return rc;
			}
			continue;
		}
		if (m.stage == ST_LISTENER) {
			if (!s->plan.notify || s->sup || s->listener_n >= 0 || m.value < 0)
				return nono_fail(err, -EPROTO, "unexpected listener handoff from the child");
			s->listener_n = m.value;
			if (s->cmd_pidfd_n >= 0) {
				int rc = handoff(s, caps, o, err);
				if (rc < 0)
					return rc;
			}
			continue;
		}
		int e = m.value > 0 ? m.value : EIO;
		if (m.stage == ST_EXEC) {
			if (e == ENOENT)
				return nono_fail(err, -ENOENT, "program not found: %s (execve: %s)", s->path,
						 strerror(e));
			if (e == EACCES || e == EPERM || e == ENOEXEC || e == EISDIR || e == ETXTBSY)
				return nono_fail(err, -EACCES,
						 "not executable%s: %s (execve: %s)",
						 e == EACCES ? " under this policy" : "", s->path, strerror(e));
		}
		/* Keep -ENOENT / -EACCES meaning "program not found / not executable" only. The
		 * kernel refusing to install the sandbox (e.g. EBUSY: another seccomp listener
		 * already watches us) is "cannot enforce". */
		int code = m.stage == ST_PLAN ? -EOPNOTSUPP
			   : (e == ENOENT || e == EACCES) ? -EIO
							  : -e;
		return nono_fail(err, code, "child setup failed while %s: %s", stage_name(m.stage),
				 strerror(e));
	}
}

/* Phase 2: capture, timeout, exit. */
static int supervise_run(struct exec_state *s, const nono_exec_opts *o, nono_exec_result *res,
			 nono_error *err)
{
	int64_t deadline = -1, grace = -1;
	if (o->timeout_secs > 0) {
		double msd = o->timeout_secs * 1000.0;
		int64_t ms = msd > 1e15 ? (int64_t)1e15 : (int64_t)msd;
		if ((double)ms < msd)
			ms++; /* round up: never kill early (and no libm for ceil) */
		deadline = mono_ms() + ms;
	}
	bool alive = true;
	int status = 0;
	int fail = 0;
	for (;;) {
		struct pollfd pfd[3];
		int n = 0, ipid = -1, iout = -1, ierr = -1;
		if (alive) {
			ipid = n;
			pfd[n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
		}
		if (s->out.fd >= 0) {
			iout = n;
			pfd[n++] = (struct pollfd){.fd = s->out.fd, .events = POLLIN};
		}
		if (s->errb.fd >= 0) {
			ierr = n;
			pfd[n++] = (struct pollfd){.fd = s->errb.fd, .events = POLLIN};
		}
		if (n == 0)
			break;
		int64_t until = alive ? deadline : grace;
		int64_t left = -1;
		if (until >= 0) {
			left = until - mono_ms();
			if (left < 0)
				left = 0;
		}
		/* A pidfd reports exit, not stop: in foreground mode look for a stopped command
		 * (^Z) every NONO_STOP_POLL_MS. */
		bool watch_stop = alive && s->tty_fd >= 0;
		bool tick = watch_stop && (left < 0 || left > NONO_STOP_POLL_MS);
		if (tick)
			left = NONO_STOP_POLL_MS;
		struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
		int pr = ppoll(pfd, (nfds_t)n, left >= 0 ? &ts : NULL, NULL);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			fail = nono_fail(err, -errno, "ppoll: %s", strerror(errno));
			break;
		}
		if (watch_stop)
			follow_stop(s);
		if (pr == 0) {
			if (tick)
				continue;
			if (alive) { /* the timeout: the reaper kills the whole tree, then exits */
				res->timed_out = true;
				reaper_stop(s->pid);
				deadline = -1;
				continue;
			}
			break; /* drain grace over: a survivor of a killed reaper holds the pipe */
		}
		struct capbuf *bufs[2] = {&s->out, &s->errb};
		int idx[2] = {iout, ierr};
		for (int i = 0; i < 2; i++) {
			if (idx[i] < 0 || !pfd[idx[i]].revents)
				continue;
			int r = capbuf_read(bufs[i]);
			if (r == 1 || (r < 0 && r != -EFBIG && r != -ENOMEM)) {
				close(bufs[i]->fd);
				bufs[i]->fd = -1;
			} else if (r < 0) {
				fail = r == -EFBIG
					? nono_fail(err, -EFBIG,
						    "captured %s exceeded %u MiB: command killed",
						    bufs[i]->name, NONO_CAPTURE_MAX >> 20)
					: nono_fail(err, -ENOMEM, "out of memory capturing %s",
						    bufs[i]->name);
				break;
			}
		}
		if (fail)
			break;
		if (ipid >= 0 && pfd[ipid].revents) {
			/* The reaper exits only after the command and everything it left behind
			 * are gone; its status is the command's. */
			int rc = reap(s->pid, &status);
			if (rc < 0) {
				fail = nono_fail(err, rc, "waitpid: %s", strerror(-rc));
				break;
			}
			s->pid = -1;
			alive = false;
			grace = mono_ms() + NONO_DRAIN_GRACE_MS;
		}
	}
	if (fail) {
		abort_child(s);
		return fail;
	}
	if (alive) /* unreachable: the loop ends only when reaped or failed */
		return nono_fail(err, -EIO, "internal error: child not reaped");
	if (WIFEXITED(status)) {
		res->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		res->term_signal = WTERMSIG(status);
		res->exit_code = -res->term_signal;
	}
	if (res->timed_out)
		res->exit_code = 124;
	return 0;
}

/* Stdio source for the child: the caller's fd if it was open when nono_exec was called, else
 * /dev/null. Checked at entry, before we open anything: with fd 0-2 closed, our own fds (ruleset,
 * pipes, pidfds) would take those numbers and be handed to the command as its stdio. */
static int stdio_src(int fd, bool open_at_entry, int devnull)
{
	return open_at_entry ? fd : devnull;
}

int nono_exec(const nono_caps *caps, const char *const *argv, const nono_exec_opts *opts,
	      nono_exec_result *result, nono_error *err)
{
	nono_error_clear(err);
	bool stdio_open[3];
	for (int i = 0; i < 3; i++)
		stdio_open[i] = fcntl(i, F_GETFD) >= 0;
	if (result)
		memset(result, 0, sizeof *result);
	if (!caps || !argv || !argv[0] || !argv[0][0] || !result)
		return nono_fail(err, -EINVAL, "nono_exec: caps, argv[0] and result are required");
	nono_exec_opts defaults;
	if (!opts) {
		nono_exec_opts_init(&defaults);
		opts = &defaults;
	}
	if (!(opts->timeout_secs >= 0) || isinf(opts->timeout_secs))
		return nono_fail(err, -EINVAL, "timeout must be a finite number of seconds >= 0");
	if (opts->flags & ~NONO_FLAG_BEST_EFFORT)
		return nono_fail(err, -EINVAL, "unknown flags 0x%x", opts->flags & ~NONO_FLAG_BEST_EFFORT);

	struct exec_state s = {
		.devnull = -1, .cwd_fd = -1, .tty_fd = -1, .pidfd = -1, .pid = -1,
		.cmd_pid = -1, .cmd_pidfd = -1, .cmd_pidfd_n = -1, .listener_n = -1,
		.msg = {-1, -1}, .ack = {-1, -1}, .outp = {-1, -1}, .errp = {-1, -1},
		.out = {.fd = -1, .name = "stdout"}, .errb = {.fd = -1, .name = "stderr"},
	};
	int rc;
	bool forked = false;

	/* Environment: the one builder (loader variables refused in `env`, dropped when inherited). */
	rc = nono_env_build(opts->inherit_env, opts->env, NULL, &s.envp, err);
	if (rc < 0)
		goto out;
	if (opts->cwd) {
		s.cwd_fd = open(opts->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s.cwd_fd < 0) {
			/* -EINVAL, not -ENOENT: that code means "program not found". */
			rc = nono_fail(err, -EINVAL, "working directory %s: %s", opts->cwd,
				       strerror(errno));
			goto out;
		}
	}
	s.path = resolve_program(argv[0], s.envp, s.cwd_fd, &rc, err);
	if (!s.path)
		goto out;
	rc = nono_plan_prepare(caps, opts->flags, &s.plan, err);
	if (rc == -ENOENT || rc == -EACCES) /* a grant path vanished: a policy error */
		rc = err ? (err->code = -EINVAL) : -EINVAL;
	if (rc < 0)
		goto out;
	s.plan_ready = true;

	s.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (s.devnull < 0) {
		rc = nono_fail(err, -errno, "/dev/null: %s", strerror(errno));
		goto out;
	}
	if (pipe2(s.msg, O_CLOEXEC) < 0 || (s.plan.notify && pipe2(s.ack, O_CLOEXEC) < 0) ||
	    (opts->capture && (pipe2(s.outp, O_CLOEXEC) < 0 || pipe2(s.errp, O_CLOEXEC) < 0))) {
		rc = nono_fail(err, -errno, "pipe2: %s", strerror(errno));
		goto out;
	}
	/* The terminal goes to the child only if the child's stdin and stdout are ours (the terminal). */
	if (opts->foreground && opts->pass_stdin && !opts->capture)
		s.tty_fd = pick_tty();

	struct rlimit rl;
	unsigned close_max = 1u << 16;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		close_max = rl.rlim_cur > (1u << 20) ? (1u << 20) : (unsigned)rl.rlim_cur;

	struct child_ctx c = {
		.path = s.path,
		.argv = (char *const *)argv,
		.envp = s.envp,
		.in_fd = opts->pass_stdin ? stdio_src(0, stdio_open[0], s.devnull) : s.devnull,
		.out_fd = opts->capture ? s.outp[1] : stdio_src(1, stdio_open[1], s.devnull),
		.err_fd = opts->capture ? s.errp[1] : stdio_src(2, stdio_open[2], s.devnull),
		.cwd_fd = s.cwd_fd,
		.tty_fd = s.tty_fd,
		.msg_w = s.msg[1],
		.ack_r = s.ack[0],
		.parent = getpid(),
		.close_max = close_max,
		.plan = &s.plan,
	};

	/* Block every signal across fork so none of the caller's handlers runs in the child before
	 * it has reset them (it unblocks just before execve). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s.pid = fork();
	if (s.pid == 0)
		reaper_main(&c);
	int fork_errno = errno;
	forked = s.pid > 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s.pid < 0) {
		rc = nono_fail(err, -fork_errno, "fork: %s", strerror(fork_errno));
		goto out;
	}
	close(s.msg[1]);
	s.msg[1] = -1;
	if (s.ack[0] >= 0) {
		close(s.ack[0]);
		s.ack[0] = -1;
	}
	if (opts->capture) {
		close(s.outp[1]);
		close(s.errp[1]);
		s.outp[1] = s.errp[1] = -1;
		s.out.fd = nono_steal_fd(&s.outp[0]);
		s.errb.fd = nono_steal_fd(&s.errp[0]);
		if (fcntl(s.out.fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(s.errb.fd, F_SETFL, O_NONBLOCK) < 0) {
			rc = nono_fail(err, -errno, "fcntl(O_NONBLOCK): %s", strerror(errno));
			abort_child(&s);
			goto out;
		}
	}
	/* pidfd_open (5.3): the reaper is ours and unreaped, so the pid is still its own. */
	s.pidfd = (int)syscall(__NR_pidfd_open, s.pid, 0);
	if (s.pidfd < 0) {
		int e = errno;
		rc = nono_fail(err, e == ENOSYS ? -EOPNOTSUPP : -e,
			       "pidfd_open (kernel 5.3+): %s", strerror(e));
		abort_child(&s);
		goto out;
	}

	rc = await_exec(&s, caps, opts, err);
	if (rc == 0 && s.plan.notify && !s.sup)
		rc = nono_fail(err, -EPROTO, "supervised policy but the child handed over no listener");
	if (rc < 0) {
		abort_child(&s);
		goto out;
	}
	close(s.msg[0]);
	s.msg[0] = -1;

	rc = supervise_run(&s, opts, result, err);
	if (rc < 0)
		goto out;
	result->report = s.plan.report;
	result->out = steal_pointer(&s.out.data);
	result->out_len = s.out.len;
	result->err = steal_pointer(&s.errb.data);
	result->err_len = s.errb.len;
	if (result->out_len == 0) {
		free(result->out);
		result->out = NULL;
	}
	if (result->err_len == 0) {
		free(result->err);
		result->err = NULL;
	}
out:
	if (forked)
		tty_restore(s.tty_fd);
	state_cleanup(&s);
	if (rc < 0)
		memset(result, 0, sizeof *result);
	return rc;
}
