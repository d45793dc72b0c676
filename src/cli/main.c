/* main.c — the nono CLI's entry: process-wide setup and subcommand dispatch. */
#include "commands.h"
#include "help.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef NONO_VERSION
#define NONO_VERSION "unknown"
#endif

static int help_for(const char *topic)
{
	static const struct {
		const char *name;
		void (*fn)(FILE *);
	} topics[] = {
		{"run", help_run}, {"proxy", help_proxy}, {"setup", help_setup}, {"why", help_why},
		{"profile", help_profile},
		{"rollback", help_rollback}, {"audit", help_audit},
	};
	for (size_t i = 0; i < N_ELEMENTS(topics); i++)
		if (!strcmp(topic, topics[i].name)) {
			topics[i].fn(stdout);
			return 0;
		}
	return cli_usage_error(NULL, "no help for '%s'", topic);
}

int main(int argc, char **argv)
{
	/* The proxy thread writes to sockets that peers may close: a write error, not a signal.
	 * (The sandboxed command gets default dispositions back before execve.) */
	signal(SIGPIPE, SIG_IGN);
	/* Started with fd 0, 1 or 2 closed, the next file we open (an audit log, the proxy's listening
	 * socket) would take that number and be handed to the command as its stdio: park /dev/null
	 * there first. */
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n != fd) {
			fprintf(stderr, "nono: cannot reopen closed fd %d on /dev/null\n", fd);
			return EXIT_INTERNAL;
		}
	}
	if (argc < 2) {
		help_main(stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		if (argc > 2)
			return help_for(argv[2]);
		help_main(stdout);
		return 0;
	}
	if (!strcmp(sub, "--version") || !strcmp(sub, "-V")) {
		printf("nono %s\n", NONO_VERSION);
		return 0;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"run", cmd_run}, {"proxy", cmd_proxy}, {"setup", cmd_setup}, {"why", cmd_why},
		{"profile", cmd_profile},
		{"rollback", cmd_rollback}, {"audit", cmd_audit},
	};
	for (size_t i = 0; i < N_ELEMENTS(cmds); i++)
		if (!strcmp(sub, cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	return cli_usage_error(NULL, "unknown command '%s'", sub);
}
