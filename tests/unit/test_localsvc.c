/* test_localsvc.c — local services and why --host, in the library: nono_caps_allow_internal
 * (resolution, refusals, dedupe, NO_PROXY), the plan's refusal outside proxy-only, the supervisor's
 * direct-destination check, the proxy's internal grant by resolved address, and
 * nono_proxy_config_query_host's codes. */
#include "../../src/lib/proxy/proxy_int.h"
#include "../../src/lib/supervisor_int.h"
#include "unit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static void test_caps_allow_internal(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_allow_internal(c, "169.254.169.254:80", &e), -EPERM);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "metadata.google.internal:80", &e), -EPERM);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "[fd00:ec2::254]:80", &e), -EPERM);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "8.8.8.8:53", &e), -EINVAL);
	CHECK(strstr(e.message, "public address") != NULL);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "127.0.0.1", &e), -EINVAL); /* port required */
	CHECK_EQ_INT(nono_caps_allow_internal(c, "*.lan:80", &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_internal_count(c), 0);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "localhost:8080", &e), 0);
	CHECK_EQ_INT(nono_caps_internal_count(c), 2); /* 127.0.0.1 and ::1, no lookup */
	CHECK_EQ_INT(nono_caps_allow_internal(c, "127.0.0.1:8080", &e), 0); /* already there */
	CHECK_EQ_INT(nono_caps_allow_internal(c, "[fd12::1]:5432", &e), 0);
	CHECK_EQ_INT(nono_caps_internal_count(c), 3);
	nono_internal_dest d;
	CHECK_EQ_INT(nono_caps_internal(c, 0, &d), 0);
	CHECK_STR(d.host, "localhost");
	CHECK_STR(d.addr, "127.0.0.1");
	CHECK_EQ_INT(d.port, 8080);
	CHECK_EQ_INT(nono_caps_internal(c, 1, &d), 0);
	CHECK_STR(d.addr, "::1");
	CHECK_EQ_INT(nono_caps_internal(c, 3, &d), -ERANGE);
	char *np = nono_caps_no_proxy(c);
	CHECK_STR(np, "localhost,127.0.0.1,::1,fd12::1");
	free(np);
	nono_caps *k = nono_caps_clone(c);
	CHECK_EQ_INT(nono_caps_internal_count(k), 3);
	nono_caps_free(k);
	/* the plan refuses internal grants outside proxy-only, for every front end */
	nono_report rep;
	CHECK_EQ_INT(nono_plan_report(c, 0, &rep, &e), -EINVAL);
	CHECK(strstr(e.message, "proxy-only") != NULL);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 0, &e), 0);
	int r = nono_plan_report(c, 0, &rep, &e);
	CHECK(r == 0 || r == -EOPNOTSUPP);
	nono_caps_free(c);
	nono_caps *empty = nono_caps_new();
	np = nono_caps_no_proxy(empty);
	CHECK_STR(np, ""); /* nothing direct */
	free(np);
	CHECK_EQ_INT(nono_caps_allow_bind(empty, 9000, &e), 0);
	np = nono_caps_no_proxy(empty);
	CHECK_STR(np, "localhost,127.0.0.1,::1"); /* its own listeners */
	free(np);
	nono_caps_free(empty);
}

static struct sockaddr_storage sa(const char *ip, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage s;
	memset(&s, 0, sizeof s);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (void *)&s;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		*len = sizeof *a;
	} else {
		struct sockaddr_in *a = (void *)&s;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		*len = sizeof *a;
	}
	return s;
}

static void test_supervisor_direct(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_allow_internal(c, "10.99.0.1:8080", &e), 0);
	struct nono_supervisor s;
	memset(&s, 0, sizeof s);
	uint16_t ports[] = {9000};
	s.ports = ports;
	s.nports = 1;
	CHECK_EQ_INT(nono_sup_direct_load(&s, c), 0);
	socklen_t l;
	struct sockaddr_storage a = sa("10.99.0.1", 8080, &l);
	CHECK(nono_sup_direct_ok(&s, &a, l));
	a = sa("::ffff:10.99.0.1", 8080, &l); /* the v4-mapped form: the same IPv4 socket */
	CHECK(nono_sup_direct_ok(&s, &a, l));
	a = sa("10.99.0.1", 8081, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	a = sa("10.99.0.2", 8080, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	/* its own listener: only once bound through the supervisor, only on loopback */
	a = sa("127.0.0.1", 9000, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	nono_sup_mark_bound(&s, &a, l);
	CHECK(nono_sup_direct_ok(&s, &a, l));
	/* only the address bound: the same port on the other loopback address may be someone
	 * else's listener */
	a = sa("::1", 9000, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	nono_sup_mark_bound(&s, &a, l);
	CHECK(nono_sup_direct_ok(&s, &a, l));
	a = sa("10.0.0.1", 9000, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	a = sa("127.0.0.1", 9001, &l);
	CHECK(!nono_sup_direct_ok(&s, &a, l));
	nono_sup_direct_free(&s);
	nono_caps_free(c);
}

static void test_proxy_internal_by_address(void)
{
	nono_proxy_config *c = nono_proxy_config_new();
	nono_error e;
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "api.test", &e), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(c, "localhost:8080", &e), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(c, "10.99.0.1:8080", &e), 0);
	np_addr a = {AF_INET, {127, 0, 0, 1}};
	CHECK(np_internal_addr_allowed(c, &a, 8080));
	CHECK(!np_internal_addr_allowed(c, &a, 8081));
	np_addr six = {AF_INET6, {0}};
	six.b[15] = 1;
	CHECK(np_internal_addr_allowed(c, &six, 8080));
	np_addr ten = {AF_INET, {10, 99, 0, 1}};
	memset(ten.b + 4, 0xee, 12); /* bytes past an IPv4 address are not compared */
	CHECK(np_internal_addr_allowed(c, &ten, 8080));
	/* a literal request for a granted address is internal_ok, by address */
	char norm[NP_HOST_MAX];
	np_verdict v;
	np_check_name(c, "127.0.0.1", 8080, norm, &v);
	CHECK(v.allowed && v.internal_ok);
	np_check_name(c, "[::1]", 8080, norm, &v);
	CHECK(v.allowed && v.internal_ok);
	np_check_name(c, "127.0.0.1", 9, norm, &v);
	CHECK(!v.allowed);
	/* an allowlisted name that resolves to a granted internal address may be dialled */
	CHECK(np_check_addr(&ten, "api.test", np_internal_addr_allowed(c, &ten, 8080), &v));
	nono_proxy_config_free(c);
}

static void test_query_host(void)
{
	nono_proxy_config *c = nono_proxy_config_new();
	nono_error e;
	nono_host_decision d;
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "example.com:443", &e), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "*.svc.test", &e), 0);
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "metadata.google.internal", 80, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_STR(d.code, "metadata");
	CHECK_STR(d.flag, "");
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "169.254.169.254", 0, &d, &e), 0);
	CHECK_STR(d.code, "metadata");
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "example.com", 443, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "example.com", 80, &d, &e), 0);
	CHECK_STR(d.code, "port-not-allowed");
	CHECK(strstr(d.reason, "port 80 is not allowed for example.com") != NULL);
	CHECK_STR(d.flag, "--allow-domain example.com:80");
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "other.test", 0, &d, &e), 0);
	CHECK_STR(d.code, "host-not-allowed");
	CHECK_STR(d.flag, "--allow-domain other.test");
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "10.1.2.3", 5432, &d, &e), 0);
	CHECK_STR(d.code, "internal-address");
	CHECK_STR(d.flag, "--allow-internal 10.1.2.3:5432");
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "a.svc.test", 8443, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_EQ_INT(nono_proxy_config_query_host(c, "bad host", 80, &d, &e), 0);
	CHECK_STR(d.code, "bad-host");
	CHECK_EQ_INT(nono_proxy_config_query_host(NULL, "x", 80, &d, &e), -EINVAL);
	nono_proxy_config_free(c);
}

/* Saved and loaded as the grants were given (resolved again on load, like paths). */
static void test_json_round_trip(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "localhost:8080", &e), 0);
	CHECK_EQ_INT(nono_caps_allow_internal(c, "[fd12::1]:5432", &e), 0);
	char *j = nono_caps_to_json(c, &e);
	CHECK(j && strstr(j, "\"internal\"") && strstr(j, "\"localhost:8080\"") &&
	      strstr(j, "\"[fd12::1]:5432\""));
	nono_caps *k = j ? nono_caps_from_json(j, strlen(j), &e) : NULL;
	CHECK(k != NULL);
	CHECK_EQ_INT(nono_caps_internal_count(k), 3);
	char *j2 = k ? nono_caps_to_json(k, &e) : NULL;
	CHECK(j && j2 && strcmp(j, j2) == 0);
	static const char bad[] = "{\"version\": 1, \"internal\": [\"169.254.169.254:80\"]}";
	CHECK(nono_caps_from_json(bad, strlen(bad), &e) == NULL);
	CHECK_EQ_INT(e.code, -EPERM);
	free(j);
	free(j2);
	nono_caps_free(k);
	nono_caps_free(c);
}

int main(void)
{
	test_json_round_trip();
	test_caps_allow_internal();
	test_supervisor_direct();
	test_proxy_internal_by_address();
	test_query_host();
	UNIT_DONE();
}
