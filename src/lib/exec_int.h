/* exec_int.h — shared by exec.c (the parent) and exec_child.c (the reaper and the command
 * between fork and execve). Never installed. */
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
};

/* The forked child: becomes the reaper, forks the command, never returns. Async-signal-safe. */
__attribute__((noreturn)) NONO_HIDDEN void nono_exec_reaper_main(const struct child_ctx *c);

#endif /* NONO_EXEC_INT_H */
