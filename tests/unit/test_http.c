/* test_http.c — the proxy's HTTP/1.x parser: heads (incremental and strict), body framing
 * (smuggling cases), chunked decoding byte by byte, authorities, absolute URLs, Proxy-Authorization. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <string.h>

static int parse_req(const char *s, http_head *h, const char **why)
{
	size_t scan = 0;
	*why = "";
	return http_parse_request(s, strlen(s), &scan, h, why);
}

static void test_request_heads(void)
{
	http_head h;
	const char *why;
	const char *ok = "GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n"
			 "X-Empty:\r\nX-Sp:   v  \r\n\r\nBODY";
	CHECK_EQ_INT(parse_req(ok, &h, &why), 1);
	CHECK_EQ_INT(h.head_len, strlen(ok) - 4);
	CHECK(http_token_eq(h.method, h.method_len, "GET"));
	CHECK(h.target_len == strlen("http://example.com/a?b=c") && !memcmp(h.target, "http://example.com/a?b=c", h.target_len));
	CHECK_EQ_INT(h.version_minor, 1);
	CHECK_EQ_INT(h.nheaders, 3);
	CHECK_EQ_INT(h.headers[1].value_len, 0);
	CHECK(h.headers[2].value_len == 1 && h.headers[2].value[0] == 'v');
	CHECK_EQ_INT(http_find_header(&h, "host", 0), 0);
	CHECK_EQ_INT(http_find_header(&h, "x-missing", 0), -1);

	/* leading empty lines are skipped (RFC 9112 §2.2) */
	CHECK_EQ_INT(parse_req("\r\n\r\nGET http://a/ HTTP/1.0\r\n\r\n", &h, &why), 1);
	CHECK_EQ_INT(h.skipped, 4);
	CHECK_EQ_INT(h.version_minor, 0);

	/* incremental: byte by byte gives the same answer, and 0 until the end */
	size_t scan = 0, len = strlen(ok) - 4;
	for (size_t i = 1; i < len; i++)
		CHECK_EQ_INT(http_parse_request(ok, i, &scan, &h, &why), 0);
	CHECK_EQ_INT(http_parse_request(ok, len, &scan, &h, &why), 1);
	CHECK_EQ_INT(h.nheaders, 3);

	static const char *const bad[] = {
		"GET http://a/ HTTP/1.1\nHost: a\r\n\r\n",           /* bare LF */
		"GET http://a/ HTTP/1.1\r\nHost: a\rb\r\n\r\n",      /* bare CR */
		"GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n",        /* space before colon */
		"GET http://a/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", /* obs-fold */
		"GET http://a/ HTTP/2.0\r\n\r\n",
		"GET http://a/ HTTP/1.1 \r\n\r\n",
		"GET  http://a/ HTTP/1.1\r\n\r\n",
		"GET http://a/\r\n\r\n",
		"G(T http://a/ HTTP/1.1\r\n\r\n",
		"GET http://a/\x01 HTTP/1.1\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\n: empty-name\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nX: a\x7f\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nNoColon\r\n\r\n",
		" GET http://a/ HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = parse_req(bad[i], &h, &why);
		if (r != -EBADMSG)
			fprintf(stderr, "bad[%zu] -> %d\n", i, r);
		CHECK_EQ_INT(r, -EBADMSG);
		CHECK(why && *why);
	}
	/* NUL inside the head */
	char nul[] = "GET http://a/ HTTP/1.1\r\nX: a\0b\r\n\r\n";
	scan = 0;
	CHECK_EQ_INT(http_parse_request(nul, sizeof nul - 1, &scan, &h, &why), -EBADMSG);

	/* too many header fields */
	char big[8192];
	size_t o = (size_t)snprintf(big, sizeof big, "GET http://a/ HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		o += (size_t)snprintf(big + o, sizeof big - o, "X%d: v\r\n", i);
	snprintf(big + o, sizeof big - o, "\r\n");
	CHECK_EQ_INT(parse_req(big, &h, &why), -E2BIG);
}

static void test_response_heads(void)
{
	http_head h;
	const char *why = "";
	size_t scan = 0;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	CHECK_EQ_INT(http_parse_response(r1, strlen(r1), &scan, &h, &why), 1);
	CHECK_EQ_INT(h.status, 200);
	CHECK_EQ_INT(h.head_len, strlen(r1) - 5);
	scan = 0;
	CHECK_EQ_INT(http_parse_response("HTTP/1.1 204\r\n\r\n", 16, &scan, &h, &why), 1);
	CHECK_EQ_INT(h.status, 204);
	scan = 0;
	CHECK_EQ_INT(http_parse_response("HTTP/1.1 20x OK\r\n\r\n", 19, &scan, &h, &why), -EBADMSG);
	scan = 0;
	CHECK_EQ_INT(http_parse_response("HTTP/1.1 099 X\r\n\r\n", 18, &scan, &h, &why), -EBADMSG);
	scan = 0;
	CHECK_EQ_INT(http_parse_response("ICY 200 OK\r\n\r\n", 14, &scan, &h, &why), -EBADMSG);
}

static void framing(const char *head, int want_rc, enum http_body_kind kind, uint64_t remaining,
		    bool response, const char *method)
{
	http_head h;
	http_body b;
	const char *why = "";
	size_t scan = 0;
	int r = response ? http_parse_response(head, strlen(head), &scan, &h, &why)
			 : http_parse_request(head, strlen(head), &scan, &h, &why);
	CHECK_EQ_INT(r, 1);
	r = response ? http_response_body(&h, method, strlen(method), &b, &why)
		     : http_request_body(&h, &b, &why);
	if (r != want_rc)
		fprintf(stderr, "framing of %s: %d (%s)\n", head, r, why);
	CHECK_EQ_INT(r, want_rc);
	if (r == 0) {
		CHECK_EQ_INT(b.kind, kind);
		CHECK_EQ_INT(b.remaining, remaining);
	}
}

static void test_framing(void)
{
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 0, HTTP_BODY_LENGTH, 10, false, "");
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n", 0,
		HTTP_BODY_LENGTH, 10, false, "");
	framing("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP_BODY_CHUNKED, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0, HTTP_BODY_CHUNKED, 0, false, "");
	framing("GET http://a/ HTTP/1.1\r\n\r\n", 0, HTTP_BODY_NONE, 0, false, "");
	/* smuggling shapes */
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
		-EBADMSG, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n", -EBADMSG, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 10, 10\r\n\r\n", -EBADMSG, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: +10\r\n\r\n", -EBADMSG, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", -EBADMSG, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -ENOTSUP, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		-ENOTSUP, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", -ENOTSUP, 0, 0, false, "");
	framing("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG, 0, 0, false, "");
	/* responses */
	framing("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", 0, HTTP_BODY_LENGTH, 7, true, "GET");
	framing("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", 0, HTTP_BODY_NONE, 0, true, "HEAD");
	framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", 0, HTTP_BODY_NONE, 0, true, "GET");
	framing("HTTP/1.1 204 No Content\r\n\r\n", 0, HTTP_BODY_NONE, 0, true, "GET");
	framing("HTTP/1.1 200 OK\r\n\r\n", 0, HTTP_BODY_UNTIL_CLOSE, 0, true, "GET");
	framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", 0,
		HTTP_BODY_CHUNKED, 0, true, "GET");
	framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, HTTP_BODY_UNTIL_CLOSE, 0, true, "GET");
	framing("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", -EBADMSG, 0, 0, true, "GET");
}

/* Feed `s` in pieces of `step` bytes; returns bytes consumed at done, or -1 on error / not done. */
static long feed_chunked(const char *s, size_t len, size_t step)
{
	http_body b = {.kind = HTTP_BODY_CHUNKED};
	size_t off = 0;
	while (off < len && !b.done) {
		size_t n = len - off < step ? len - off : step;
		long k = http_body_feed(&b, s + off, n);
		if (k < 0)
			return -1;
		off += (size_t)k;
		if ((size_t)k < n && !b.done)
			return -1;
	}
	return b.done ? (long)off : -2;
}

static void test_chunked(void)
{
	const char *ok = "5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	size_t body = strlen(ok) - 4;
	for (size_t step = 1; step <= 9; step++)
		CHECK_EQ_INT(feed_chunked(ok, strlen(ok), step), (long)body);
	CHECK_EQ_INT(feed_chunked("0\r\n\r\n", 5, 1), 5);
	CHECK_EQ_INT(feed_chunked("5\r\nhel", 6, 2), -2); /* incomplete */
	static const char *const bad[] = {
		"\r\n",            /* no size */
		"x\r\n",           /* not hex */
		"5\nhello\r\n0\r\n\r\n",  /* bare LF */
		"5\r\nhelloX\r\n", /* data longer than the size */
		"-1\r\n",
		"10000000000000000\r\n", /* 17 hex digits */
		"0\r\nbad\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(feed_chunked(bad[i], strlen(bad[i]), 1), -1);
	/* Content-Length framing */
	http_body b = {.kind = HTTP_BODY_LENGTH, .remaining = 3};
	CHECK_EQ_INT(http_body_feed(&b, "abcdef", 6), 3);
	CHECK(b.done);
	CHECK_EQ_INT(http_body_feed(&b, "def", 3), 0);
}

static void test_authority(void)
{
	char host[NP_HOST_MAX];
	uint16_t port = 0;
	CHECK_EQ_INT(http_split_authority("example.com:443", 15, 0, host, sizeof host, &port), 0);
	CHECK_STR(host, "example.com");
	CHECK_EQ_INT(port, 443);
	CHECK_EQ_INT(http_split_authority("[::1]:8080", 10, 0, host, sizeof host, &port), 0);
	CHECK_STR(host, "::1");
	CHECK_EQ_INT(port, 8080);
	CHECK_EQ_INT(http_split_authority("example.com", 11, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("example.com", 11, 80, host, sizeof host, &port), 0);
	CHECK_EQ_INT(port, 80);
	CHECK_EQ_INT(http_split_authority("a:0", 3, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("a:65536", 7, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("a:", 2, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("a:1x", 4, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("::1:80", 6, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority("u@h:80", 6, 0, host, sizeof host, &port), -EINVAL);
	CHECK_EQ_INT(http_split_authority(":80", 3, 0, host, sizeof host, &port), -EINVAL);

	const char *path;
	size_t pl;
	const char *u = "http://Example.com:8080/p/q?x=1#frag";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), 0);
	CHECK_STR(host, "Example.com");
	CHECK_EQ_INT(port, 8080);
	CHECK(pl == 8 && !memcmp(path, "/p/q?x=1", 8));
	u = "HTTP://a";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), 0);
	CHECK(path == NULL && pl == 0 && port == 80);
	u = "http://a?q";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), 0);
	CHECK(pl == 2 && path[0] == '?');
	u = "https://a/";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -ENOTSUP);
	u = "/relative";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -EINVAL);
	u = "http://user:pw@evil.com/";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -EINVAL);
	u = "http://allowed.com@evil.com/";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -EINVAL);
	u = "http:///x";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -EINVAL);
	u = "http://a%2ecom/";
	CHECK_EQ_INT(http_parse_absolute(u, strlen(u), host, sizeof host, &port, &path, &pl), -EINVAL);
}

static bool auth(const char *hdr, const char *token)
{
	char buf[512];
	snprintf(buf, sizeof buf, "CONNECT a:1 HTTP/1.1\r\n%s\r\n\r\n", hdr);
	http_head h;
	const char *why;
	if (parse_req(buf, &h, &why) != 1)
		return false;
	return http_check_proxy_auth(&h, token);
}

static void test_proxy_auth(void)
{
	const char *tok = "0123456789abcdef0123456789abcdef";
	/* base64("nono:0123456789abcdef0123456789abcdef") */
	const char *b64 = "bm9ubzowMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==";
	char hdr[256];
	snprintf(hdr, sizeof hdr, "Proxy-Authorization: Basic %s", b64);
	CHECK(auth(hdr, tok));
	snprintf(hdr, sizeof hdr, "proxy-authorization: basic   %s", b64);
	CHECK(auth(hdr, tok));
	CHECK(!auth(hdr, "0123456789abcdef0123456789abcdee"));
	CHECK(!auth("X: y", tok));
	CHECK(!auth("Proxy-Authorization: Bearer abc", tok));
	CHECK(!auth("Proxy-Authorization: Basic !!!!", tok));
	/* base64("x:0123456789abcdef0123456789abcdef"): wrong user */
	CHECK(!auth("Proxy-Authorization: Basic eDowMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==", tok));
	/* two Proxy-Authorization fields: refused */
	snprintf(hdr, sizeof hdr, "Proxy-Authorization: Basic %s\r\nProxy-Authorization: Basic %s", b64, b64);
	CHECK(!auth(hdr, tok));
	CHECK(http_list_has("keep-alive, Close", 17, "close"));
	CHECK(!http_list_has("closed", 6, "close"));
}

int main(void)
{
	test_request_heads();
	test_response_heads();
	test_framing();
	test_chunked();
	test_authority();
	test_proxy_auth();
	UNIT_DONE();
}
