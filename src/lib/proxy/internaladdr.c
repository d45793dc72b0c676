/* internaladdr.c — allow_internal grants by address as well as by name. A grant names a host as
 * the user wrote it; the request may name the same service another way (127.0.0.1 for
 * "localhost", or an allowlisted name that resolves to the granted address). The addresses are
 * taken when the grant is made — the same moment nono_caps_allow_internal resolves them for the
 * direct path — so the proxy and the supervisor agree on what one --allow-internal covers. */
#include "proxy_int.h"

#include <netdb.h>
#include <string.h>

static bool is_localhost(const char *host)
{
	size_t n = strlen(host);
	return !strcmp(host, "localhost") || (n > 10 && !strcmp(host + n - 10, ".localhost"));
}

/* Same address: an IPv4 address is its first 4 bytes (the rest is not defined). */
static bool same(const np_addr *x, const np_addr *y)
{
	return x->family == y->family && !memcmp(x->b, y->b, x->family == AF_INET ? 4 : 16);
}

static void add(np_pattern *p, const np_addr *a)
{
	for (unsigned i = 0; i < p->naddrs; i++)
		if (same(&p->addrs[i], a))
			return;
	if (p->naddrs < N_ELEMENTS(p->addrs))
		p->addrs[p->naddrs++] = *a;
}

void np_internal_resolve(np_pattern *p)
{
	np_addr a;
	p->naddrs = 0;
	if (np_parse_ip_literal(p->host, &a) == 1) {
		add(p, &a);
		return;
	}
	if (is_localhost(p->host)) {
		add(p, &(np_addr){AF_INET, {127, 0, 0, 1}});
		a = (np_addr){AF_INET6, {0}};
		a.b[15] = 1;
		add(p, &a);
		return;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(p->host, NULL, &hints, &res) != 0)
		return;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		a = (np_addr){ai->ai_family, {0}};
		if (ai->ai_family == AF_INET)
			memcpy(a.b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		else if (ai->ai_family == AF_INET6)
			memcpy(a.b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		else
			continue;
		/* Never let a name smuggle a metadata address into the internal set. */
		const char *why;
		if (np_classify(&a, &why) != NP_METADATA)
			add(p, &a);
	}
	freeaddrinfo(res);
}

/* v4-mapped ::ffff:a.b.c.d names the IPv4 address. */
static np_addr plain(const np_addr *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	np_addr r = *a;
	if (a->family == AF_INET6 && !memcmp(a->b, mapped, 12)) {
		r = (np_addr){AF_INET, {0}};
		memcpy(r.b, a->b + 12, 4);
	}
	return r;
}

bool np_internal_addr_allowed(const struct nono_proxy_config *c, const np_addr *a, uint16_t port)
{
	np_addr want = plain(a);
	const char *why;
	if (np_classify(&want, &why) == NP_METADATA)
		return false;
	for (size_t i = 0; i < c->ninternal; i++) {
		const np_pattern *p = &c->internal[i];
		if (p->port && p->port != port)
			continue;
		for (unsigned j = 0; j < p->naddrs; j++) {
			np_addr g = plain(&p->addrs[j]);
			if (same(&g, &want))
				return true;
		}
	}
	return false;
}
