/* audit.c — a bounded ring of decision events shared by the proxy and the network supervisor.
 * Bounded by construction: when full the oldest event is overwritten and counted as dropped.
 * Memory follows use: the slots grow on demand up to the capacity. */
#include "internal.h"

#include <jansson.h>
#include <pthread.h>
#include <string.h>

/* The slots grow on demand up to `cap` (doubling): an event is ~1.3 KB, so the CLI's 65,536-event
 * ring was an 82 MB calloc on every `nono run` (mmap, munmap, a larger address space to fork)
 * although a typical run records no event at all (issue 10's startup target). */
#define AUDIT_FIRST_SLOTS 8

struct nono_audit {
	pthread_mutex_t lock;
	size_t cap, alloc, head, len; /* alloc: slots in ev (<= cap) */
	uint64_t dropped;
	nono_audit_event *ev;
};

nono_audit *nono_audit_new(size_t capacity)
{
	if (capacity == 0 || capacity > (SIZE_MAX - sizeof(nono_audit)) / sizeof(nono_audit_event))
		return NULL;
	nono_audit *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->alloc = capacity < AUDIT_FIRST_SLOTS ? capacity : AUDIT_FIRST_SLOTS;
	if (!(a->ev = calloc(a->alloc, sizeof *a->ev))) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->cap = capacity;
	return a;
}

/* The ring moved into `n` (>= a->len) fresh slots, oldest first. False (the ring unchanged) when out
 * of memory. Lock held. */
static bool audit_resize(nono_audit *a, size_t n)
{
	nono_audit_event *ev = malloc(n * sizeof *ev);
	if (!ev)
		return false;
	for (size_t i = 0; i < a->len; i++)
		ev[i] = a->ev[(a->head + i) % a->alloc];
	free(a->ev);
	a->ev = ev;
	a->alloc = n;
	a->head = 0;
	return true;
}

/* Double the slots (not past cap), keeping the events in order from slot 0. False when out of
 * memory: the ring then stays at its size and overwrites its oldest event, counted as dropped,
 * as a full ring does. Called with the lock held. */
static bool audit_grow(nono_audit *a)
{
	return audit_resize(a, a->alloc * 2 < a->cap ? a->alloc * 2 : a->cap);
}

void nono_audit_free(nono_audit *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a->ev);
	free(a);
}

void nono_audit_push(nono_audit *a, const nono_audit_event *ev)
{
	if (!a || !ev)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->len == a->alloc && a->alloc < a->cap)
		(void)audit_grow(a);
	size_t slot = (a->head + a->len) % a->alloc;
	if (a->len == a->alloc) {
		a->head = (a->head + 1) % a->alloc; /* overwrite the oldest */
		a->dropped++;
	} else {
		a->len++;
	}
	a->ev[slot] = *ev;
	pthread_mutex_unlock(&a->lock);
}

/* After a drain: give back what the ring no longer holds (halved while at most a quarter is in
 * use, in one step), so that draining one ring into another (the CLI's denial report into the ledger's) does
 * not hold both at their largest. Keeps the ring as it is when out of memory. Lock held. */
static void audit_shrink(nono_audit *a)
{
	size_t n = a->alloc;
	while (n > AUDIT_FIRST_SLOTS && a->len <= n / 4)
		n /= 2;
	if (n != a->alloc)
		(void)audit_resize(a, n);
}

size_t nono_audit_drain(nono_audit *a, nono_audit_event *out, size_t max)
{
	if (!a || !out)
		return 0;
	pthread_mutex_lock(&a->lock);
	size_t n = a->len < max ? a->len : max;
	for (size_t i = 0; i < n; i++)
		out[i] = a->ev[(a->head + i) % a->alloc];
	a->head = (a->head + n) % a->alloc;
	a->len -= n;
	audit_shrink(a);
	pthread_mutex_unlock(&a->lock);
	return n;
}

uint64_t nono_audit_dropped(const nono_audit *a)
{
	if (!a)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&a->lock);
	uint64_t d = a->dropped;
	pthread_mutex_unlock((pthread_mutex_t *)&a->lock);
	return d;
}

/* ---- the one JSON line of an event ---- */

/* A JSON string from a fixed-size field: bounded by the field, never dropped for its bytes
 * (a unix socket path or an attacker's Host header may hold any): invalid UTF-8 becomes '?'. */
static json_t *field(const char *buf, size_t cap)
{
	size_t len = strnlen(buf, cap);
	json_t *j = json_stringn(buf, len);
	if (j)
		return j;
	char tmp[NONO_PATH_MAX];
	if (len >= sizeof tmp)
		len = sizeof tmp - 1;
	for (size_t i = 0; i < len; i++)
		tmp[i] = (unsigned char)buf[i] < 0x80 && buf[i] ? buf[i] : '?';
	return json_stringn(tmp, len);
}
#define F(name) field(ev->name, sizeof ev->name)

/* The credential-route fields, only on routed events (other events keep their 13 keys). */
static int audit_route_fields(json_t *o, const nono_audit_event *ev)
{
	json_t *r = json_pack("{s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "route_id", F(route_id),
			      "injection_mode", F(injection_mode), "auth_mechanism", F(auth_mechanism),
			      "auth_outcome", F(auth_outcome), "managed_credential_active",
			      (int)ev->managed_credential_active, "endpoint_decision", F(endpoint_decision),
			      "denial_category", F(denial_category));
	if (!r)
		return -ENOMEM;
	int rc = json_object_update(o, r);
	json_decref(r);
	return rc;
}

int nono_audit_event_format(const nono_audit_event *ev, char *buf, size_t len)
{
	if (!ev || !buf)
		return -EINVAL;
	json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:i, s:o, s:I, s:I}",
			      "timestamp_unix_ms", (json_int_t)ev->timestamp_unix_ms, "source", F(source),
			      "mode", F(mode), "decision", F(decision), "family", F(family),
			      "target", F(target), "port", (int)ev->port, "method", F(method),
			      "path", F(path), "status", ev->status, "reason", F(reason),
			      "bytes_up", (json_int_t)ev->bytes_up, "bytes_down",
			      (json_int_t)ev->bytes_down);
	if (!o)
		return -ENOMEM;
	if (ev->route_id[0] && audit_route_fields(o, ev) < 0) {
		json_decref(o);
		return -ENOMEM;
	}
	size_t n = json_dumpb(o, buf, len, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n + 2 > len)
		return n == 0 ? -ENOMEM : -ENOSPC;
	buf[n] = '\n';
	buf[n + 1] = '\0';
	return (int)(n + 1);
}
