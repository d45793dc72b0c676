/* supervisor_net.c — the proxy-only supervisor's direct destinations and what it records about
 * refused sockets:
 * - internal destinations (nono_caps_allow_internal): a connect to exactly one of these addresses
 *   and ports is performed like a proxy connect (on our copy of the address, supervisor_io.c);
 * - the command's own listeners: a granted bind port that was bound on loopback through us may be
 *   connected to on loopback (127.0.0.1, ::1 or ::ffff:127.0.0.1), so a test server the command
 *   started is reachable from the command;
 * - refused socket kinds: seccomp.c sends socket()/socketpair() calls its table refuses to us (with
 *   a supervisor); we refuse them with the same EACCES and record the first of each family and
 *   type, so "UDP was refused" shows in the denial report instead of nowhere;
 * - routine misses: glibc connects to the nscd socket before every passwd/hosts lookup; a missing
 *   socket is answered ENOENT unrecorded (the kernel says the same; no policy decided), and a
 *   refused one is recorded once.
 */
#include "supervisor_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int nono_sup_direct_load(struct nono_supervisor *s, const nono_caps *caps)
{
	size_t n = nono_caps_internal_count(caps);
	s->direct = calloc(n + 1, sizeof *s->direct);
	s->bound = calloc(s->nports + 1, sizeof *s->bound);
	if (!s->direct || !s->bound)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nono_internal_dest d;
		struct sup_direct *o = &s->direct[s->ndirect];
		if (nono_caps_internal(caps, i, &d) < 0)
			continue;
		if (inet_pton(AF_INET, d.addr, o->addr) == 1)
			o->family = AF_INET;
		else if (inet_pton(AF_INET6, d.addr, o->addr) == 1)
			o->family = AF_INET6;
		else
			continue; /* cannot happen: caps_net.c wrote it with inet_ntop */
		o->port = d.port;
		s->ndirect++;
	}
	return 0;
}

void nono_sup_direct_free(struct nono_supervisor *s)
{
	free(s->direct);
	free(s->bound);
}

/* The address as (family, bytes, port), a v4-mapped IPv6 address as the IPv4 one. */
static bool normalise(const struct sockaddr_storage *a, socklen_t len, struct sup_direct *out)
{
	memset(out, 0, sizeof *out);
	if (a->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)a;
		out->family = AF_INET;
		memcpy(out->addr, &in->sin_addr, 4);
		out->port = ntohs(in->sin_port);
		return true;
	}
	if (a->ss_family == AF_INET6 && len >= 24 /* SIN6_LEN_RFC2133 */) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		out->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			out->family = AF_INET;
			memcpy(out->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, &in6->sin6_addr, 16);
		}
		return true;
	}
	return false;
}

bool nono_sup_direct_ok(struct nono_supervisor *s, const struct sockaddr_storage *a,
			socklen_t len)
{
	struct sup_direct t;
	if (!normalise(a, len, &t) || t.port == 0)
		return false;
	for (size_t i = 0; i < s->ndirect; i++)
		if (s->direct[i].family == t.family && s->direct[i].port == t.port &&
		    !memcmp(s->direct[i].addr, t.addr, 16))
			return true;
	/* normalise() made ::ffff:127.0.0.1 the IPv4 address. */
	static const unsigned char lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
	bool loopback = t.family == AF_INET ? !memcmp(t.addr, lo4, 4) : !memcmp(t.addr, lo6, 16);
	/* Only the loopback address the command bound: another program may listen on the same port
	 * of the other loopback address (review of 2026-12-04). */
	unsigned bit = t.family == AF_INET ? 1u : 2u;
	for (size_t i = 0; loopback && i < s->nports; i++)
		if (s->ports[i] == t.port && (atomic_load(&s->bound[i]) & bit))
			return true;
	return false;
}

void nono_sup_mark_bound(struct nono_supervisor *s, const struct sockaddr_storage *a,
			 socklen_t len)
{
	struct sup_direct t;
	if (!normalise(a, len, &t))
		return;
	unsigned bit = t.family == AF_INET ? 1u : 2u;
	for (size_t i = 0; i < s->nports; i++)
		if (s->ports[i] == t.port)
			atomic_fetch_or(&s->bound[i], bit);
}

static const char *family_name(int f)
{
	switch (f) {
	case AF_INET: return "inet";
	case AF_INET6: return "inet6";
	case AF_UNIX: return "unix";
	case AF_NETLINK: return "netlink";
	case AF_PACKET: return "packet";
	default: return NULL;
	}
}

static const char *type_name(int t)
{
	switch (t & 0xf) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_RAW: return "raw";
	case SOCK_SEQPACKET: return "seqpacket";
	default: return "other";
	}
}

/* One bit per (family class, type class): 6 families x 5 types < 32. */
static unsigned kind_bit(int family, int type)
{
	static const int fams[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK, AF_PACKET};
	unsigned f = N_ELEMENTS(fams), t = (unsigned)(type & 0xf);
	for (unsigned i = 0; i < N_ELEMENTS(fams); i++)
		if (fams[i] == family)
			f = i;
	if (t > 4)
		t = 4;
	return 1u << (f * 5 + t);
}

struct denial nono_sup_h_socket(struct rq *q)
{
	int family = (int)(uint32_t)q->args[0], type = (int)(uint32_t)q->args[1];
	int proto = (int)(uint32_t)q->args[2];
	const char *fn = family_name(family);
	if (fn)
		snprintf(q->family, sizeof q->family, "%s", fn);
	else
		snprintf(q->family, sizeof q->family, "%d", family & 0xffff);
	snprintf(q->target, sizeof q->target, "%s/%s protocol %d", q->family, type_name(type), proto);
	unsigned bit = kind_bit(family, type);
	bool first = !(atomic_fetch_or(&q->s->seen_sockets, bit) & bit);
	const char *why = q->s->mode == NONO_NET_BLOCKED
				  ? "socket kind refused: the network is blocked"
				  : "socket kind refused: proxy-only allows TCP streams only";
	if (family == AF_UNIX || family == AF_NETLINK)
		why = family == AF_UNIX ? "unix datagram sockets are refused (a destination per message)"
					: "netlink: only NETLINK_ROUTE";
	if (first)
		return sup_refuse(EACCES, why);
	nono_sup_reply(q->s, q->id, 0, EACCES); /* recorded already: answer only */
	return SUP_DONE;
}

bool nono_sup_routine_seen(struct nono_supervisor *s, const char *path)
{
	static const char *const routine[] = {"/var/run/nscd/socket", "/run/nscd/socket"};
	for (size_t i = 0; i < N_ELEMENTS(routine); i++)
		if (!strcmp(path, routine[i]))
			return atomic_exchange(&s->seen_routine, true);
	return false;
}
