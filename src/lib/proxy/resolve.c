/* resolve.c — asynchronous name resolution for the proxy: a few worker threads running
 * getaddrinfo(3), results handed back to the event loop through an eventfd.
 *
 * Why not evdns (libevent_extra)? It reads resolv.conf and /etc/hosts itself and ignores
 * nsswitch.conf, so the proxy would resolve differently from every other program on the host
 * (systemd-resolved, LDAP/mDNS modules, container DNS shims). getaddrinfo_a(3) would also run
 * getaddrinfo on glibc-internal threads, but cannot cancel a lookup in progress either and signals
 * completion through a sigevent. Our own workers keep the queue bounded by the proxy's connection cap
 * (a connection has at most one lookup in flight).
 *
 * Shutdown (np_resolver_free, called by nono_proxy_stop) JOINS every worker that is not inside
 * getaddrinfo and waits until the kernel has released its task, so when stop returns the process has
 * its pre-start thread count again and nono_apply (which refuses a multi-threaded process with EBUSY:
 * Landlock and seccomp bind only the calling thread) works right away. A worker that IS inside
 * getaddrinfo is detached instead and exits as soon as the lookup returns; it holds no fd of ours (the
 * eventfd is closed by np_resolver_free) and frees the shared state if it is the last one. Why not wait
 * for it or cancel it: with the default resolv.conf a lookup against a dead server takes up to
 * timeout(5 s) x attempts(2) x nameservers(3) = 30 s, and stop must not hang that long; and
 * pthread_cancel inside getaddrinfo is not safe — glibc documents it AC-Unsafe (lock, fd, mem) and
 * NSS modules (nscd, sssd, systemd-resolved's nss module, dlopen'd at run time) can be left holding
 * locks or sockets. So the documented limit: a lookup in flight at stop finishes in the background,
 * bounded by the resolver's own timeouts. */
#include "proxy_int.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct np_worker {
	struct np_resolver *r;
	pthread_t thread;
	pid_t tid;     /* set by the worker when it starts */
	bool started;  /* pthread_create succeeded */
	bool busy;     /* inside getaddrinfo (lock held to change it) */
	bool join;     /* np_resolver_free: idle at shutdown, so joined rather than detached */
};

/* Where a loop's results come back: its own list and eventfd. */
struct np_sink {
	struct np_resolve_req *done;
	int efd; /* -1 once np_resolver_free closed it */
};

struct np_resolver {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct np_resolve_req *queue, **queue_tail;
	unsigned refs;  /* the proxy + each live worker */
	bool shutdown;
	unsigned nworkers, nsinks;
	struct np_worker *workers;
	struct np_dnscache *cache; /* used by the loops only (dnscache.c) */
	struct np_sink sinks[];
};

static void sinks_close(struct np_resolver *r)
{
	for (unsigned i = 0; i < r->nsinks; i++) {
		struct np_sink *k = &r->sinks[i];
		while (k->done) {
			struct np_resolve_req *n = k->done->next;
			free(k->done);
			k->done = n;
		}
		if (k->efd >= 0)
			close(k->efd);
		k->efd = -1;
	}
}

static void resolver_unref_locked(struct np_resolver *r)
{
	/* called with the lock held; releases it */
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	sinks_close(r);
	np_dnscache_free(r->cache);
	free(r->workers);
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
	struct np_worker *w = arg;
	struct np_resolver *r = w->r;
	pthread_mutex_lock(&r->lock);
	w->tid = (pid_t)syscall(SYS_gettid);
	for (;;) {
		while (!r->queue && !r->shutdown)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->shutdown)
			break;
		struct np_resolve_req *q = r->queue;
		r->queue = q->next;
		if (!r->queue)
			r->queue_tail = &r->queue;
		w->busy = true;
		pthread_mutex_unlock(&r->lock);
		do_lookup(q);
		pthread_mutex_lock(&r->lock);
		w->busy = false;
		if (r->shutdown) {
			free(q);
			break;
		}
		struct np_sink *k = &r->sinks[q->sink < r->nsinks ? q->sink : 0];
		q->next = k->done;
		k->done = q;
		uint64_t one = 1;
		if (write(k->efd, &one, sizeof one) < 0) {
			/* eventfd counter saturation is impossible here; nothing to do */
		}
	}
	resolver_unref_locked(r);
	return NULL;
}

int np_resolver_new(unsigned nthreads, unsigned nsinks, struct np_resolver **out, int *efds,
		    nono_error *err)
{
	struct np_resolver *r = calloc(1, sizeof *r + nsinks * sizeof r->sinks[0]);
	if (!r)
		return nono_fail(err, -ENOMEM, "out of memory");
	r->nsinks = nsinks;
	for (unsigned i = 0; i < nsinks; i++)
		r->sinks[i].efd = -1;
	r->workers = calloc(nthreads ? nthreads : 1, sizeof *r->workers);
	if (!r->workers || np_dnscache_new(&r->cache) < 0) {
		free(r->workers);
		free(r);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < nsinks; i++) {
		if ((r->sinks[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
			int e = -errno;
			sinks_close(r);
			np_dnscache_free(r->cache);
			free(r->workers);
			free(r);
			return nono_fail(err, e, "eventfd: %s", strerror(-e));
		}
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->queue_tail = &r->queue;
	r->refs = 1;
	r->nworkers = nthreads;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	unsigned started = 0;
	int rc = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		struct np_worker *w = &r->workers[i];
		w->r = r;
		pthread_mutex_lock(&r->lock);
		r->refs++;
		pthread_mutex_unlock(&r->lock);
		rc = nono_thread_start(&w->thread, &attr, worker, w); /* takes no signals */
		if (rc) {
			pthread_mutex_lock(&r->lock);
			r->refs--;
			pthread_mutex_unlock(&r->lock);
			break;
		}
		w->started = true;
		started++;
	}
	pthread_attr_destroy(&attr);
	if (!started) {
		np_resolver_free(r);
		return nono_fail(err, -rc, "resolver thread: %s", strerror(rc));
	}
	for (unsigned i = 0; i < nsinks; i++)
		efds[i] = r->sinks[i].efd;
	*out = r;
	return 0;
}

struct np_dnscache *np_resolver_cache(struct np_resolver *r)
{
	return r ? r->cache : NULL;
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

struct np_resolve_req *np_resolver_done(struct np_resolver *r, unsigned sink)
{
	uint64_t v;
	struct np_sink *k = &r->sinks[sink];
	if (read(k->efd, &v, sizeof v) < 0) {
		/* EAGAIN: nothing signalled; the list may still hold results */
	}
	pthread_mutex_lock(&r->lock);
	struct np_resolve_req *d = k->done;
	k->done = NULL;
	pthread_mutex_unlock(&r->lock);
	return d;
}

void np_wait_task_gone(pid_t tid)
{
	/* pthread_join returns once the kernel clears the thread's tid (exit_mm → mm_release), which
	 * is just BEFORE the task is released from the thread group (exit_notify → release_task), so
	 * /proc/self/status may still count it for a moment. Wait for /proc/self/task/TID to go away,
	 * bounded (200 x 1 ms): it is microseconds in practice. No /proc: nothing to wait for. */
	char path[64];
	if (tid <= 0)
		return;
	snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
	for (int i = 0; i < 200 && access(path, F_OK) == 0; i++)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
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
	/* Workers write the eventfds only under the lock and never after shutdown: close them now. */
	sinks_close(r);
	/* Decided under the lock: an idle worker can no longer start a lookup (shutdown is set and the
	 * queue is empty), so joining it is quick; a busy one is detached (see the top of the file). */
	for (unsigned i = 0; i < r->nworkers; i++) {
		struct np_worker *w = &r->workers[i];
		w->join = w->started && !w->busy;
		if (w->started && w->busy)
			pthread_detach(w->thread);
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->nworkers; i++) {
		if (!r->workers[i].join)
			continue;
		pthread_join(r->workers[i].thread, NULL);
		np_wait_task_gone(r->workers[i].tid);
	}
	pthread_mutex_lock(&r->lock);
	resolver_unref_locked(r);
}
