/* exec_wait.c — nono_exec after execve: one ppoll loop over the reaper's pidfd, the capture pipes
 * and (forward_signals) a signalfd, with the timeout, the capture cap, ^Z job control in
 * foreground mode, and the signals the caller asked to pass on to the command. The reaper
 * (exec_child.c) exits only after the command and everything it left behind are gone, so the
 * loop ends when the reaper is reaped (and the pipes drained). */
#include "exec_int.h"

#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>

const int nono_exec_forwarded_signals[4] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
int nono_exec_tty_pick(void)
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
void nono_exec_tty_restore(int tty_fd)
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

/* SIGCONT too: the reaper may be stopped (^Z). */
void nono_exec_reaper_stop(pid_t pid)
{
	kill(pid, REAPER_KILL_SIG);
	kill(pid, SIGCONT);
}

int nono_exec_reap(pid_t pid, int *status)
{
	for (;;) {
		if (waitpid(pid, status, 0) == pid)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Foreground mode: if the command was stopped (^Z sends SIGTSTP to the terminal's foreground
 * group, which is the command's, not ours), act like a job of the user's shell: take the terminal
 * back and stop ourselves, so the shell regains control and sees nono as the stopped job. When we
 * are continued (`fg`), give the terminal back to the command and continue its group. If our own
 * group is orphaned or SIGTSTP is ignored, the kernel drops the stop and we continue at once. */
static void follow_stop(struct exec_state *s)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)s->pid, &si, WSTOPPED | WNOHANG) < 0 || si.si_pid != s->pid ||
	    si.si_code != CLD_STOPPED)
		return;
	nono_exec_tty_restore(s->tty_fd);
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

/* Pass the signals queued on the signalfd to the reaper, which passes them to the command's
 * process group (exec_child.c). Only called while the reaper is unreaped, so its pid is its own.
 * Signals that arrive after the reaper was reaped stay pending for the caller. */
static void forward_signals(struct exec_state *s)
{
	struct signalfd_siginfo si[4];
	ssize_t n;
	while ((n = read(s->sigfd, si, sizeof si)) > 0)
		for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
			kill(s->pid, (int)si[i].ssi_signo);
}

/* One round of the loop: the fds to watch and where each sits in the poll set (-1: not watched). */
struct pollset {
	struct pollfd pfd[4];
	nfds_t n;
	int ipid, isig, icap[2];
};

static void pollset_build(const struct exec_state *s, bool alive, struct pollset *ps)
{
	ps->n = 0;
	ps->ipid = ps->isig = ps->icap[0] = ps->icap[1] = -1;
	if (alive) {
		ps->ipid = (int)ps->n;
		ps->pfd[ps->n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
		if (s->sigfd >= 0) {
			ps->isig = (int)ps->n;
			ps->pfd[ps->n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		}
	}
	const struct capbuf *bufs[2] = {&s->out, &s->errb};
	for (int i = 0; i < 2; i++)
		if (bufs[i]->fd >= 0) {
			ps->icap[i] = (int)ps->n;
			ps->pfd[ps->n++] = (struct pollfd){.fd = bufs[i]->fd, .events = POLLIN};
		}
}

static bool ready(const struct pollset *ps, int i)
{
	return i >= 0 && ps->pfd[i].revents;
}

/* Read the capture pipes that are ready; close those at EOF. 0, or a failure (-EFBIG, -ENOMEM). */
static int drain_captures(struct exec_state *s, const struct pollset *ps, nono_error *err)
{
	struct capbuf *bufs[2] = {&s->out, &s->errb};
	for (int i = 0; i < 2; i++) {
		if (!ready(ps, ps->icap[i]))
			continue;
		int r = capbuf_read(bufs[i]);
		if (r == 1 || (r < 0 && r != -EFBIG && r != -ENOMEM)) {
			close(bufs[i]->fd);
			bufs[i]->fd = -1;
		} else if (r == -EFBIG) {
			return nono_fail(err, -EFBIG, "captured %s exceeded %u MiB: command killed",
					 bufs[i]->name, NONO_CAPTURE_MAX >> 20);
		} else if (r < 0) {
			return nono_fail(err, -ENOMEM, "out of memory capturing %s", bufs[i]->name);
		}
	}
	return 0;
}

/* The timeout as an absolute CLOCK_MONOTONIC deadline in ms, -1 for none. Rounded up: never kill
 * early (and no libm for ceil). */
static int64_t deadline_from(double timeout_secs)
{
	if (!(timeout_secs > 0))
		return -1;
	double msd = timeout_secs * 1000.0;
	int64_t ms = msd > 1e15 ? (int64_t)1e15 : (int64_t)msd;
	if ((double)ms < msd)
		ms++;
	return mono_ms() + ms;
}

/* ppoll's timeout in ms for this round (-1: none). In foreground mode a pidfd reports exit, not
 * stop: look for a stopped command (^Z) every NONO_STOP_POLL_MS (*tick). */
static int64_t round_timeout(const struct exec_state *s, bool alive, int64_t until, bool *tick)
{
	int64_t left = -1;
	if (until >= 0) {
		left = until - mono_ms();
		if (left < 0)
			left = 0;
	}
	*tick = alive && s->tty_fd >= 0 && (left < 0 || left > NONO_STOP_POLL_MS);
	return *tick ? NONO_STOP_POLL_MS : left;
}

static void set_exit(int status, nono_exec_result *res)
{
	if (WIFEXITED(status)) {
		res->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		res->term_signal = WTERMSIG(status);
		res->exit_code = -res->term_signal;
	}
	if (res->timed_out)
		res->exit_code = 124;
}

int nono_exec_wait(struct exec_state *s, const nono_exec_opts *o, nono_exec_result *res,
		   nono_error *err)
{
	int64_t deadline = deadline_from(o->timeout_secs), grace = -1;
	bool alive = true;
	int status = 0, fail = 0;
	for (;;) {
		struct pollset ps;
		pollset_build(s, alive, &ps);
		if (ps.n == 0)
			break;
		bool tick;
		int64_t left = round_timeout(s, alive, alive ? deadline : grace, &tick);
		struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
		int pr = ppoll(ps.pfd, ps.n, left >= 0 ? &ts : NULL, NULL);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			fail = nono_fail(err, -errno, "ppoll: %s", strerror(errno));
			break;
		}
		if (alive && s->tty_fd >= 0)
			follow_stop(s);
		if (pr == 0) {
			if (tick)
				continue;
			if (!alive)
				break; /* drain grace over: a survivor of a killed reaper holds the pipe */
			res->timed_out = true; /* the reaper kills the whole tree, then exits */
			nono_exec_reaper_stop(s->pid);
			deadline = -1;
			continue;
		}
		if (ready(&ps, ps.isig))
			forward_signals(s);
		if ((fail = drain_captures(s, &ps, err)) < 0)
			break;
		if (ready(&ps, ps.ipid)) {
			/* The reaper's status is the command's. */
			int rc = nono_exec_reap(s->pid, &status);
			if (rc < 0) {
				fail = nono_fail(err, rc, "waitpid: %s", strerror(-rc));
				break;
			}
			s->pid = -1;
			alive = false;
			grace = mono_ms() + NONO_DRAIN_GRACE_MS;
		}
	}
	if (fail < 0) {
		if (s->pid > 0) {
			nono_exec_reaper_stop(s->pid);
			nono_exec_reap(s->pid, &status);
			s->pid = -1;
		}
		return fail;
	}
	if (alive) /* unreachable: the loop ends only when reaped or failed */
		return nono_fail(err, -EIO, "internal error: child not reaped");
	set_exit(status, res);
	return 0;
}
