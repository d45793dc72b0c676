/* denials.c — see denials.h. What counts as a denial: a supervisor event with decision "deny" and
 * a policy errno (EACCES, EPERM: a call that was allowed and then failed, ECONNREFUSED say, is the
 * kernel's answer, not ours), a proxy event with decision "deny" (403 policy, 407 token), and a
 * Landlock filesystem denial read back from the kernel audit (source "landlock"). */
#include "denials.h"
#include "util.h"
#include "audit_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_DISTINCT 64
#define LINE 640
#define DRAIN_MS 50

struct entry {
	char hint[LINE];
	char what[LINE];
	unsigned count;
};

struct denials {
	nono_audit *sup;
	nono_audit *tee; /* optional: every drained event is pushed here too (the ledger) */
	nono_audit *proxy;
	bool verbose;
	nono_net_mode net;
	pthread_t thread;
	bool started;
	int stop_fd;
	pthread_mutex_t lock;
	struct entry e[MAX_DISTINCT];
	size_t n;
	unsigned more; /* distinct denials past MAX_DISTINCT */
};

static bool is_denial(const nono_audit_event *ev)
{
	if (strcmp(ev->decision, "deny") != 0)
		return false;
	if (!strcmp(ev->source, "supervisor"))
		return ev->status == EACCES || ev->status == EPERM;
	return true;
}

/* Loopback or private: the targets --allow-internal is for. */
static bool is_internal_addr(const char *t)
{
	unsigned char b[16];
	if (inet_pton(AF_INET, t, b) == 1)
		return b[0] == 127 || b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
		       (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) ||
		       (b[0] == 100 && (b[1] & 0xc0) == 64);
	if (inet_pton(AF_INET6, t, b) == 1)
		return !memcmp(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) || (b[0] & 0xfe) == 0xfc ||
		       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
	return false;
}

static void host_port(const nono_audit_event *ev, char *buf, size_t len)
{
	bool v6 = strchr(ev->target, ':') != NULL;
	snprintf(buf, len, "%s%.200s%s:%u", v6 ? "[" : "", ev->target, v6 ? "]" : "",
		 (unsigned)ev->port);
}

static void supervisor_hint(const nono_audit_event *ev, nono_net_mode net, char *buf, size_t len)
{
	char hp[240];
	host_port(ev, hp, sizeof hp);
	bool ip = !strcmp(ev->family, "inet") || !strcmp(ev->family, "inet6");
	if (!strcmp(ev->mode, "socket") || !strcmp(ev->mode, "socketpair"))
		snprintf(buf, len, "no flag: %s sockets are refused under %s (only an unrestricted "
				   "network, without --net-block/--allow-domain, has them)",
			 ev->target, nono_net_mode_name(net));
	else if (!strcmp(ev->mode, "connect") && !strcmp(ev->family, "unix"))
		snprintf(buf, len, "--allow-unix-socket %.250s", ev->target);
	else if (!strcmp(ev->mode, "connect") && ip && net == NONO_NET_BLOCKED)
		snprintf(buf, len, "no flag under --net-block (use --allow-domain or "
				   "--allow-internal instead of --net-block)");
	else if (!strcmp(ev->mode, "connect") && ip && is_internal_addr(ev->target))
		snprintf(buf, len, "--allow-internal %s", hp);
	else if (!strcmp(ev->mode, "connect") && ip)
		snprintf(buf, len, "--allow-domain HOST (the command connected to %s directly: "
				   "public hosts are reached through the proxy, HTTPS_PROXY)", hp);
	else if (!strcmp(ev->mode, "bind") && ip)
		snprintf(buf, len, "--allow-bind %u (loopback only)", (unsigned)ev->port);
	else if (!strcmp(ev->mode, "bind") && !strcmp(ev->family, "unix"))
		snprintf(buf, len, "--allow DIR (a writable grant of the socket's directory)");
	else
		snprintf(buf, len, "no flag allows this");
}

static void proxy_hint(const nono_audit_event *ev, char *buf, size_t len)
{
	char hp[240];
	host_port(ev, hp, sizeof hp);
	if (strstr(ev->reason, "metadata"))
		snprintf(buf, len, "no flag: cloud metadata endpoints are never reachable");
	else if (strstr(ev->reason, "internal address"))
		snprintf(buf, len, "--allow-internal %s", hp);
	else if (strstr(ev->reason, "not in the allowlist") || strstr(ev->reason, "not allowed"))
		snprintf(buf, len, "--allow-domain %.200s", ev->target);
	else if (ev->status == 407)
		snprintf(buf, len, "no flag: the client did not send the proxy's token (use the URL in "
				   "HTTPS_PROXY as given)");
	else
		snprintf(buf, len, "no flag allows this");
}

/* Landlock's blockers (fs.read_file, fs.make_reg, ...) name the right that was missing. */
static void fs_hint(const nono_audit_event *ev, char *buf, size_t len)
{
	const char *b = ev->reason, *p = ev->target;
	if (strstr(b, "fs.make_") || strstr(b, "fs.remove_") || strstr(b, "fs.refer"))
		snprintf(buf, len, "--write %.250s (or --allow: create and remove inside it)", p);
	else if (strstr(b, "fs.write_file") || strstr(b, "fs.truncate"))
		snprintf(buf, len, "--write-file %.250s (or --allow-file / --write on its directory)", p);
	else if (strstr(b, "fs.read_dir"))
		snprintf(buf, len, "--read %.250s", p);
	else if (strstr(b, "fs.read_file") || strstr(b, "fs.execute"))
		snprintf(buf, len, "--read-file %.250s (or --read on its directory)", p);
	else
		snprintf(buf, len, "no flag allows this (%.200s)", b);
}

void denials_hint(const nono_audit_event *ev, nono_net_mode net, char *buf, size_t len)
{
	if (!strcmp(ev->source, "landlock"))
		fs_hint(ev, buf, len);
	else if (!strcmp(ev->source, "proxy"))
		proxy_hint(ev, buf, len);
	else
		supervisor_hint(ev, net, buf, len);
}

static void describe(const nono_audit_event *ev, char *buf, size_t len)
{
	char hp[240];
	host_port(ev, hp, sizeof hp);
	const char *t = ev->port || !strcmp(ev->source, "proxy") ? hp : ev->target;
	if (!strcmp(ev->source, "landlock"))
		snprintf(buf, len, "%.250s: %.200s", ev->target, ev->reason);
	else if (!strcmp(ev->source, "proxy"))
		snprintf(buf, len, "proxy: %s %s: %.200s", ev->mode, t, ev->reason);
	else
		snprintf(buf, len, "%s %s: %.200s", ev->mode, t[0] ? t : ev->family, ev->reason);
}

/* One event: -v prints it; a denial joins the distinct set. */
static void take(struct denials *d, const nono_audit_event *ev)
{
	char what[LINE], hint[LINE];
	describe(ev, what, sizeof what);
	if (d->verbose)
		fprintf(stderr, "nono: %s %s\n", ev->decision, what);
	if (!is_denial(ev))
		return;
	denials_hint(ev, d->net, hint, sizeof hint);
	pthread_mutex_lock(&d->lock);
	size_t i = 0;
	while (i < d->n && strcmp(d->e[i].what, what) != 0)
		i++;
	if (i < d->n) {
		d->e[i].count++;
	} else if (d->n < MAX_DISTINCT) {
		snprintf(d->e[i].what, sizeof d->e[i].what, "%s", what);
		snprintf(d->e[i].hint, sizeof d->e[i].hint, "%s", hint);
		d->e[i].count = 1;
		d->n++;
	} else {
		d->more++;
	}
	pthread_mutex_unlock(&d->lock);
}

static void drain(struct denials *d, nono_audit *ring)
{
	nono_audit_event ev[32];
	size_t n;
	while (ring && (n = nono_audit_drain(ring, ev, N_ELEMENTS(ev))) > 0)
		for (size_t i = 0; i < n; i++) {
			take(d, &ev[i]);
			if (d->tee)
				nono_audit_push(d->tee, &ev[i]);
		}
}

static void *collector(void *arg)
{
	struct denials *d = arg;
	for (;;) {
		struct pollfd p = {d->stop_fd, POLLIN, 0};
		int r = poll(&p, 1, DRAIN_MS);
		drain(d, d->sup);
		drain(d, d->proxy);
		if (r > 0)
			break;
	}
	return NULL;
}

/* A thread drains the rings while the command runs only when something needs it then: -v
 * prints each decision as it arrives, and the proxy's ring fills with every request. Without
 * either, the supervisor's ring holds only denials and is drained after the command exits: no
 * thread, eventfd and 8 MiB stack mapping before every command, no 50 ms poll wake-ups, no join
 * at exit (~0.2 ms a run; issue 10). */
static bool needs_thread(bool verbose, nono_proxy *proxy)
{
	return verbose || proxy;
}

size_t denials_ring_capacity(bool verbose, nono_proxy *proxy)
{
	return needs_thread(verbose, proxy) ? 4096 : AUDIT_RUN_RING_CAPACITY;
}

struct denials *denials_start(nono_audit *sup, nono_proxy *proxy, bool verbose, nono_net_mode net,
			      nono_audit *tee)
{
	struct denials *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->sup = sup;
	d->tee = tee;
	d->proxy = proxy ? nono_proxy_audit(proxy) : NULL;
	d->verbose = verbose;
	d->net = net;
	pthread_mutex_init(&d->lock, NULL);
	d->stop_fd = -1;
	if (!needs_thread(verbose, proxy))
		return d; /* drained by denials_finish; what the ring dropped is counted there */
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd >= 0 && pthread_create(&d->thread, NULL, collector, d) == 0)
		d->started = true;
	return d;
}

/* Why filesystem denials are not in the report (nono_exec_result.fs_audit < 0). */
static const char *fs_invisible(int fs_audit)
{
	switch (fs_audit) {
	case -EOPNOTSUPP: return "Landlock below ABI 7 (Linux 6.15) cannot report them";
	case -ENOPROTOOPT: return "the kernel audit is disabled";
	case -EPERM: return "reading the kernel audit needs root (CAP_AUDIT_READ)";
	case -EPROTONOSUPPORT: return "this kernel has no audit support";
	default: return "the kernel audit cannot be read here";
	}
}

void denials_finish(struct denials *d, FILE *f, bool quiet, int fs_audit, bool failed)
{
	if (!d)
		return;
	if (d->started) {
		uint64_t one = 1;
		(void)!write(d->stop_fd, &one, sizeof one);
		pthread_join(d->thread, NULL);
	}
	drain(d, d->sup); /* what arrived after the last pass (or everything, without a thread) */
	drain(d, d->proxy);
	if (!quiet && d->n) {
		fprintf(f, "nono: denied during this run (-q hides this):\n");
		for (size_t i = 0; i < d->n; i++) {
			fprintf(f, "  %s", d->e[i].what);
			if (d->e[i].count > 1)
				fprintf(f, " (x%u)", d->e[i].count);
			fprintf(f, "\n    allow with: %s\n", d->e[i].hint);
		}
		if (d->more)
			fprintf(f, "  ... and %u more distinct denials (see --audit-log)\n", d->more);
		if (nono_audit_dropped(d->sup))
			fprintf(f, "  ... and %llu earlier events the ring could not keep (see "
				   "--audit-log)\n",
				(unsigned long long)nono_audit_dropped(d->sup));
		if (fs_audit != 1)
			fprintf(f, "  filesystem denials are not shown: %s (nono why --path PATH "
				   "explains one)\n",
				fs_invisible(fs_audit));
	} else if (!quiet && failed && fs_audit != 1 && fs_audit != 0)
		fprintf(f, "nono: the command failed; filesystem denials are not visible here: %s "
			   "(nono why --path PATH explains one)\n",
			fs_invisible(fs_audit));
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
