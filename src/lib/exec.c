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
#include "exec_int.h"
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

/* ------------------------------------------------------------------------------------------------
 * The parent
 * ---------------------------------------------------------------------------------------------- */

void nono_exec_opts_init(nono_exec_opts *opts)
{
	if (opts) {
		memset(opts, 0, sizeof *opts);
		opts->audit_fd = -1;
	}
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
	struct nono_sup_config sc = {
		.net = s->plan.net,
		.proxy_port = s->plan.proxy_port,
		.ring = o->audit,
		.audit_fd = o->audit_fd,
		.audit_allowed = o->audit_allowed,
	};
	int rc = nono_supervisor_start(lfd, caps, &sc, &s->sup, err);
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
		nono_exec_reaper_main(&c);
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
