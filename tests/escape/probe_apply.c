/* probe_apply.c — in-process nono_apply (public API) and the supervisor helper process.
 *   probe_apply MODE PORT [UNIXPATH]
 * MODE: none (no sandbox: the baseline), proxy (proxy-only PORT), blocked.
 * Steps: apply; print "READY <pid>"; wait for one line on stdin (the driver kills the helper in
 * between, or not); then connect — to 127.0.0.1:PORT (proxy/none) or to UNIXPATH (blocked) — and
 * print one result line. With the helper dead the kernel must answer ENOSYS. */
#include "probe.h"
#include "nono.h"

#include <sys/un.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1];
	int port = atoi(argv[2]);
	if (strcmp(mode, "none") != 0) {
		nono_caps *c = nono_caps_new();
		nono_error e;
		int r = strcmp(mode, "proxy") == 0
				? nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)port, &e)
				: nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e);
		if (r == 0 && argc > 3)
			r = nono_caps_allow_unix_socket(c, argv[3], &e);
		nono_report rep;
		if (r == 0)
			r = nono_apply(c, 0, &rep, &e);
		if (r < 0) {
			printf("APPLY-FAILED %s\n", e.message);
			return 3;
		}
		nono_caps_free(c);
	}
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 4;
	if (argc > 3) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0)
			return probe_denied("socket", errno);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[3]);
		if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
			return probe_denied("connect", errno);
		return probe_escaped("unix connected");
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_in a = probe_v4("127.0.0.1", port);
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		return probe_denied("connect", errno);
	return probe_escaped("connected");
}
