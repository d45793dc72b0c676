/* probe.h — shared output protocol of the escape probes.
 * Every probe makes ONE attempt and prints exactly one result line on stdout:
 *   ESCAPED <detail>            the attempt reached its target
 *   DENIED <ERRNO> <step>       a step failed; ERRNO is the symbolic name (EACCES, ENOSYS, …)
 *   COUNT <key>=<n> …           counting probes (race, many)
 * A probe killed by the kernel (SIGSYS) prints nothing; the driver sees the signal. */
#ifndef NONO_PROBE_H
#define NONO_PROBE_H
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline const char *probe_errname(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOSYS: return "ENOSYS";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case EFAULT: return "EFAULT";
	case ESRCH: return "ESRCH";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case ENETUNREACH: return "ENETUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINPROGRESS: return "EINPROGRESS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "EOTHER";
	}
}

static inline int probe_denied(const char *step, int e)
{
	printf("DENIED %s %s (errno %d)\n", probe_errname(e), step, e);
	fflush(stdout);
	return 0;
}

static inline int probe_escaped(const char *detail)
{
	printf("ESCAPED %s\n", detail);
	fflush(stdout);
	return 0;
}

static inline struct sockaddr_in probe_v4(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}
#endif
