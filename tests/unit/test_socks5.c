/* test_socks5.c — the SOCKS5 wire parsers (socks5_wire.c) and the external proxy URL parser
 * (upstream.c): complete, partial and refused messages; reply codes; credentials decoding. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <string.h>

static void test_greeting(void)
{
	unsigned off;
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"", 0, &off), 0);
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x05", 1, &off), 0);
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x05\x02\x00", 3, &off), 0);
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x05\x02\x00\x02", 4, &off), 4);
	CHECK_EQ_INT(off, SOCKS5_AUTH_NONE | SOCKS5_AUTH_USERPASS);
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x05\x01\x01", 3, &off), 3);
	CHECK_EQ_INT(off, 0); /* GSSAPI only: nothing we serve */
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x04\x01\x00", 3, &off), -EBADMSG);
	CHECK_EQ_INT(socks5_parse_greeting((const uint8_t *)"\x05\x00", 2, &off), -EBADMSG);
}

static void test_userpass(void)
{
	char u[256], p[256];
	const uint8_t ok[] = "\x01\x04nono\x03tok";
	CHECK_EQ_INT(socks5_parse_userpass(ok, sizeof ok - 1, u, p), 10);
	CHECK_STR(u, "nono");
	CHECK_STR(p, "tok");
	for (size_t n = 0; n < sizeof ok - 1; n++)
		CHECK_EQ_INT(socks5_parse_userpass(ok, n, u, p), 0);
	CHECK_EQ_INT(socks5_parse_userpass((const uint8_t *)"\x02\x00\x00", 3, u, p), -EBADMSG);
	CHECK_EQ_INT(socks5_parse_userpass((const uint8_t *)"\x01\x02n\x00\x00", 5, u, p), -EBADMSG);
	CHECK_EQ_INT(socks5_parse_userpass((const uint8_t *)"\x01\x00\x00", 3, u, p), 3); /* empty both */
}

static void test_request(void)
{
	char host[NP_HOST_MAX];
	uint16_t port;
	uint8_t rep;
	const uint8_t dom[] = "\x05\x01\x00\x03\x0b" "example.com\x01\xbb";
	CHECK_EQ_INT(socks5_parse_request(dom, sizeof dom - 1, host, sizeof host, &port, &rep), 18);
	CHECK_STR(host, "example.com");
	CHECK_EQ_INT(port, 443);
	CHECK_EQ_INT(rep, 0);
	for (size_t n = 0; n < sizeof dom - 1; n++)
		CHECK_EQ_INT(socks5_parse_request(dom, n, host, sizeof host, &port, &rep), 0);
	const uint8_t v4[] = {5, 1, 0, 1, 169, 254, 169, 254, 0, 80};
	CHECK_EQ_INT(socks5_parse_request(v4, sizeof v4, host, sizeof host, &port, &rep), 10);
	CHECK_STR(host, "169.254.169.254");
	uint8_t v6[22] = {5, 1, 0, 4};
	v6[19] = 1;
	v6[21] = 22;
	CHECK_EQ_INT(socks5_parse_request(v6, sizeof v6, host, sizeof host, &port, &rep), 22);
	CHECK_STR(host, "::1");
	CHECK_EQ_INT(port, 22);
	const uint8_t bind[] = {5, 2, 0, 1, 127, 0, 0, 1, 0, 22};
	CHECK_EQ_INT(socks5_parse_request(bind, sizeof bind, host, sizeof host, &port, &rep), -ENOTSUP);
	CHECK_EQ_INT(rep, 0x07);
	const uint8_t atyp[] = {5, 1, 0, 9, 0, 0};
	CHECK_EQ_INT(socks5_parse_request(atyp, sizeof atyp, host, sizeof host, &port, &rep), -ENOTSUP);
	CHECK_EQ_INT(rep, 0x08);
	const uint8_t nul[] = "\x05\x01\x00\x03\x03" "a\x00" "b\x00\x50";
	CHECK_EQ_INT(socks5_parse_request(nul, sizeof nul - 1, host, sizeof host, &port, &rep), -EBADMSG);
	const uint8_t port0[] = "\x05\x01\x00\x03\x01" "a\x00\x00";
	CHECK_EQ_INT(socks5_parse_request(port0, sizeof port0 - 1, host, sizeof host, &port, &rep), -EBADMSG);
	const uint8_t rsv[] = {5, 1, 1, 1, 1, 2, 3, 4, 0, 80};
	CHECK_EQ_INT(socks5_parse_request(rsv, sizeof rsv, host, sizeof host, &port, &rep), -EBADMSG);
	CHECK_EQ_INT(socks5_reply_code(403, "metadata"), 0x02);
	CHECK_EQ_INT(socks5_reply_code(502, "dns-failure"), 0x04);
	CHECK_EQ_INT(socks5_reply_code(502, "upstream-failure"), 0x05);
	CHECK_EQ_INT(socks5_reply_code(504, NULL), 0x06);
	CHECK_EQ_INT(socks5_reply_code(400, "bad-request"), 0x01);
}

static void test_upstream_url(void)
{
	struct np_upstream u;
	const char *why = "";
	CHECK_EQ_INT(np_upstream_parse("http://proxy.corp.example:3128", &u, &why), 0);
	CHECK_STR(u.host, "proxy.corp.example");
	CHECK_EQ_INT(u.port, 3128);
	CHECK(u.auth == NULL);
	CHECK_EQ_INT(np_upstream_parse("HTTP://us%40r:p%3Ass@[::1]:8080/", &u, &why), 0);
	CHECK_STR(u.host, "::1");
	/* base64("us@r:p:ss") */
	CHECK(u.auth && !strcmp(u.auth, "Basic dXNAcjpwOnNz"));
	free(u.auth);
	CHECK_EQ_INT(np_upstream_parse("10.0.0.1:3128", &u, &why), 0);
	CHECK_STR(u.host, "10.0.0.1");
	CHECK_EQ_INT(np_upstream_parse("https://p.example:443", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("socks5://p.example:1080", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://p.example", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://p.example:0", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://p.example:3128/path", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://:pw@p.example:3128", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://u:%zz@p.example:3128", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("http://u:%0a@p.example:3128", &u, &why), -EINVAL);
	CHECK_EQ_INT(np_upstream_parse("", &u, &why), -EINVAL);

	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_error err = {0};
	CHECK_EQ_INT(nono_proxy_config_add_bypass_host(cfg, "*.internal.example", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_check(cfg, &err), -EINVAL); /* bypass without a proxy */
	CHECK_EQ_INT(nono_proxy_config_set_external_proxy(cfg, "http://u:secret@10.1.2.3:3128", &err), 0);
	CHECK_EQ_INT(nono_proxy_config_check(cfg, &err), 0);
	CHECK_EQ_INT(nono_proxy_config_set_external_proxy(cfg, "ftp://u:secret@x:1", &err), -EINVAL);
	CHECK(strstr(err.message, "secret") == NULL);
	CHECK_EQ_INT(np_upstream_prepare(cfg, &err), 0); /* an IP literal: no lookup */
	CHECK(np_upstream_applies(cfg, "api.example.com", 443));
	CHECK(!np_upstream_applies(cfg, "db.internal.example", 5432));
	struct nono_proxy_config *clone = nono_proxy_config_clone(cfg);
	CHECK(clone && clone->ext && clone->ext->auth && clone->ext->auth != cfg->ext->auth);
	CHECK(clone && np_upstream_applies(clone, "api.example.com", 443));
	nono_proxy_config_free(clone);
	nono_proxy_config_free(cfg);
}

int main(void)
{
	test_greeting();
	test_userpass();
	test_request();
	test_upstream_url();
	UNIT_DONE();
}
