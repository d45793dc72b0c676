/* dnscache.c — the resolver's short memory: getaddrinfo answers for allowed names, reused for
 * NP_DNS_CACHE_MS, so a burst of tunnels to one name (a package manager fetching fifty files, an
 * agent calling one API) takes the path of an IP literal — no hand-off to a resolver thread and
 * back, no lookup — after the first.
 *
 * What is cached is the ANSWER, never the verdict: every request checks each cached address again
 * (np_check_addr, the internal/metadata denial and the port of its own allow_internal grant) exactly
 * as if it had just been looked up, and dials exactly the addresses it checked. A name is looked up
 * only after it passed the allowlist, so a denied name never enters the cache. Failures are not
 * remembered (the next request asks again). Why a fixed, short lifetime: getaddrinfo does not report
 * the records' TTLs, and a few seconds bounds how long a changed record is missed while still
 * covering bursts; it also means fewer lookups an attacker controlling a name's DNS could answer
 * differently (DNS rebinding gains nothing: the dialled address is always the checked one).
 *
 * One cache for all loop threads (a connection's loop may be any of them), behind its own mutex:
 * a lookup is a scan of NP_DNS_CACHE_N short entries, far below the cost of the syscalls a tunnel
 * makes, and the lock is held for nothing else. */
#include "proxy_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct np_dns_entry {
	uint32_t hash;   /* of host; 0 = empty slot */
	int64_t expires; /* monotonic ms */
	size_t naddrs;
	np_addr addrs[NP_MAX_ADDRS];
	char host[NP_HOST_MAX];
};

struct np_dnscache {
	pthread_mutex_t lock;
	struct np_dns_entry e[NP_DNS_CACHE_N];
};

static uint32_t host_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a; never 0 for a stored entry (see below) */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h ? h : 1;
}

int np_dnscache_new(struct np_dnscache **out)
{
	struct np_dnscache *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void np_dnscache_free(struct np_dnscache *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d);
}

size_t np_dnscache_get(struct np_dnscache *d, const char *host, int64_t now_ms, np_addr *out)
{
	if (!d || !host[0])
		return 0;
	uint32_t h = host_hash(host);
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < NP_DNS_CACHE_N; i++) {
		struct np_dns_entry *e = &d->e[i];
		if (e->hash != h || strcmp(e->host, host))
			continue;
		if (e->expires > now_ms) {
			n = e->naddrs;
			memcpy(out, e->addrs, n * sizeof *out);
		} else {
			e->hash = 0; /* expired: the slot is free again */
		}
		break;
	}
	pthread_mutex_unlock(&d->lock);
	return n;
}

void np_dnscache_put(struct np_dnscache *d, const char *host, const np_addr *addrs, size_t naddrs,
		     int64_t now_ms)
{
	size_t len = strlen(host);
	if (!d || !len || len >= NP_HOST_MAX || naddrs == 0)
		return;
	if (naddrs > NP_MAX_ADDRS)
		naddrs = NP_MAX_ADDRS;
	uint32_t h = host_hash(host);
	pthread_mutex_lock(&d->lock);
	/* The same name's slot, else a free or expired one, else the one closest to expiring (the
	 * oldest: every entry lives equally long). */
	struct np_dns_entry *slot = NULL, *victim = &d->e[0];
	for (size_t i = 0; i < NP_DNS_CACHE_N && !slot; i++) {
		struct np_dns_entry *e = &d->e[i];
		if (e->hash == h && !strcmp(e->host, host))
			slot = e;
		else if (victim->hash && (!e->hash || e->expires <= now_ms || e->expires < victim->expires))
			victim = e;
	}
	if (!slot)
		slot = victim;
	slot->hash = h;
	slot->expires = now_ms + NP_DNS_CACHE_MS;
	slot->naddrs = naddrs;
	memcpy(slot->addrs, addrs, naddrs * sizeof *addrs);
	memcpy(slot->host, host, len + 1);
	pthread_mutex_unlock(&d->lock);
}
