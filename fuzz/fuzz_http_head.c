/* fuzz_http_head.c — libFuzzer harness for everything the proxy parses from untrusted bytes before
 * it decides: request heads (whole and in arbitrary pieces), response heads, body framing and the
 * chunked decoder, authorities, absolute URLs, Proxy-Authorization, host normalisation, IP literals
 * in every spelling and allowlist patterns.
 *
 * Properties checked on every input (a failure traps):
 * - incremental parsing agrees with one-shot parsing (same verdict, same head length, same fields);
 * - a complete head's pointers stay inside the input and its length never exceeds it;
 * - the body framer never consumes more than it is given;
 * - an address that parses formats back to a literal that re-parses to the same address and class;
 * - a host that normalises is lower-case, at most 253 bytes, and normalises to itself again.
 */
#include "proxy/proxy_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static void check_head(const char *buf, size_t len, const http_head *h)
{
	REQUIRE(h->head_len <= len && h->skipped < h->head_len);
	REQUIRE(h->nheaders <= HTTP_MAX_HEADERS);
	for (size_t i = 0; i < h->nheaders; i++) {
		const http_header *x = &h->headers[i];
		REQUIRE(x->name >= buf && x->name + x->name_len <= buf + h->head_len);
		REQUIRE(x->value >= buf && x->value + x->value_len <= buf + h->head_len);
		REQUIRE(x->name_len > 0);
	}
}

static void body(http_body *b, const char *p, size_t n, unsigned step)
{
	size_t off = 0;
	for (int guard = 0; off < n && guard < 100000; guard++) {
		size_t piece = n - off < step ? n - off : step;
		long k = http_body_feed(b, p + off, piece);
		if (k < 0)
			return;
		REQUIRE((size_t)k <= piece);
		off += (size_t)k;
		if (b->done || (size_t)k < piece)
			return;
	}
}

static void hosts(const char *s, size_t len)
{
	char norm[NP_HOST_MAX], again[NP_HOST_MAX], host[NP_HOST_MAX + 2];
	uint16_t port;
	if (np_host_normalize(s, len, norm, sizeof norm) == 0) {
		size_t nl = strlen(norm);
		REQUIRE(nl <= 253);
		for (size_t i = 0; i < nl; i++)
			REQUIRE(!(norm[i] >= 'A' && norm[i] <= 'Z'));
		REQUIRE(np_host_normalize(norm, nl, again, sizeof again) == 0 && !strcmp(norm, again));
		np_addr a, b;
		if (np_parse_ip_literal(norm, &a) == 1) {
			char txt[64];
			const char *w1, *w2;
			np_addr_format(&a, txt, sizeof txt);
			REQUIRE(np_parse_ip_literal(txt, &b) == 1);
			REQUIRE(a.family == b.family && !memcmp(a.b, b.b, a.family == AF_INET ? 4 : 16));
			REQUIRE(np_classify(&a, &w1) == np_classify(&b, &w2));
		}
		np_is_metadata_name(norm);
	}
	if (http_split_authority(s, len, 0, host, sizeof host, &port) == 0)
		REQUIRE(port > 0 && strlen(host) < sizeof host);
	const char *path;
	size_t pl;
	if (http_parse_absolute(s, len, host, sizeof host, &port, &path, &pl) == 0 && path)
		REQUIRE(path >= s && path + pl <= s + len);
	/* patterns and verdicts take C strings */
	char *z = malloc(len + 1);
	memcpy(z, s, len);
	z[len] = '\0';
	np_pattern pat;
	const char *why;
	if (np_pattern_parse(z, true, false, &pat, &why) == 0 && strlen(z) == len) {
		np_pattern_match(&pat, pat.host, pat.port ? pat.port : 443);
	}
	nono_proxy_config *cfg = nono_proxy_config_new();
	if (cfg) {
		nono_proxy_config_allow_host(cfg, "*.example.com", NULL);
		nono_proxy_config_allow_internal(cfg, "localhost:8080", NULL);
		np_verdict v;
		np_check_name(cfg, z, 443, norm, &v);
		REQUIRE(v.allowed || (v.code && v.reason[0]));
		nono_proxy_config_free(cfg);
	}
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned step = data[0] ? data[0] : 1; /* first byte: piece size for incremental parsing */
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	http_head whole, inc;
	const char *why = "";
	size_t scan = 0;
	int r1 = http_parse_request(buf, len, &scan, &whole, &why);
	if (r1 < 0)
		REQUIRE(why && *why);
	int r2 = 0;
	scan = 0;
	for (size_t n = step < len ? step : len; ; n = n + step < len ? n + step : len) {
		r2 = http_parse_request(buf, n, &scan, &inc, &why);
		if (r2 != 0 || n == len)
			break;
	}
	REQUIRE(r1 == r2);
	if (r1 == 1) {
		check_head(buf, len, &whole);
		REQUIRE(whole.head_len == inc.head_len && whole.nheaders == inc.nheaders);
		REQUIRE(whole.method == inc.method && whole.target_len == inc.target_len);
		http_body b;
		if (http_request_body(&whole, &b, &why) == 0)
			body(&b, buf + whole.head_len, len - whole.head_len, step);
		http_check_proxy_auth(&whole, "0123456789abcdef0123456789abcdef");
		hosts(whole.target, whole.target_len);
	}
	scan = 0;
	if (http_parse_response(buf, len, &scan, &whole, &why) == 1) {
		check_head(buf, len, &whole);
		http_body b;
		if (http_response_body(&whole, "GET", 3, &b, &why) == 0)
			body(&b, buf + whole.head_len, len - whole.head_len, step);
	}
	/* the raw bytes as a chunked body and as a host */
	http_body cb = {.kind = HTTP_BODY_CHUNKED};
	body(&cb, buf, len, step);
	if (len < 512)
		hosts(buf, len);
	return 0;
}
