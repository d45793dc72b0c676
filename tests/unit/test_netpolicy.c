/* test_netpolicy.c — address classification in every spelling, IP-literal parsing, host
 * normalisation, allowlist patterns and the name/address verdicts. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <arpa/inet.h>
#include <string.h>

struct row {
	const char *host;
	int literal;      /* np_parse_ip_literal result: 1 literal, 0 name, -EINVAL garbage */
	np_class cls;     /* when literal == 1 */
	const char *canon; /* canonical address text, when literal == 1 */
};

static const struct row rows[] = {
	/* metadata endpoints, every spelling */
	{"169.254.169.254", 1, NP_METADATA, "169.254.169.254"},
	{"169.254.169.254.", 1, NP_METADATA, "169.254.169.254"},
	{"2852039166", 1, NP_METADATA, "169.254.169.254"},          /* decimal */
	{"0xa9fea9fe", 1, NP_METADATA, "169.254.169.254"},          /* hex */
	{"0XA9FEA9FE", 1, NP_METADATA, "169.254.169.254"},
	{"0251.0376.0251.0376", 1, NP_METADATA, "169.254.169.254"}, /* octal */
	{"0251.254.169.254", 1, NP_METADATA, "169.254.169.254"},    /* mixed */
	{"0xa9.0xfe.0xa9.0xfe", 1, NP_METADATA, "169.254.169.254"},
	{"169.254.43518", 1, NP_METADATA, "169.254.169.254"},       /* a.b.c, c 16 bits */
	{"169.16689662", 1, NP_METADATA, "169.254.169.254"},        /* a.b, b 24 bits */
	{"::ffff:169.254.169.254", 1, NP_METADATA, "::ffff:169.254.169.254"},
	{"[::ffff:a9fe:a9fe]", 1, NP_METADATA, "::ffff:169.254.169.254"},
	{"64:ff9b::169.254.169.254", 1, NP_METADATA, "64:ff9b::a9fe:a9fe"}, /* NAT64 */
	{"64:ff9b::a9fe:a9fe", 1, NP_METADATA, "64:ff9b::a9fe:a9fe"},
	{"::ffff:0:169.254.169.254", 1, NP_METADATA, "::ffff:0:a9fe:a9fe"}, /* SIIT (RFC 2765) */
	{"2002:a9fe:a9fe::1", 1, NP_METADATA, "2002:a9fe:a9fe::1"},         /* 6to4 */
	{"::169.254.169.254", 1, NP_METADATA, "::169.254.169.254"},         /* v4-compatible */
	{"2001:0:a9fe:a9fe::1", 1, NP_METADATA, "2001:0:a9fe:a9fe::1"},     /* Teredo server */
	{"2001::5601:5601", 1, NP_METADATA, "2001::5601:5601"},             /* Teredo client ~a9fe */
	{"169.254.170.2", 1, NP_METADATA, "169.254.170.2"},
	{"::ffff:169.254.170.2", 1, NP_METADATA, "::ffff:169.254.170.2"},
	{"fd00:ec2::254", 1, NP_METADATA, "fd00:ec2::254"},
	{"[FD00:EC2:0:0:0:0:0:254]", 1, NP_METADATA, "fd00:ec2::254"},
	{"100.100.100.200", 1, NP_METADATA, "100.100.100.200"},
	{"64:ff9b::6464:64c8", 1, NP_METADATA, "64:ff9b::6464:64c8"},
	{"168.63.129.16", 1, NP_METADATA, "168.63.129.16"},
	{"2002:a83f:8110::", 1, NP_METADATA, "2002:a83f:8110::"},
	{"192.0.0.192", 1, NP_METADATA, "192.0.0.192"},
	{"::ffff:192.0.0.192", 1, NP_METADATA, "::ffff:192.0.0.192"},
	/* internal */
	{"127.0.0.1", 1, NP_INTERNAL, "127.0.0.1"},
	{"127.1", 1, NP_INTERNAL, "127.0.0.1"},
	{"2130706433", 1, NP_INTERNAL, "127.0.0.1"},
	{"0x7f000001", 1, NP_INTERNAL, "127.0.0.1"},
	{"017700000001", 1, NP_INTERNAL, "127.0.0.1"},
	{"0177.0.0.1", 1, NP_INTERNAL, "127.0.0.1"},
	{"127.255.255.254", 1, NP_INTERNAL, "127.255.255.254"},
	{"0.0.0.0", 1, NP_INTERNAL, "0.0.0.0"},
	{"0", 1, NP_INTERNAL, "0.0.0.0"},
	{"10.1.2.3", 1, NP_INTERNAL, "10.1.2.3"},
	{"172.16.0.1", 1, NP_INTERNAL, "172.16.0.1"},
	{"172.31.255.255", 1, NP_INTERNAL, "172.31.255.255"},
	{"192.168.1.1", 1, NP_INTERNAL, "192.168.1.1"},
	{"100.64.0.1", 1, NP_INTERNAL, "100.64.0.1"},
	{"100.127.255.255", 1, NP_INTERNAL, "100.127.255.255"},
	{"169.254.1.1", 1, NP_INTERNAL, "169.254.1.1"},
	{"224.0.0.1", 1, NP_INTERNAL, "224.0.0.1"},
	{"255.255.255.255", 1, NP_INTERNAL, "255.255.255.255"},
	{"::1", 1, NP_INTERNAL, "::1"},
	{"[::1]", 1, NP_INTERNAL, "::1"},
	{"::", 1, NP_INTERNAL, "::"},
	{"::ffff:127.0.0.1", 1, NP_INTERNAL, "::ffff:127.0.0.1"},
	{"::ffff:10.0.0.1", 1, NP_INTERNAL, "::ffff:10.0.0.1"},
	{"64:ff9b::7f00:1", 1, NP_INTERNAL, "64:ff9b::7f00:1"},
	{"64:ff9b:1::1", 1, NP_INTERNAL, "64:ff9b:1::1"},
	{"2002:7f00:1::", 1, NP_INTERNAL, "2002:7f00:1::"},
	{"2002:c0a8:101::1", 1, NP_INTERNAL, "2002:c0a8:101::1"},
	{"fe80::1", 1, NP_INTERNAL, "fe80::1"},
	{"febf::1", 1, NP_INTERNAL, "febf::1"},
	{"fc00::1", 1, NP_INTERNAL, "fc00::1"},
	{"fdff::1", 1, NP_INTERNAL, "fdff::1"},
	{"ff02::1", 1, NP_INTERNAL, "ff02::1"},
	{"fec0::1", 1, NP_INTERNAL, "fec0::1"},
	{"100::1", 1, NP_INTERNAL, "100::1"},
	/* public */
	{"93.184.216.34", 1, NP_PUBLIC, "93.184.216.34"},
	{"172.32.0.1", 1, NP_PUBLIC, "172.32.0.1"},
	{"100.128.0.1", 1, NP_PUBLIC, "100.128.0.1"},
	{"169.255.0.1", 1, NP_PUBLIC, "169.255.0.1"},
	{"203.0.113.10", 1, NP_PUBLIC, "203.0.113.10"},
	{"168.63.129.17", 1, NP_PUBLIC, "168.63.129.17"},
	{"2606:4700::1111", 1, NP_PUBLIC, "2606:4700::1111"},
	{"::ffff:8.8.8.8", 1, NP_PUBLIC, "::ffff:8.8.8.8"},
	{"64:ff9b::808:808", 1, NP_PUBLIC, "64:ff9b::808:808"},
	{"2002:808:808::1", 1, NP_PUBLIC, "2002:808:808::1"},
	/* names */
	{"example.com", 0, NP_PUBLIC, NULL},
	{"1password.com", 0, NP_PUBLIC, NULL},
	{"a.b.c.d.example", 0, NP_PUBLIC, NULL},
	{"0x.example", 0, NP_PUBLIC, NULL},
	/* numeric-looking garbage: neither a name nor an address */
	{"256.1.1.1", -EINVAL, NP_PUBLIC, NULL},
	{"1.2.3.4.5", -EINVAL, NP_PUBLIC, NULL},
	{"09.1.1.1", -EINVAL, NP_PUBLIC, NULL},
	{"0xg1", -EINVAL, NP_PUBLIC, NULL},
	{"4294967296", -EINVAL, NP_PUBLIC, NULL},
	{"1.2.65536", -EINVAL, NP_PUBLIC, NULL},
	{"example.123", -EINVAL, NP_PUBLIC, NULL},
	{"fe80::1%eth0", -EINVAL, NP_PUBLIC, NULL},
	{":::1", -EINVAL, NP_PUBLIC, NULL},
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		np_addr a = {0};
		int lit = np_parse_ip_literal(r->host, &a);
		if (lit != r->literal)
			fprintf(stderr, "host %s: literal %d, expected %d\n", r->host, lit, r->literal);
		CHECK_EQ_INT(lit, r->literal);
		if (lit != 1 || r->literal != 1)
			continue;
		const char *why = NULL;
		np_class c = np_classify(&a, &why);
		if (c != r->cls)
			fprintf(stderr, "host %s: class %d (%s), expected %d\n", r->host, c, why, r->cls);
		CHECK_EQ_INT(c, r->cls);
		CHECK(why && *why);
		char canon[64];
		np_addr_format(&a, canon, sizeof canon);
		if (strcmp(canon, r->canon))
			fprintf(stderr, "host %s: canon %s, expected %s\n", r->host, canon, r->canon);
		CHECK_STR(canon, r->canon);
	}
}

static void test_sockaddr(void)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "::ffff:169.254.169.254", &s6.sin6_addr);
	CHECK_EQ_INT(np_classify_sockaddr((struct sockaddr *)&s6, NULL), NP_METADATA);
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	inet_pton(AF_INET, "8.8.4.4", &s4.sin_addr);
	CHECK_EQ_INT(np_classify_sockaddr((struct sockaddr *)&s4, NULL), NP_PUBLIC);
	struct sockaddr su = {.sa_family = AF_UNIX};
	CHECK_EQ_INT(np_classify_sockaddr(&su, NULL), NP_INTERNAL); /* fail closed */
}

static void test_normalize(void)
{
	char out[NP_HOST_MAX];
	CHECK_EQ_INT(np_host_normalize("ExAmple.COM.", 12, out, sizeof out), 0);
	CHECK_STR(out, "example.com");
	CHECK_EQ_INT(np_host_normalize("[::1]", 5, out, sizeof out), 0);
	CHECK_STR(out, "::1");
	CHECK_EQ_INT(np_host_normalize("a..b", 4, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(np_host_normalize(".a", 2, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(np_host_normalize("a b", 3, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(np_host_normalize("a%2eb", 5, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(np_host_normalize("", 0, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(np_host_normalize("a\0b", 3, out, sizeof out), -EINVAL);
	char big[300];
	memset(big, 'a', sizeof big);
	CHECK_EQ_INT(np_host_normalize(big, sizeof big, out, sizeof out), -EINVAL);
	CHECK(np_is_metadata_name("metadata.google.internal"));
	CHECK(np_is_metadata_name("metadata"));
	CHECK(np_is_metadata_name("x.metadata.google.internal"));
	CHECK(!np_is_metadata_name("metadata.example.com"));
}

static void test_patterns(void)
{
	np_pattern p;
	const char *why = "";
	CHECK_EQ_INT(np_pattern_parse("Example.com", true, false, &p, &why), 0);
	CHECK(np_pattern_match(&p, "example.com", 443));
	CHECK(np_pattern_match(&p, "example.com", 8080));
	CHECK(!np_pattern_match(&p, "a.example.com", 443));
	CHECK(!np_pattern_match(&p, "example.com.evil", 443));
	CHECK(!np_pattern_match(&p, "notexample.com", 443));
	CHECK_EQ_INT(np_pattern_parse("*.example.com:443", true, false, &p, &why), 0);
	CHECK(np_pattern_match(&p, "a.example.com", 443));
	CHECK(np_pattern_match(&p, "a.b.example.com", 443));
	CHECK(!np_pattern_match(&p, "example.com", 443)); /* subdomains only */
	CHECK(!np_pattern_match(&p, "a.example.com", 80));
	CHECK(!np_pattern_match(&p, "aexample.com", 443));
	CHECK_EQ_INT(np_pattern_parse("2130706433:80", true, false, &p, &why), 0);
	CHECK_STR(p.host, "127.0.0.1");
	CHECK(np_pattern_match(&p, "0x7f000001", 80)); /* addresses compare by value */
	CHECK(np_pattern_match(&p, "127.0.0.1", 80));
	CHECK(!np_pattern_match(&p, "127.0.0.2", 80));
	CHECK_EQ_INT(np_pattern_parse("[::1]:8080", false, true, &p, &why), 0);
	CHECK(np_pattern_match(&p, "::1", 8080));
	CHECK_EQ_INT(np_pattern_parse("::1:8080", false, true, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("*.1.2.3", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("*example.com", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("*.", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("a.*.com", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("host:", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("host:65536", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("user@host", true, false, &p, &why), -EINVAL);
	CHECK_EQ_INT(np_pattern_parse("256.0.0.1", true, false, &p, &why), -EINVAL);
}

static void test_verdicts(void)
{
	nono_error err = {0};
	nono_proxy_config *c = nono_proxy_config_new();
	char norm[NP_HOST_MAX];
	np_verdict v;
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "*.example.com", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "api.test:443", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_internal(c, "localhost:8080", &err), 0);
	np_check_name(c, "WWW.Example.COM.", 443, norm, &v);
	CHECK(v.allowed && !v.literal && !v.internal_ok);
	CHECK_STR(norm, "www.example.com");
	np_check_name(c, "example.com", 443, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "host-not-allowed");
	CHECK_STR(v.reason, "host example.com is not in the allowlist");
	np_check_name(c, "api.test", 80, norm, &v);
	CHECK(!v.allowed);
	np_check_name(c, "metadata.google.internal", 80, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "metadata");
	np_check_name(c, "0251.0376.0251.0376", 80, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "metadata");
	np_check_name(c, "10.0.0.1", 80, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "internal-address");
	np_check_name(c, "999.1.1.1", 80, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "bad-host");
	np_check_name(c, "localhost", 8080, norm, &v);
	CHECK(v.allowed && v.internal_ok);
	np_check_name(c, "localhost", 8081, norm, &v);
	CHECK(!v.allowed);
	/* address checks after resolution */
	np_addr a = {.family = AF_INET, .b = {127, 0, 0, 1}};
	CHECK(np_check_addr(&a, "localhost", true, &v));
	CHECK(!np_check_addr(&a, "www.example.com", false, &v));
	CHECK_STR(v.code, "internal-address");
	np_addr m = {.family = AF_INET, .b = {169, 254, 169, 254}};
	CHECK(!np_check_addr(&m, "localhost", true, &v)); /* metadata never, even if allowed */
	CHECK_STR(v.code, "metadata");
	np_addr pub = {.family = AF_INET, .b = {93, 184, 216, 34}};
	CHECK(np_check_addr(&pub, "www.example.com", false, &v));
	/* allow_all: public names yes, internal literals still no */
	nono_proxy_config_allow_all_hosts(c, true);
	np_check_name(c, "anything.org", 443, norm, &v);
	CHECK(v.allowed);
	np_check_name(c, "192.168.0.1", 443, norm, &v);
	CHECK(!v.allowed);
	np_check_name(c, "[::ffff:7f00:1]", 443, norm, &v);
	CHECK(!v.allowed);
	nono_proxy_config_free(c);
}

/* nono_proxy_config_allow_host_connect_only: the name is allowed but flagged connect_only, so
 * request.c refuses plain HTTP; a wider grant for the same host:port wins in either call order. */
static void test_connect_only_verdicts(void)
{
	nono_error err = {0};
	nono_proxy_config *c = nono_proxy_config_new();
	char norm[NP_HOST_MAX];
	np_verdict v;
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "a.*.com", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "x.test:0", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, NULL, &err), -EINVAL);
	CHECK(strstr(err.message, "connect-only") != NULL);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(NULL, "x.test", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "*.cx.test", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "api.cx2.test:443", &err), 0);
	/* both ways, connect-only first / allow_host first: the wider grant wins */
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "wide1.test", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "wide1.test", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host(c, "wide2.test:80", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "wide2.test", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "10.0.0.1", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_allow_host_connect_only(c, "metadata.google.internal", &err), 0);

	np_check_name(c, "A.CX.test.", 443, norm, &v);
	CHECK(v.allowed && v.connect_only && !v.internal_ok);
	CHECK_STR(norm, "a.cx.test");
	np_check_name(c, "cx.test", 443, norm, &v); /* the wildcard does not cover the bare suffix */
	CHECK(!v.allowed && !v.connect_only);
	CHECK_STR(v.code, "host-not-allowed");
	np_check_name(c, "api.cx2.test", 443, norm, &v);
	CHECK(v.allowed && v.connect_only);
	np_check_name(c, "api.cx2.test", 80, norm, &v); /* the port is part of the pattern */
	CHECK(!v.allowed && !v.connect_only);
	np_check_name(c, "wide1.test", 80, norm, &v);
	CHECK(v.allowed && !v.connect_only);
	np_check_name(c, "wide2.test", 80, norm, &v);
	CHECK(v.allowed && !v.connect_only);
	np_check_name(c, "wide2.test", 443, norm, &v); /* allow_host only covers :80 */
	CHECK(v.allowed && v.connect_only);
	/* a connect-only pattern never opens internal or metadata targets */
	np_check_name(c, "10.0.0.1", 443, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "internal-address");
	np_check_name(c, "metadata.google.internal", 443, norm, &v);
	CHECK(!v.allowed);
	CHECK_STR(v.code, "metadata");
	/* the running proxy works on a clone: the list must be copied */
	struct nono_proxy_config *k = nono_proxy_config_clone(c);
	CHECK(k != NULL);
	if (k) {
		CHECK(k->allow_connect != c->allow_connect && k->nallow_connect == c->nallow_connect);
		np_check_name(k, "b.cx.test", 8443, norm, &v);
		CHECK(v.allowed && v.connect_only);
		nono_proxy_config_free(k);
	}
	/* allow_all is wider than connect-only */
	nono_proxy_config_allow_all_hosts(c, true);
	np_check_name(c, "a.cx.test", 443, norm, &v);
	CHECK(v.allowed && !v.connect_only);
	nono_proxy_config_free(c);
}

/* Host-pattern mistakes get a precise answer; bare IPv6 literals are accepted (bracketed when a
 * port would make them ambiguous); wildcards over a public suffix are refused. */
static void test_pattern_answers(void)
{
	np_pattern p;
	const char *why = "";
	CHECK_EQ_INT(np_pattern_parse("https://api.example.com/", true, false, &p, &why), -EINVAL);
	CHECK(strstr(why, "give a host, not a URL") != NULL);
	CHECK_EQ_INT(np_pattern_parse("api.example.com/v1", true, false, &p, &why), -EINVAL);
	CHECK(strstr(why, "give a host, not a URL") != NULL);
	CHECK_EQ_INT(np_pattern_parse("b\xc3\xbc" "cher.example", true, false, &p, &why), -EINVAL);
	CHECK(strstr(why, "punycode") != NULL);
	CHECK_EQ_INT(np_pattern_parse("xn--bcher-kva.example", true, false, &p, &why), 0);
	CHECK_EQ_INT(np_pattern_parse("2001:db8::1", true, false, &p, &why), 0);
	CHECK_STR(p.host, "2001:db8::1");
	CHECK(np_pattern_match(&p, "2001:db8::1", 443));
	CHECK_EQ_INT(np_pattern_parse("2001:db8::1:443", true, false, &p, &why), -EINVAL);
	CHECK(strstr(why, "bracket") != NULL);
	CHECK_EQ_INT(np_pattern_parse("[2001:db8::1]:443", true, false, &p, &why), 0);
	CHECK_EQ_INT(p.port, 443);
	const char *const public_wild[] = {"*.com", "*.co.uk", "*.github.io", "*.dev:443", "*.COM"};
	for (size_t i = 0; i < N_ELEMENTS(public_wild); i++) {
		CHECK_EQ_INT(np_pattern_parse(public_wild[i], true, false, &p, &why), -EINVAL);
		CHECK(strstr(why, "public suffix") != NULL);
	}
	CHECK_EQ_INT(np_pattern_parse("*.example.com", true, false, &p, &why), 0);
	CHECK_EQ_INT(np_pattern_parse("*.example.co.uk", true, false, &p, &why), 0);
}

int main(void)
{
	test_table();
	test_sockaddr();
	test_normalize();
	test_patterns();
	test_pattern_answers();
	test_verdicts();
	test_connect_only_verdicts();
	UNIT_DONE();
}
