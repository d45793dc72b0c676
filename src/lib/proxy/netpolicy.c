/* netpolicy.c — which destinations the proxy may dial: address classification (internal ranges and
 * cloud metadata endpoints in every spelling) and the host allowlist matcher. Pure functions, no I/O:
 * the table below is the policy, unit-tested in tests/unit/test_netpolicy.c. */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

/* ---- IPv4 ranges: metadata endpoints first (exact), then internal ranges. ---- */
struct v4range {
	uint32_t net;
	unsigned bits;
	np_class cls;
	const char *why;
};

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static const struct v4range v4_table[] = {
	{V4(169, 254, 169, 254), 32, NP_METADATA, "cloud metadata endpoint (AWS/GCP/Azure IMDS)"},
	{V4(169, 254, 170, 2), 32, NP_METADATA, "cloud metadata endpoint (AWS ECS task metadata)"},
	{V4(100, 100, 100, 200), 32, NP_METADATA, "cloud metadata endpoint (Alibaba Cloud)"},
	{V4(168, 63, 129, 16), 32, NP_METADATA, "cloud metadata endpoint (Azure WireServer)"},
	{V4(192, 0, 0, 192), 32, NP_METADATA, "cloud metadata endpoint (Oracle Cloud)"},
	{V4(0, 0, 0, 0), 8, NP_INTERNAL, "unspecified / this-network address (0.0.0.0/8)"},
	{V4(10, 0, 0, 0), 8, NP_INTERNAL, "private address (RFC 1918 10/8)"},
	{V4(100, 64, 0, 0), 10, NP_INTERNAL, "carrier-grade NAT address (100.64/10)"},
	{V4(127, 0, 0, 0), 8, NP_INTERNAL, "loopback address (127/8)"},
	{V4(169, 254, 0, 0), 16, NP_INTERNAL, "link-local address (169.254/16)"},
	{V4(172, 16, 0, 0), 12, NP_INTERNAL, "private address (RFC 1918 172.16/12)"},
	{V4(192, 0, 0, 0), 24, NP_INTERNAL, "IETF protocol assignment (192.0.0/24)"},
	{V4(192, 168, 0, 0), 16, NP_INTERNAL, "private address (RFC 1918 192.168/16)"},
	{V4(198, 18, 0, 0), 15, NP_INTERNAL, "benchmarking network (198.18/15)"},
	{V4(224, 0, 0, 0), 4, NP_INTERNAL, "multicast address (224/4)"},
	{V4(240, 0, 0, 0), 4, NP_INTERNAL, "reserved / broadcast address (240/4)"},
};

static np_class classify_v4(uint32_t a, const char **why)
{
	for (size_t i = 0; i < sizeof v4_table / sizeof v4_table[0]; i++) {
		const struct v4range *r = &v4_table[i];
		uint32_t mask = r->bits == 0 ? 0 : 0xffffffffu << (32 - r->bits);
		if ((a & mask) == (r->net & mask)) {
			*why = r->why;
			return r->cls;
		}
	}
	*why = "public address";
	return NP_PUBLIC;
}

static uint32_t be32_at(const uint8_t *b)
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* The stricter of two classes (metadata > internal > public). */
static np_class worst(np_class a, const char *wa, np_class b, const char *wb, const char **why)
{
	if (b > a) {
		*why = wb;
		return b;
	}
	*why = wa;
	return a;
}

static bool v6_prefix(const uint8_t *b, const uint8_t *p, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(b, p, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (b[full] & mask) == (p[full] & mask);
}

static np_class classify_v6(const uint8_t *b, const char **why)
{
	static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
				       nat64[12] = {0, 0x64, 0xff, 0x9b},
				       siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},
				       nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1},
				       sixtofour[2] = {0x20, 0x02}, teredo[4] = {0x20, 0x01, 0, 0},
				       ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54},
				       ula[1] = {0xfc}, linklocal[2] = {0xfe, 0x80}, sitelocal[2] = {0xfe, 0xc0},
				       mcast[1] = {0xff}, discard[8] = {0x01, 0x00}, doc[4] = {0x20, 0x01, 0x0d, 0xb8};
	const char *w2;
	np_class c;

	if (memcmp(b, ec2, 16) == 0) {
		*why = "cloud metadata endpoint (AWS IMDS IPv6)";
		return NP_METADATA;
	}
	/* Embedded IPv4: whatever the v4 address is, the v6 spelling is at least as bad. */
	if (memcmp(b, mapped, 12) == 0)
		return classify_v4(be32_at(b + 12), why); /* ::ffff:a.b.c.d reaches a.b.c.d */
	if (memcmp(b, nat64, 12) == 0) /* 64:ff9b::/96 (RFC 6052): a NAT64 gateway dials a.b.c.d */
		return classify_v4(be32_at(b + 12), why);
	if (memcmp(b, siit, 12) == 0) /* ::ffff:0:a.b.c.d (RFC 2765 SIIT): a translator dials it */
		return classify_v4(be32_at(b + 12), why);
	if (memcmp(b, zero, 15) == 0 && b[15] <= 1) {
		*why = b[15] ? "loopback address (::1)" : "unspecified address (::)";
		return NP_INTERNAL;
	}
	if (memcmp(b, zero, 12) == 0) { /* deprecated IPv4-compatible ::a.b.c.d */
		c = classify_v4(be32_at(b + 12), &w2);
		return worst(NP_INTERNAL, "IPv4-compatible IPv6 address (::/96)", c, w2, why);
	}
	if (v6_prefix(b, nat64_local, 48)) { /* 64:ff9b:1::/48 local-use NAT64 (RFC 8215) */
		c = classify_v4(be32_at(b + 12), &w2);
		return worst(NP_INTERNAL, "local-use NAT64 prefix (64:ff9b:1::/48)", c, w2, why);
	}
	if (v6_prefix(b, sixtofour, 16)) /* 2002:AABB:CCDD::/48 (RFC 3056) relays to AA.BB.CC.DD */
		return classify_v4(be32_at(b + 2), why);
	if (v6_prefix(b, teredo, 32)) { /* Teredo: server at bits 32..63, client ~bits 96..127 */
		np_class cs = classify_v4(be32_at(b + 4), &w2);
		const char *w3;
		np_class cc = classify_v4(~be32_at(b + 12), &w3);
		return worst(cs, w2, cc, w3, why);
	}
	if (v6_prefix(b, ula, 7)) {
		*why = "unique local address (fc00::/7)";
		return NP_INTERNAL;
	}
	if (v6_prefix(b, linklocal, 10)) {
		*why = "link-local address (fe80::/10)";
		return NP_INTERNAL;
	}
	if (v6_prefix(b, sitelocal, 10)) {
		*why = "site-local address (fec0::/10)";
		return NP_INTERNAL;
	}
	if (v6_prefix(b, mcast, 8)) {
		*why = "multicast address (ff00::/8)";
		return NP_INTERNAL;
	}
	if (v6_prefix(b, discard, 64)) {
		*why = "discard-only address (100::/64)";
		return NP_INTERNAL;
	}
	if (v6_prefix(b, doc, 32)) {
		*why = "documentation address (2001:db8::/32)";
		return NP_INTERNAL;
	}
	*why = "public address";
	return NP_PUBLIC;
}

np_class np_classify(const np_addr *a, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (a->family == AF_INET)
		return classify_v4(be32_at(a->b), why);
	if (a->family == AF_INET6)
		return classify_v6(a->b, why);
	*why = "not an IP address";
	return NP_INTERNAL; /* fail closed */
}

np_class np_classify_sockaddr(const struct sockaddr *sa, const char **why)
{
	np_addr a = {.family = sa->sa_family};
	if (sa->sa_family == AF_INET)
		memcpy(a.b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(a.b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return np_classify(&a, why);
}

/* ---- IP literals ---- */

/* One inet_aton part: decimal, 0-prefixed octal or 0x hex. Returns -1 when malformed. */
static int parse_part(const char *s, size_t len, uint64_t *v)
{
	unsigned base = 10;
	if (len == 0)
		return -1;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
		if (len == 0) /* glibc's inet_aton takes "0x" as 0 */
			return (*v = 0), 0;
	} else if (len >= 2 && s[0] == '0') {
		base = 8;
		s++;
		len--;
	}
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		if ((unsigned)d >= base)
			return -1;
		x = x * base + (unsigned)d;
		if (x > 0xffffffffull)
			return -1;
	}
	*v = x;
	return 0;
}

static int parse_v4_any(const char *host, uint32_t *out)
{
	uint64_t parts[4];
	size_t n = 0;
	const char *p = host;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 4 || parse_part(p, len, &parts[n]) < 0)
			return -1;
		n++;
		if (!dot)
			break;
		p = dot + 1;
	}
	/* a.b.c.d, a.b.c (c is 16 bits), a.b (b is 24 bits), a (32 bits) */
	uint64_t limit_last = 0xffffffffull >> (8 * (n - 1));
	for (size_t i = 0; i + 1 < n; i++)
		if (parts[i] > 0xff)
			return -1;
	if (parts[n - 1] > limit_last)
		return -1;
	uint32_t v = (uint32_t)parts[n - 1];
	for (size_t i = 0; i + 1 < n; i++)
		v |= (uint32_t)parts[i] << (24 - 8 * i);
	*out = v;
	return 0;
}

int np_parse_ip_literal(const char *host, np_addr *out)
{
	char buf[NP_HOST_MAX];
	size_t len = strlen(host);
	if (len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, host, len + 1);
	if (buf[0] == '[' && len >= 2 && buf[len - 1] == ']') {
		memmove(buf, buf + 1, len - 2);
		buf[len - 2] = '\0';
		len -= 2;
	}
	if (strchr(buf, ':')) {
		/* A zone id ("fe80::1%eth0") is never valid in a URL host we accept. */
		struct in6_addr a6;
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -EINVAL;
		out->family = AF_INET6;
		memcpy(out->b, &a6, 16);
		return 1;
	}
	if (len && buf[len - 1] == '.') /* "127.0.0.1." resolves like "127.0.0.1" */
		buf[--len] = '\0';
	const char *last = strrchr(buf, '.');
	last = last ? last + 1 : buf;
	/* A DNS top-level label never starts with a digit, so a host whose last label does is an
	 * address in some spelling (or garbage) — never a name to look up. */
	if (!(*last >= '0' && *last <= '9'))
		return 0;
	uint32_t v;
	if (parse_v4_any(buf, &v) < 0)
		return -EINVAL;
	out->family = AF_INET;
	out->b[0] = (uint8_t)(v >> 24);
	out->b[1] = (uint8_t)(v >> 16);
	out->b[2] = (uint8_t)(v >> 8);
	out->b[3] = (uint8_t)v;
	return 1;
}

void np_addr_format(const np_addr *a, char *buf, size_t cap)
{
	if (!inet_ntop(a->family, a->b, buf, (socklen_t)cap) && cap)
		buf[0] = '\0';
}

socklen_t np_sockaddr(const np_addr *a, uint16_t port, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->b, 4);
		return sizeof *s4;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->b, 16);
	return sizeof *s6;
}

/* ---- host names ---- */

int np_host_normalize(const char *in, size_t len, char *out, size_t cap)
{
	if (len >= 2 && in[0] == '[' && in[len - 1] == ']') {
		in++;
		len -= 2;
	}
	if (len && in[len - 1] == '.' && !memchr(in, ':', len))
		len--;
	if (len == 0 || len >= cap || len > 253)
		return -EINVAL;
	bool v6 = memchr(in, ':', len) != NULL;
	if (!v6 && in[len - 1] == '.')
		return -EINVAL; /* "a.." : an empty last label */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (v6) {
			if (!(isxdigit(c) || c == ':' || c == '.'))
				return -EINVAL;
		} else if (!(isalnum(c) || c == '-' || c == '_' || c == '.')) {
			return -EINVAL;
		}
		if (c == '.' && (i == 0 || in[i - 1] == '.') && !v6)
			return -EINVAL; /* empty label */
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

bool np_is_metadata_name(const char *host)
{
	static const char *const names[] = {
		"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
		"instance-data.ec2.internal", "metadata.azure.com", "metadata.azure.internal",
		"metadata.tencentyun.com", "metadata.platformequinix.com",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(host, names[i]) == 0)
			return true;
	/* Any name under a metadata domain, e.g. "computeMetadata.metadata.google.internal". */
	size_t hl = strlen(host);
	static const char *const suffixes[] = {".metadata.google.internal", ".metadata.goog"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		size_t sl = strlen(suffixes[i]);
		if (hl > sl && strcmp(host + hl - sl, suffixes[i]) == 0)
			return true;
	}
	return false;
}

/* ---- allowlist patterns ---- */

int np_pattern_parse(const char *text, bool allow_wildcard, bool port_required, np_pattern *out,
		     const char **why)
{
	char host[NP_HOST_MAX + 2];
	uint16_t port = 0;
	memset(out, 0, sizeof *out);
	if (!text || !*text)
		return (*why = "empty pattern"), -EINVAL;
	char bracketed[NP_HOST_MAX + 16];
	if (np_pattern_precheck(text, bracketed, sizeof bracketed, &text, why) < 0)
		return -EINVAL;
	size_t len = strlen(text);
	if (len > NP_HOST_MAX + 8)
		return (*why = "pattern too long"), -EINVAL;
	if (http_split_authority(text, len, 0, host, sizeof host, &port) < 0) {
		if (port_required)
			return (*why = "expected host:port with a port 1-65535"), -EINVAL;
		if (http_split_authority(text, len, 1, host, sizeof host, &port) < 0)
			return (*why = "bad host or port"), -EINVAL;
		port = 0;
	}
	const char *h = host;
	if (h[0] == '*') {
		if (!allow_wildcard)
			return (*why = "wildcards are not allowed here"), -EINVAL;
		if (h[1] != '.' || h[2] == '\0')
			return (*why = "a wildcard must be \"*.suffix\""), -EINVAL;
		h += 2;
		out->wildcard = true;
	}
	if (strchr(h, '*'))
		return (*why = "'*' is only allowed as a leading \"*.\""), -EINVAL;
	if (np_host_normalize(h, strlen(h), out->host, sizeof out->host) < 0)
		return (*why = "bad host name"), -EINVAL;
	np_addr a;
	int lit = np_parse_ip_literal(out->host, &a);
	if (lit < 0)
		return (*why = "host looks numeric but is not a valid IP address"), -EINVAL;
	if (lit == 1) {
		if (out->wildcard)
			return (*why = "a wildcard cannot apply to an IP address"), -EINVAL;
		np_addr_format(&a, out->host, sizeof out->host); /* canonical spelling */
	}
	if (out->wildcard && np_public_suffix(out->host))
		return (*why = "a wildcard over a public suffix (\"*.com\", \"*.co.uk\", "
			       "\"*.github.io\") would allow names anyone can register; list the "
			       "hosts, or a suffix you control"), -EINVAL;
	out->port = port;
	return 0;
}

bool np_pattern_match(const np_pattern *p, const char *host, uint16_t port)
{
	if (p->port && p->port != port)
		return false;
	if (!p->wildcard) {
		np_addr a;
		if (np_parse_ip_literal(host, &a) == 1) {
			char canon[64];
			np_addr_format(&a, canon, sizeof canon);
			return strcmp(canon, p->host) == 0;
		}
		return strcmp(host, p->host) == 0;
	}
	np_addr a;
	if (np_parse_ip_literal(host, &a) != 0) /* "*.suffix" never matches an address */
		return false;
	size_t hl = strlen(host), sl = strlen(p->host);
	return hl > sl + 1 && host[hl - sl - 1] == '.' && strcmp(host + hl - sl, p->host) == 0;
}
