/* fuzz_socks5.c — libFuzzer harness for the SOCKS5 messages the proxy parses from untrusted bytes
 * (socks5_wire.c): greeting, RFC 1929 username/password, request; and the host a request names
 * through the proxy's name check (normalisation, IP literals).
 *
 * Properties checked on every input (a failure traps):
 * - a parser never consumes more than it was given, and a complete message parsed from a prefix is
 *   the same message (same length, same fields) as parsed from the whole input;
 * - fed byte by byte, a parser asks for more (0) until it has its message, then agrees with the
 *   one-shot result;
 * - a complete request names a NUL-free host of bounded length and a port 1-65535, and a refused
 *   one carries a reply code (0x01, 0x07, 0x08). */
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

static void greeting(const uint8_t *b, size_t len)
{
	unsigned off, off2;
	int r = socks5_parse_greeting(b, len, &off);
	REQUIRE(r <= (int)len);
	for (size_t n = 0; n <= len; n++) {
		int p = socks5_parse_greeting(b, n, &off2);
		if (p != 0) {
			REQUIRE(p == r && (p < 0 || off2 == off));
			break;
		}
	}
}

static void userpass(const uint8_t *b, size_t len)
{
	char u[256], p[256], u2[256], p2[256];
	int r = socks5_parse_userpass(b, len, u, p);
	REQUIRE(r <= (int)len);
	if (r > 0) {
		REQUIRE(strlen(u) < 256 && strlen(p) < 256);
		REQUIRE((size_t)r == 3 + strlen(u) + strlen(p));
	}
	for (size_t n = 0; n <= len; n++) {
		int q = socks5_parse_userpass(b, n, u2, p2);
		if (q != 0) {
			REQUIRE(q == r);
			if (q > 0)
				REQUIRE(!strcmp(u, u2) && !strcmp(p, p2));
			break;
		}
	}
}

static void request(const struct nono_proxy_config *cfg, const uint8_t *b, size_t len)
{
	char host[NP_HOST_MAX], host2[NP_HOST_MAX], norm[NP_HOST_MAX];
	uint16_t port, port2;
	uint8_t rep, rep2;
	int r = socks5_parse_request(b, len, host, sizeof host, &port, &rep);
	REQUIRE(r <= (int)len);
	if (r > 0) {
		REQUIRE(rep == 0 && port != 0 && strlen(host) > 0 && strlen(host) < NP_HOST_MAX);
		np_verdict v;
		np_check_name(cfg, host, port, norm, &v);
		REQUIRE(strlen(norm) < NP_HOST_MAX);
	} else if (r < 0) {
		REQUIRE(rep == 0x01 || rep == 0x07 || rep == 0x08);
	}
	for (size_t n = 0; n <= len; n++) {
		int q = socks5_parse_request(b, n, host2, sizeof host2, &port2, &rep2);
		if (q != 0) {
			REQUIRE(q == r && rep2 == rep);
			if (q > 0)
				REQUIRE(port2 == port && !strcmp(host, host2));
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static nono_proxy_config *cfg;
	if (!cfg) {
		cfg = nono_proxy_config_new();
		nono_proxy_config_allow_host(cfg, "*.example.com", NULL);
		nono_proxy_config_allow_internal(cfg, "127.0.0.1:22", NULL);
	}
	if (size > 4096)
		return 0;
	greeting(data, size);
	userpass(data, size);
	request(cfg, data, size);
	return 0;
}
