/* resolve.c — asynchronous name resolution for the proxy: a few detached worker threads running
 * getaddrinfo(3), results handed back to the event loop through an eventfd.
 *
 * Why not evdns (libevent_extra)? It reads resolv.conf and /etc/hosts itself and ignores
 * nsswitch.conf, so the proxy would resolve differently from every other program on the host
 * (systemd-resolved, LDAP/mDNS modules, container DNS shims). getaddrinfo_a(3) would also run
 * getaddrinfo on glibc-internal threads, but cannot cancel a lookup in progress either and signals
 * completion through a sigevent. Our own workers keep the queue bounded by the proxy's connection cap
 * (a connection has at most one lookup in flight), and because they are detached and share a
 * refcounted state, nono_proxy_stop never waits on a slow DNS server. */
#include "proxy_int.h"

#include <netdb.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>

struct np_resolver {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct np_resolve_req *queue, **queue_tail;
	struct np_resolve_req *done;
	unsigned refs;  /* the proxy + each live worker */
	bool shutdown;
	int efd;
};

static void resolver_unref_locked(struct np_resolver *r)
{
	/* called with the lock held; releases it */
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	while (r->done) {
		struct np_resolve_req *n = r->done->next;
		free(r->done);
		r->done = n;
	}
	close(r->efd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void do_lookup(struct np_resolve_req *q)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	/* No AI_ADDRCONFIG: in a namespace with only loopback it hides every address. */
	struct addrinfo *res = NULL;
	q->error = getaddrinfo(q->host, NULL, &hints, &res);
	q->naddrs = 0;
	for (struct addrinfo *ai = res; ai && q->naddrs < NP_MAX_ADDRS; ai = ai->ai_next) {
		np_addr *a = &q->addrs[q->naddrs];
		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
			a->family = AF_INET;
			memcpy(a->b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			a->family = AF_INET6;
			memcpy(a->b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		q->naddrs++;
	}
	if (res)
		freeaddrinfo(res);
}

static void *worker(void *arg)
{
	struct np_resolver *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->queue && !r->shutdown)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->shutdown)
			break;
		struct np_resolve_req *q = r->queue;
		r->queue = q->next;
		if (!r->queue)
			r->queue_tail = &r->queue;
		pthread_mutex_unlock(&r->lock);
		do_lookup(q);
		pthread_mutex_lock(&r->lock);
		if (r->shutdown) {
			free(q);
			break;
		}
		q->next = r->done;
		r->done = q;
		uint64_t one = 1;
		if (write(r->efd, &one, sizeof one) < 0) {
			/* eventfd counter saturation is impossible here; nothing to do */
		}
	}
	resolver_unref_locked(r);
	return NULL;
}

int np_resolver_new(unsigned nthreads, struct np_resolver **out, int *efd, nono_error *err)
{
	struct np_resolver *r = calloc(1, sizeof *r);
	if (!r)
		return nono_fail(err, -ENOMEM, "out of memory");
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		int e = -errno;
		free(r);
		return nono_fail(err, e, "eventfd: %s", strerror(-e));
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->queue_tail = &r->queue;
	r->refs = 1;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	unsigned started = 0;
	int rc = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_t t;
		pthread_mutex_lock(&r->lock);
		r->refs++;
		pthread_mutex_unlock(&r->lock);
		rc = pthread_create(&t, &attr, worker, r);
		if (rc) {
			pthread_mutex_lock(&r->lock);
			r->refs--;
			pthread_mutex_unlock(&r->lock);
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);
	if (!started) {
		np_resolver_free(r);
		return nono_fail(err, -rc, "resolver thread: %s", strerror(rc));
	}
	*efd = r->efd;
	*out = r;
	return 0;
}

void np_resolver_submit(struct np_resolver *r, struct np_resolve_req *req)
{
	req->next = NULL;
	pthread_mutex_lock(&r->lock);
	*r->queue_tail = req;
	r->queue_tail = &req->next;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void np_resolver_cancel(struct np_resolver *r, struct np_resolve_req *req)
{
	if (!req)
		return;
	req->owner = NULL;
	/* Still queued: unlink and free now, so connections that come and go while DNS is slow
	 * cannot grow the queue. In flight or done: freed when it comes back. */
	pthread_mutex_lock(&r->lock);
	for (struct np_resolve_req **pp = &r->queue; *pp; pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			if (!*pp)
				r->queue_tail = pp;
			free(req);
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

struct np_resolve_req *np_resolver_done(struct np_resolver *r)
{
	uint64_t v;
	if (read(r->efd, &v, sizeof v) < 0) {
		/* EAGAIN: nothing signalled; the list may still hold results */
	}
	pthread_mutex_lock(&r->lock);
	struct np_resolve_req *d = r->done;
	r->done = NULL;
	pthread_mutex_unlock(&r->lock);
	return d;
}

void np_resolver_free(struct np_resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->shutdown = true;
	while (r->queue) {
		struct np_resolve_req *n = r->queue->next;
		free(r->queue);
		r->queue = n;
	}
	r->queue_tail = &r->queue;
	pthread_cond_broadcast(&r->cond);
	resolver_unref_locked(r);
}
