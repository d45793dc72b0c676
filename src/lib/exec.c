/* exec.c — sandboxed exec: run argv under a capability set and report how it ended. This file
 * prepares, forks and does the setup handshake; the other pieces have their own files.
 *
 * Shape (design.md §3 "prepare before fork"):
 *   parent, before fork: environment (nono_env_build), program resolution in the child's PATH
 *     (exec_resolve.c), the enforcement plan (Landlock ruleset fd + seccomp program), pipes,
 *     /dev/null, cwd fd, the terminal decision, the signalfd (forward_signals), and an fd-closing
 *     upper bound;
 *   reaper (the forked child, exec_child.c, never sandboxed, async-signal-safe code only):
 *     becomes a child subreaper, forks the command, and owns every descendant of it (below);
 *   command (the reaper's child, exec_child.c), between fork and execve: only async-signal-safe
 *     syscalls on memory prepared above; errors go to a CLOEXEC pipe as {stage, errno} and it
 *     _exits(127);
 *   parent, after fork: pidfd_open (5.3) of the reaper, the command's pidfd taken from the reaper
 *     (pidfd_getfd, 5.6), the seccomp listener handoff when the plan is supervised (here), then
 *     one ppoll loop (exec_wait.c) over the reaper's pidfd, the capture pipes and the signalfd
 *     (timeout, capture limit, ^Z, forwarded signals), reap, stop the supervisor.
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
 *     reached the command before there was a reaper (with forward_signals, nono_exec passes the
 *     caller's own to it: exec_wait.c);
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
 * that owns the terminal); the reaper has a process group of its own (above), in the caller's
 * session. */
#include "exec_int.h"
#include "fsaudit.h"
#include "uapi.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

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
	case ST_MOUNTS: return "covering deny paths in a private mount namespace";
	case ST_CAPS: return "dropping CAP_DAC_READ_SEARCH";
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
		s->audit_lost = nono_supervisor_stop(s->sup);
	s->sup = NULL;
	if (s->plan_ready)
		nono_plan_release(&s->plan);
	nono_strv_free(s->envp);
	free(s->path);
	int *fds[] = {&s->devnull, &s->cwd_fd,	&s->sigfd,  &s->pidfd,
		      &s->cmd_pidfd, &s->out.fd, &s->errb.fd};
	for (size_t i = 0; i < N_ELEMENTS(fds); i++)
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
		nono_exec_reaper_stop(s->pid);
		nono_exec_reap(s->pid, &st);
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
		.proxy_v6 = s->plan.proxy_v6,
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
		int code = m.stage == ST_PLAN || m.stage == ST_MOUNTS ? -EOPNOTSUPP
			   : (e == ENOENT || e == EACCES) ? -EIO
							  : -e;
		return nono_fail(err, code, "child setup failed while %s: %s", stage_name(m.stage),
				 strerror(e));
	}
}

/* Stdio source for the child: the caller's fd if it was open when nono_exec was called, else
 * /dev/null. Checked at entry, before we open anything: with fd 0-2 closed, our own fds (ruleset,
 * pipes, pidfds) would take those numbers and be handed to the command as its stdio. */
static int stdio_src(int fd, bool open_at_entry, int devnull)
{
	return open_at_entry ? fd : devnull;
}

static int check_args(const nono_caps *caps, const char *const *argv, const nono_exec_opts *o,
		      nono_exec_result *result, nono_error *err)
{
	if (!caps || !argv || !argv[0] || !argv[0][0] || !result)
		return nono_fail(err, -EINVAL, "nono_exec: caps, argv[0] and result are required");
	if (!(o->timeout_secs >= 0) || isinf(o->timeout_secs))
		return nono_fail(err, -EINVAL, "timeout must be a finite number of seconds >= 0");
	if (o->flags & ~NONO_FLAG_BEST_EFFORT)
		return nono_fail(err, -EINVAL, "unknown flags 0x%x", o->flags & ~NONO_FLAG_BEST_EFFORT);
	return 0;
}

/* forward_signals: a signalfd for the forwarded signals, which the caller must have blocked in
 * every thread (else one could be delivered to another thread, or to this one outside the
 * loop, and end the caller instead of reaching the command). */
static int open_sigfd(struct exec_state *s, nono_error *err)
{
	sigset_t set, cur;
	sigemptyset(&set);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (size_t i = 0; i < N_ELEMENTS(nono_exec_forwarded_signals); i++) {
		int sig = nono_exec_forwarded_signals[i];
		if (!sigismember(&cur, sig))
			return nono_fail(err, -EINVAL, "forward_signals: block SIGTERM, SIGHUP, SIGINT "
					 "and SIGQUIT in every thread before calling nono_exec");
		sigaddset(&set, sig);
	}
	s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sigfd < 0)
		return nono_fail(err, -errno, "signalfd: %s", strerror(errno));
	return 0;
}

/* Everything before the fork: environment, cwd, program, plan, /dev/null, pipes, terminal. */
static int prepare(struct exec_state *s, const nono_caps *caps, const char *argv0,
		   const nono_exec_opts *o, nono_error *err)
{
	/* Environment: the one builder (loader variables refused in `env`, dropped when inherited). */
	int rc = nono_env_build(o->inherit_env, o->env, NULL, &s->envp, err);
	if (rc < 0)
		return rc;
	if (o->cwd) {
		s->cwd_fd = open(o->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->cwd_fd < 0) /* -EINVAL, not -ENOENT: that code means "program not found". */
			return nono_fail(err, -EINVAL, "working directory %s: %s", o->cwd,
					 strerror(errno));
	}
	s->path = nono_exec_resolve_program(argv0, s->envp, s->cwd_fd, &rc, err);
	if (!s->path)
		return rc;
	rc = nono_plan_prepare(caps, o->flags, &s->plan, err);
	if (rc == -ENOENT || rc == -EACCES) /* a grant path vanished: a policy error */
		rc = err ? (err->code = -EINVAL) : -EINVAL;
	if (rc < 0)
		return rc;
	s->plan_ready = true;
	if (o->forward_signals && (rc = open_sigfd(s, err)) < 0)
		return rc;
	s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (s->devnull < 0)
		return nono_fail(err, -errno, "/dev/null: %s", strerror(errno));
	if (pipe2(s->msg, O_CLOEXEC) < 0 || (s->plan.notify && pipe2(s->ack, O_CLOEXEC) < 0) ||
	    (o->capture && (pipe2(s->outp, O_CLOEXEC) < 0 || pipe2(s->errp, O_CLOEXEC) < 0)))
		return nono_fail(err, -errno, "pipe2: %s", strerror(errno));
	/* The terminal goes to the child only if the child's stdin and stdout are ours (the terminal). */
	if (o->foreground && o->pass_stdin && !o->capture)
		s->tty_fd = nono_exec_tty_pick();
	return 0;
}

/* The signals whose disposition the command must not inherit from the caller: the ignored ones
 * (exec keeps SIG_IGN) and the caught ones (a handler must not run in the child before execve).
 * Read from /proc/self/status here, once, so the child resets only those rather than calling
 * sigaction for each of the 64 signals between its seccomp filter and execve (issue 10's startup
 * target: ~60 syscalls, each through the new filter). Without /proc, or for a mask it cannot
 * parse: all. */
static uint64_t signals_to_reset(void)
{
	struct nono_proc_field f[] = {{.key = "SigIgn", .base = 16}, {.key = "SigCgt", .base = 16}};
	if (nono_proc_status_fields(0, f, N_ELEMENTS(f)) < 0)
		return ~0ull;
	return (uint64_t)f[0].value | (uint64_t)f[1].value;
}

/* Fork the reaper on what prepare() built. */
static int spawn(struct exec_state *s, const char *const *argv, const nono_exec_opts *o,
		 const bool stdio_open[3], nono_error *err)
{
	struct rlimit rl;
	unsigned close_max = 1u << 16;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		close_max = rl.rlim_cur > (1u << 20) ? (1u << 20) : (unsigned)rl.rlim_cur;
	struct child_ctx c = {
		.path = s->path,
		.argv = (char *const *)argv,
		.envp = s->envp,
		.in_fd = o->pass_stdin ? stdio_src(0, stdio_open[0], s->devnull) : s->devnull,
		.out_fd = o->capture ? s->outp[1] : stdio_src(1, stdio_open[1], s->devnull),
		.err_fd = o->capture ? s->errp[1] : stdio_src(2, stdio_open[2], s->devnull),
		.cwd_fd = s->cwd_fd,
		.tty_fd = s->tty_fd,
		.msg_w = s->msg[1],
		.ack_r = s->ack[0],
		.parent = getpid(),
		.close_max = close_max,
		.plan = &s->plan,
		.remove_dir = o->remove_dir,
		.sig_reset = signals_to_reset(),
	};
	/* Block every signal across fork so none of the caller's handlers runs in the child before
	 * it has reset them (it unblocks just before execve). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s->pid = fork();
	if (s->pid == 0)
		nono_exec_reaper_main(&c);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->pid < 0)
		return nono_fail(err, -fork_errno, "fork: %s", strerror(fork_errno));
	return 0;
}

/* After the fork: drop the child's ends, make the capture pipes non-blocking, open the reaper's
 * pidfd. On failure the caller aborts the child. */
static int after_fork(struct exec_state *s, const nono_exec_opts *o, nono_error *err)
{
	close(s->msg[1]);
	s->msg[1] = -1;
	if (s->ack[0] >= 0) {
		close(s->ack[0]);
		s->ack[0] = -1;
	}
	if (o->capture) {
		close(s->outp[1]);
		close(s->errp[1]);
		s->outp[1] = s->errp[1] = -1;
		s->out.fd = nono_steal_fd(&s->outp[0]);
		s->errb.fd = nono_steal_fd(&s->errp[0]);
		if (fcntl(s->out.fd, F_SETFL, O_NONBLOCK) < 0 ||
		    fcntl(s->errb.fd, F_SETFL, O_NONBLOCK) < 0)
			return nono_fail(err, -errno, "fcntl(O_NONBLOCK): %s", strerror(errno));
	}
	/* pidfd_open (5.3): the reaper is ours and unreaped, so the pid is still its own. */
	s->pidfd = (int)syscall(__NR_pidfd_open, s->pid, 0);
	if (s->pidfd < 0) {
		int e = errno;
		return nono_fail(err, e == ENOSYS ? -EOPNOTSUPP : -e, "pidfd_open (kernel 5.3+): %s",
				 strerror(e));
	}
	return 0;
}

static void take_output(struct exec_state *s, nono_exec_result *result)
{
	result->report = s->plan.report;
	result->out_len = s->out.len;
	result->err_len = s->errb.len;
	result->out = steal_pointer(&s->out.data);
	result->err = steal_pointer(&s->errb.data);
	if (result->out_len == 0) {
		free(result->out);
		result->out = NULL;
	}
	if (result->err_len == 0) {
		free(result->err);
		result->err = NULL;
	}
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
	nono_exec_opts defaults;
	if (!opts) {
		nono_exec_opts_init(&defaults);
		opts = &defaults;
	}
	int rc = check_args(caps, argv, opts, result, err);
	if (rc < 0)
		return rc;

	struct exec_state s = {
		.devnull = -1, .cwd_fd = -1, .tty_fd = -1, .sigfd = -1, .pidfd = -1, .pid = -1,
		.cmd_pid = -1, .cmd_pidfd = -1, .cmd_pidfd_n = -1, .listener_n = -1,
		.msg = {-1, -1}, .ack = {-1, -1}, .outp = {-1, -1}, .errp = {-1, -1},
		.out = {.fd = -1, .name = "stdout"}, .errb = {.fd = -1, .name = "stderr"},
	};
	bool forked = false;
	struct nono_fsaudit fsa = {.fd = -1, .state = 0};
	if ((rc = prepare(&s, caps, argv[0], opts, err)) < 0)
		goto out;
	if (opts->fs_audit) /* before the fork: records of the whole run are buffered */
		(void)nono_fsaudit_open(&fsa, s.plan.landlock_abi);
	if ((rc = spawn(&s, argv, opts, stdio_open, err)) < 0)
		goto out;
	forked = true;
	if ((rc = after_fork(&s, opts, err)) == 0)
		rc = await_exec(&s, caps, opts, err);
	if (rc == 0 && s.plan.notify && !s.sup)
		rc = nono_fail(err, -EPROTO, "supervised policy but the child handed over no listener");
	if (rc < 0) {
		abort_child(&s);
		goto out;
	}
	close(s.msg[0]);
	s.msg[0] = -1;
	rc = nono_exec_wait(&s, opts, result, err);
	if (rc == 0 || rc == -EFBIG) { /* -EFBIG: keep what was captured, up to the cap */
		struct nono_fsaudit_sink sink = {opts->audit, opts->audit_fd, &s.audit_lost};
		nono_fsaudit_collect(&fsa, s.cmd_pid, &sink);
		take_output(&s, result);
	}
out:
	nono_fsaudit_close(&fsa);
	if (forked)
		nono_exec_tty_restore(s.tty_fd);
	state_cleanup(&s);
	if (rc < 0 && rc != -EFBIG)
		memset(result, 0, sizeof *result);
	else
		result->audit_lost = s.audit_lost;
	if (rc == 0)
		result->fs_audit = fsa.state;
	return rc;
}
