/* exec_int.h — shared by the files of nono_exec: exec.c (preparation, fork, the setup handshake),
 * exec_resolve.c (program resolution), exec_wait.c (the wait / capture / job-control / signal
 * forwarding loop) and exec_child.c (the reaper and the command between fork and execve).
 * Never installed. */
#ifndef NONO_EXEC_INT_H
#define NONO_EXEC_INT_H

#include "internal.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

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
	ST_MOUNTS,         /* the private mount namespace covering deny paths (mounts.c) */
	ST_CAPS,           /* a root command's CAP_DAC_READ_SEARCH (mounts.c) */
	ST_LISTENER = 100, /* not an error: value is the listener fd number in the command */
	ST_CMD_PID,        /* not an error, from the reaper: value is the command's pid */
	ST_CMD_PIDFD,      /* not an error, from the reaper: its fd number of the command's pidfd */
};

struct child_msg {
	int32_t stage;
	int32_t value; /* errno, or the listener fd number for ST_LISTENER */
};

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
	const char *remove_dir;    /* nono_exec_opts.remove_dir: removed by the reaper at its end */
	uint64_t sig_reset;        /* bit s-1 set: signal s gets SIG_DFL before execve */
};

/* A capture pipe's read end and what was read from it. */
struct capbuf {
	unsigned char *data;
	size_t len, cap;
	int fd; /* read end, -1 when closed */
	const char *name;
};

/* The parent's state for one nono_exec call. */
struct exec_state {
	struct nono_plan plan;
	uint64_t audit_lost; /* from nono_supervisor_stop */
	bool plan_ready;
	char **envp;
	char *path;
	int devnull, cwd_fd, tty_fd;
	int sigfd;       /* forward_signals: signalfd of the forwarded signals, else -1 */
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

/* The signals forwarded to the command (by the reaper always; by the caller's nono_exec with
 * forward_signals): the ones that ask a program to stop, which reached the command directly
 * before there was a reaper. */
NONO_HIDDEN extern const int nono_exec_forwarded_signals[4];

/* exec_resolve.c: argv0 like execvp, in PATH of the child's environment `envp` (else the default
 * path), relative to the child's cwd (`cwd_fd`, -1: ours). Returns the path (malloc'd), or NULL
 * with *rc = -ENOENT (not found) / -EACCES (not an executable file) / -ENOMEM and `err` set. */
NONO_HIDDEN char *nono_exec_resolve_program(const char *argv0, char *const *envp, int cwd_fd,
					    int *rc, nono_error *err);

/* exec_wait.c */
/* The terminal for a foreground run, or -1 (see the definition for who qualifies). */
NONO_HIDDEN int nono_exec_tty_pick(void);
/* Give the terminal (`tty_fd` >= 0) back to our process group. */
NONO_HIDDEN void nono_exec_tty_restore(int tty_fd);
/* Ask the reaper to kill the command's whole tree and exit. Only while it is unreaped. */
NONO_HIDDEN void nono_exec_reaper_stop(pid_t pid);
/* waitpid(pid) through EINTR: 0, or -errno. */
NONO_HIDDEN int nono_exec_reap(pid_t pid, int *status);
/* After execve: capture, timeout, ^Z, forwarded signals, until the reaper is reaped (then the
 * result's exit fields are set) or a failure (then the tree is killed and the reaper reaped). */
NONO_HIDDEN int nono_exec_wait(struct exec_state *s, const nono_exec_opts *o,
			       nono_exec_result *res, nono_error *err);

/* exec_rmtree.c: remove `path` and everything below it, following no symlink. Async-signal-safe
 * (the reaper's last act). Returns 0, or -1 when something stayed. */
NONO_HIDDEN int nono_exec_rmtree(const char *path);

/* The forked child: becomes the reaper, forks the command, never returns. Async-signal-safe. */
__attribute__((noreturn)) NONO_HIDDEN void nono_exec_reaper_main(const struct child_ctx *c);

#endif /* NONO_EXEC_INT_H */
