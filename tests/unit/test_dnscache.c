/* test_dnscache.c — the proxy's DNS memory (src/lib/proxy/dnscache.c): exact names, lifetime, the
 * bounded table (the oldest makes room), the address clamp, and what is never stored. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <arpa/inet.h>
#include <stdio.h>

static np_addr v4(const char *s)
{
	np_addr a = {.family = AF_INET};
	inet_pton(AF_INET, s, a.b);
	return a;
}

static void test_get_put_and_lifetime(struct np_dnscache *d)
{
	np_addr out[NP_MAX_ADDRS], in[2] = {v4("203.0.113.7"), v4("203.0.113.8")};
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 1000, out), 0);
	np_dnscache_put(d, "a.test", in, 2, 1000);
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 1000, out), 2);
	CHECK(memcmp(out, in, sizeof in) == 0);
	/* exact names only: no prefix, suffix or case folding (names arrive normalised) */
	CHECK_EQ_INT(np_dnscache_get(d, "a.tes", 1000, out), 0);
	CHECK_EQ_INT(np_dnscache_get(d, "b.a.test", 1000, out), 0);
	CHECK_EQ_INT(np_dnscache_get(d, "A.TEST", 1000, out), 0);
	/* alive until the lifetime ends, gone from then on */
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 1000 + NP_DNS_CACHE_MS - 1, out), 2);
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 1000 + NP_DNS_CACHE_MS, out), 0);
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 1000, out), 0); /* the expired slot was freed */
	/* a new answer replaces the old one and starts a new lifetime */
	np_dnscache_put(d, "a.test", in, 2, 5000);
	np_dnscache_put(d, "a.test", &in[1], 1, 6000);
	CHECK_EQ_INT(np_dnscache_get(d, "a.test", 6000 + NP_DNS_CACHE_MS - 1, out), 1);
	CHECK(memcmp(out, &in[1], sizeof in[1]) == 0);
}

static void test_never_stored(struct np_dnscache *d)
{
	np_addr out[NP_MAX_ADDRS], a = v4("203.0.113.9");
	np_dnscache_put(d, "none.test", &a, 0, 1000); /* a failed or empty answer */
	CHECK_EQ_INT(np_dnscache_get(d, "none.test", 1000, out), 0);
	np_dnscache_put(d, "", &a, 1, 1000);
	CHECK_EQ_INT(np_dnscache_get(d, "", 1000, out), 0);
	CHECK_EQ_INT(np_dnscache_get(NULL, "x.test", 1000, out), 0);
	np_dnscache_put(NULL, "x.test", &a, 1, 1000); /* no cache: nothing happens */
}

static void test_clamp(struct np_dnscache *d)
{
	np_addr many[NP_MAX_ADDRS + 4], out[NP_MAX_ADDRS];
	for (int i = 0; i < NP_MAX_ADDRS + 4; i++) {
		char s[32];
		snprintf(s, sizeof s, "198.51.100.%d", i + 1);
		many[i] = v4(s);
	}
	np_dnscache_put(d, "many.test", many, NP_MAX_ADDRS + 4, 1000);
	CHECK_EQ_INT(np_dnscache_get(d, "many.test", 1000, out), NP_MAX_ADDRS);
	CHECK(memcmp(out, many, sizeof out) == 0);
}

static void test_full_table(void)
{
	struct np_dnscache *d = NULL;
	CHECK_EQ_INT(np_dnscache_new(&d), 0);
	np_addr a = v4("203.0.113.1"), out[NP_MAX_ADDRS];
	char name[64];
	/* fill every slot, each a millisecond younger than the one before */
	for (int i = 0; i < NP_DNS_CACHE_N; i++) {
		snprintf(name, sizeof name, "n%d.test", i);
		np_dnscache_put(d, name, &a, 1, 10000 + i);
	}
	int64_t now = 10000 + NP_DNS_CACHE_N;
	CHECK_EQ_INT(np_dnscache_get(d, "n0.test", now, out), 1);
	/* one more: the oldest (n0) makes room, everyone else stays */
	np_dnscache_put(d, "new.test", &a, 1, now);
	CHECK_EQ_INT(np_dnscache_get(d, "new.test", now, out), 1);
	CHECK_EQ_INT(np_dnscache_get(d, "n0.test", now, out), 0);
	int kept = 0;
	for (int i = 1; i < NP_DNS_CACHE_N; i++) {
		snprintf(name, sizeof name, "n%d.test", i);
		kept += np_dnscache_get(d, name, now, out) == 1;
	}
	CHECK_EQ_INT(kept, NP_DNS_CACHE_N - 1);
	np_dnscache_free(d);
}

int main(void)
{
	struct np_dnscache *d = NULL;
	CHECK_EQ_INT(np_dnscache_new(&d), 0);
	test_get_put_and_lifetime(d);
	test_never_stored(d);
	test_clamp(d);
	np_dnscache_free(d);
	np_dnscache_free(NULL);
	test_full_table();
	UNIT_DONE();
}
