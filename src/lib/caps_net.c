/* caps_net.c — internal destinations a proxy-only command may reach directly
 * (nono_caps_allow_internal): parsed with the proxy's own host:port grammar and classified by the
 * proxy's own address policy (netpolicy.c), so "internal" and "metadata" mean the same thing for
 * a direct connect and for a proxied request. Names are resolved when granted, as paths are
 * canonicalised when granted: the supervisor then compares addresses only. */
#include "caps_int.h"
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIRECT 256

void nono_caps_direct_free(nono_caps *caps)
{
	for (size_t i = 0; i < caps->ndirect; i++)
		free(caps->direct[i].host);
	free(caps->direct);
	caps->direct = NULL;
	caps->ndirect = 0;
}

int nono_caps_direct_copy(nono_caps *dst, const nono_caps *src)
{
	if (!src->ndirect)
		return 0;
	dst->direct = calloc(src->ndirect, sizeof *dst->direct);
	if (!dst->direct)
		return -ENOMEM;
	for (size_t i = 0; i < src->ndirect; i++) {
		dst->direct[i] = src->direct[i];
		dst->direct[i].host = strdup(src->direct[i].host);
		dst->ndirect++;
		if (!dst->direct[i].host)
			return -ENOMEM;
	}
	return 0;
}

/* "localhost" and names below it are loopback (RFC 6761 §6.3): both families, no lookup. */
static bool is_localhost(const char *host)
{
	size_t n = strlen(host);
	return !strcmp(host, "localhost") || (n > 10 && !strcmp(host + n - 10, ".localhost"));
}

/* The addresses `host` stands for (at most NP_MAX_ADDRS). Returns the count or -errno. */
static int resolve(const char *host, np_addr *out, nono_error *err)
{
	int lit = np_parse_ip_literal(host, &out[0]);
	if (lit == 1 && out[0].family == AF_INET)
		memset(out[0].b + 4, 0, 12); /* only 4 bytes are defined: compare whole arrays */
	if (lit == 1)
		return 1;
	if (lit < 0)
		return nono_fail(err, -EINVAL, "%s looks numeric but is not an IP address", host);
	if (is_localhost(host)) {
		out[0] = (np_addr){AF_INET, {127, 0, 0, 1}};
		out[1] = (np_addr){AF_INET6, {0}};
		out[1].b[15] = 1;
		return 2;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return nono_fail(err, rc == EAI_MEMORY ? -ENOMEM : -ENOENT,
				 "cannot resolve %s: %s", host, gai_strerror(rc));
	int n = 0;
	for (struct addrinfo *ai = res; ai && n < NP_MAX_ADDRS; ai = ai->ai_next) {
		np_addr a = {ai->ai_family, {0}};
		if (ai->ai_family == AF_INET)
			memcpy(a.b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		else if (ai->ai_family == AF_INET6)
			memcpy(a.b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		else
			continue;
		bool dup = false;
		for (int j = 0; j < n; j++)
			dup |= out[j].family == a.family && !memcmp(out[j].b, a.b, 16);
		if (!dup)
			out[n++] = a;
	}
	freeaddrinfo(res);
	if (n == 0)
		return nono_fail(err, -ENOENT, "%s has no IPv4/IPv6 address", host);
	return n;
}

/* Every address must be internal: metadata never, public through the proxy's allowlist. */
static int check_internal(const char *hp, const np_addr *a, int n, nono_error *err)
{
	for (int i = 0; i < n; i++) {
		const char *why = "";
		char t[64];
		np_addr_format(&a[i], t, sizeof t);
		np_class c = np_classify(&a[i], &why);
		if (c == NP_METADATA)
			return nono_fail(err, -EPERM,
					 "internal \"%s\": %s is a %s: cloud metadata endpoints can "
					 "never be allowed",
					 hp, t, why);
		if (c == NP_PUBLIC)
			return nono_fail(err, -EINVAL,
					 "internal \"%s\": %s is a public address (public hosts are "
					 "reached through the proxy: allow them as a domain)",
					 hp, t);
	}
	return 0;
}

static bool have_direct(const nono_caps *caps, const np_addr *a, uint16_t port)
{
	for (size_t i = 0; i < caps->ndirect; i++) {
		const struct nono_direct *d = &caps->direct[i];
		if (d->family == a->family && d->port == port && !memcmp(d->addr, a->b, 16))
			return true;
	}
	return false;
}

int nono_caps_allow_internal(nono_caps *caps, const char *host_port, nono_error *err)
{
	np_pattern p;
	const char *why = "";
	if (!caps || !host_port)
		return nono_fail(err, -EINVAL, "caps and host_port are required");
	if (np_pattern_parse(host_port, false, true, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "internal \"%s\": %s", host_port, why);
	if (np_is_metadata_name(p.host))
		return nono_fail(err, -EPERM,
				 "internal \"%s\": cloud metadata endpoints can never be allowed",
				 host_port);
	np_addr a[NP_MAX_ADDRS];
	int n = resolve(p.host, a, err);
	if (n < 0)
		return n;
	int rc = check_internal(host_port, a, n, err);
	if (rc < 0)
		return rc;
	if (caps->ndirect + (size_t)n > MAX_DIRECT)
		return nono_fail(err, -EINVAL, "too many internal addresses (limit %d)", MAX_DIRECT);
	struct nono_direct *v = realloc(caps->direct, (caps->ndirect + (size_t)n) * sizeof *v);
	if (!v)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->direct = v;
	for (int i = 0; i < n; i++) {
		if (have_direct(caps, &a[i], p.port))
			continue;
		struct nono_direct *d = &caps->direct[caps->ndirect];
		memset(d, 0, sizeof *d);
		if (!(d->host = strdup(p.host)))
			return nono_fail(err, -ENOMEM, "out of memory");
		d->family = a[i].family;
		memcpy(d->addr, a[i].b, 16);
		np_addr_format(&a[i], d->text, sizeof d->text);
		d->port = p.port;
		caps->ndirect++;
	}
	return 0;
}

size_t nono_caps_internal_count(const nono_caps *caps)
{
	return caps ? caps->ndirect : 0;
}

int nono_caps_internal(const nono_caps *caps, size_t i, nono_internal_dest *out)
{
	if (!caps || !out || i >= caps->ndirect)
		return -ERANGE;
	const struct nono_direct *d = &caps->direct[i];
	*out = (nono_internal_dest){d->host, d->text, d->port};
	return 0;
}

/* Append `item` to the comma list in `buf` unless it is there already. */
static void list_add(char *buf, size_t cap, const char *item)
{
	size_t il = strlen(item);
	for (const char *s = buf; *s;) {
		const char *e = strchr(s, ',');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == il && !memcmp(s, item, il))
			return;
		s += l + (e ? 1 : 0);
	}
	size_t bl = strlen(buf);
	if (bl + il + 2 <= cap)
		snprintf(buf + bl, cap - bl, "%s%s", bl ? "," : "", item);
}

char *nono_caps_no_proxy(const nono_caps *caps)
{
	size_t cap = 64;
	for (size_t i = 0; caps && i < caps->ndirect; i++)
		cap += strlen(caps->direct[i].host) + sizeof caps->direct[i].text + 2;
	char *buf = calloc(1, cap);
	if (!buf || !caps)
		return buf;
	for (size_t i = 0; i < caps->ndirect; i++) {
		list_add(buf, cap, caps->direct[i].host);
		list_add(buf, cap, caps->direct[i].text);
	}
	if (caps->nports) {
		list_add(buf, cap, "localhost");
		list_add(buf, cap, "127.0.0.1");
		list_add(buf, cap, "::1");
	}
	return buf;
}
