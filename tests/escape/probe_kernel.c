/* probe_kernel.c — kernel surfaces beside the network (issue 11): the keyring, netlink multicast
 * groups and user namespaces. One attempt per run, one verdict line (probe.h).
 *
 *   probe_kernel key_read DESC       search the user keyring for a "user" key DESC and read it
 *   probe_kernel key_add RING        add a "user" key to keyring RING (a serial number)
 *   probe_kernel key_clear RING      clear keyring RING
 *   probe_kernel request_key DESC    request_key("user", DESC, callout): an upcall to
 *                                    /sbin/request-key, run by the kernel as root
 *   probe_kernel nl_group            join RTNLGRP_LINK with NETLINK_ADD_MEMBERSHIP
 *   probe_kernel nl_bind_groups      bind a NETLINK_ROUTE socket with nl_groups = RTMGRP_LINK
 *   probe_kernel unshare_user        unshare(CLONE_NEWUSER)
 *   probe_kernel clone_user          clone(CLONE_NEWUSER | SIGCHLD)
 *   probe_kernel clone3_user         clone3 with CLONE_NEWUSER
 *   probe_kernel setns               setns(-1, CLONE_NEWUSER): EBADF when it reaches the kernel
 *   probe_kernel spawn               pthread_create + posix_spawn(/bin/true): must keep working
 */
#include "probe.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define KEY_SPEC_USER_KEYRING (-4)
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEYCTL_CLEAR 7
#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

extern char **environ;

static int key_read(const char *desc)
{
	long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0);
	if (id < 0)
		return probe_denied("keyctl_search", errno);
	char buf[256];
	long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf - 1);
	if (n < 0)
		return probe_denied("keyctl_read", errno);
	buf[n < (long)sizeof buf - 1 ? n : (long)sizeof buf - 1] = '\0';
	printf("ESCAPED read key %ld: %s\n", id, buf);
	return 0;
}

static int key_add(const char *ring)
{
	long r = syscall(SYS_add_key, "user", "nono-probe-added", "x", 1, atol(ring));
	return r < 0 ? probe_denied("add_key", errno) : probe_escaped("added a key");
}

static int key_clear(const char *ring)
{
	long r = syscall(SYS_keyctl, KEYCTL_CLEAR, atol(ring));
	return r < 0 ? probe_denied("keyctl_clear", errno) : probe_escaped("cleared the keyring");
}

static int request_key_upcall(const char *desc)
{
	long r = syscall(SYS_request_key, "user", desc, "nono-probe-callout", KEY_SPEC_SESSION_KEYRING);
	if (r < 0 && errno == EPERM)
		return probe_denied("request_key", errno);
	printf("ESCAPED request_key reached the kernel (%ld, errno %d)\n", r, r < 0 ? errno : 0);
	return 0;
}

static int nl_group(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return probe_denied("socket", errno);
	int g = RTNLGRP_LINK;
	if (setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
		return probe_denied("setsockopt", errno);
	return probe_escaped("joined RTNLGRP_LINK");
}

static int nl_bind_groups(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
		return probe_denied("bind", errno);
	return probe_escaped("bound with RTMGRP_LINK");
}

/* Reap a child made by a raw clone: exit 0 means it ran in its new user namespace. */
static int reaped(long pid, const char *what)
{
	int st = 0;
	if (waitpid((pid_t)pid, &st, __WALL) < 0)
		return probe_denied("waitpid", errno);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? probe_escaped(what)
						       : probe_denied("child", EINVAL);
}

static int clone_user(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return probe_denied("clone", errno);
	return reaped(pid, "clone made a user namespace");
}

static int clone3_user(void)
{
	struct clone_args_v0 a = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	long pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return probe_denied("clone3", errno);
	return reaped(pid, "clone3 made a user namespace");
}

static void *thread_main(void *arg)
{
	return arg;
}

static int spawn(void)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, thread_main, NULL);
	if (e)
		return probe_denied("pthread_create", e);
	pthread_join(t, NULL);
	pid_t pid;
	char *argv[] = {"/bin/true", NULL};
	e = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
	if (e)
		return probe_denied("posix_spawn", e);
	int st = 0;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return probe_denied("spawned child", ECHILD);
	return probe_escaped("a thread and a posix_spawn child ran");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *m = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : "";
	if (!strcmp(m, "key_read"))
		return key_read(a);
	if (!strcmp(m, "key_add"))
		return key_add(a);
	if (!strcmp(m, "key_clear"))
		return key_clear(a);
	if (!strcmp(m, "request_key"))
		return request_key_upcall(a);
	if (!strcmp(m, "nl_group"))
		return nl_group();
	if (!strcmp(m, "nl_bind_groups"))
		return nl_bind_groups();
	if (!strcmp(m, "unshare_user"))
		return unshare(CLONE_NEWUSER) < 0 ? probe_denied("unshare", errno)
						  : probe_escaped("unshare(CLONE_NEWUSER)");
	if (!strcmp(m, "clone_user"))
		return clone_user();
	if (!strcmp(m, "clone3_user"))
		return clone3_user();
	if (!strcmp(m, "setns")) {
		if (setns(-1, CLONE_NEWUSER) < 0 && errno == EPERM)
			return probe_denied("setns", errno);
		return probe_escaped("setns reached the kernel");
	}
	if (!strcmp(m, "spawn"))
		return spawn();
	fprintf(stderr, "usage: probe_kernel MODE [ARG]\n");
	return 2;
}
