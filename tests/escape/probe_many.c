/* probe_many.c — the ALLOWED path under load: THREADS threads each connect PER times to
 * IP:PORT (the proxy port) and check the peer really is that port.
 *   probe_many IP PORT THREADS PER   →   COUNT ok=N failed=M first_errno=E */
#include "probe.h"

#include <pthread.h>
#include <stdatomic.h>

static struct sockaddr_in target;
static long per;
static atomic_long ok, failed;
static atomic_int first_err;

static void *worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < per; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in peer;
		socklen_t pl = sizeof peer;
		if (s >= 0 && connect(s, (struct sockaddr *)&target, sizeof target) == 0 &&
		    getpeername(s, (struct sockaddr *)&peer, &pl) == 0 &&
		    peer.sin_port == target.sin_port) {
			atomic_fetch_add(&ok, 1);
		} else {
			int zero = 0;
			atomic_compare_exchange_strong(&first_err, &zero, errno ? errno : -1);
			atomic_fetch_add(&failed, 1);
		}
		if (s >= 0) {
			struct linger lg = {1, 0};
			setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			close(s);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	target = probe_v4(argv[1], atoi(argv[2]));
	int threads = atoi(argv[3]);
	per = atol(argv[4]);
	if (threads < 1 || threads > 64)
		return 2;
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	int fe = atomic_load(&first_err);
	printf("COUNT ok=%ld failed=%ld first_errno=%s\n", atomic_load(&ok), atomic_load(&failed),
	       fe > 0 ? probe_errname(fe) : "none");
	return 0;
}
