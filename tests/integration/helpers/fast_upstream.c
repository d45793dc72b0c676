/* fast_upstream — an HTTP upstream that answers before it reads: it busy-polls accept() on
 * 127.0.0.1:PORT and sends a complete empty 200 at once, so every step of a proxied request can
 * complete without waiting. Used to show that a pipelining client cannot make the proxy recurse
 * (tests/integration/test_proxy_pipeline.py). Prints its port on stdout, then serves until
 * stdin closes or SECONDS pass.
 *   fast_upstream SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 30;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 4096) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0) {
		perror("fast_upstream");
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(sa.sin_port));
	fflush(stdout);
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	int held[512];
	for (int i = 0; i < 512; i++)
		held[i] = -1;
	time_t end = time(NULL) + secs;
	for (unsigned long n = 0; time(NULL) < end; n++) {
		if ((n & 1023) == 0) { /* stdin closed: the test is done */
			struct pollfd p = {0, POLLIN, 0};
			if (poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP))) {
				char b;
				if (read(0, &b, 1) <= 0)
					break;
			}
		}
		int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			continue; /* EAGAIN: busy-poll */
		(void)!send(c, resp, sizeof resp - 1, MSG_NOSIGNAL);
		shutdown(c, SHUT_WR);
		if (held[n % 512] >= 0)
			close(held[n % 512]);
		held[n % 512] = c;
	}
	return 0;
}
