/* Unit tests for json.c: exact round trip on a real temp tree, and a table of rejected documents,
 * each with its error code and a fragment of the message naming the offending field. */
#include "internal.h"
#include "unit.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char root[PATH_MAX];

static char *P(const char *rel)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", root, rel) < 0)
		abort();
	return s;
}

static void make_tree(void)
{
	char tmpl[] = "/tmp/nono-json-XXXXXX";
	if (!mkdtemp(tmpl) || !realpath(tmpl, root))
		abort();
	char *d = P("d"), *sub = P("d/sub"), *f = P("d/f"), *link = P("link"), *sock = P("sock");
	if (mkdir(d, 0755) || mkdir(sub, 0755) || symlink(d, link))
		abort();
	FILE *fp = fopen(f, "w");
	if (!fp)
		abort();
	fclose(fp);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (s < 0 || strlen(sock) >= sizeof a.sun_path)
		abort();
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	if (bind(s, (struct sockaddr *)&a, sizeof a))
		abort();
	close(s);
	free(d), free(sub), free(f), free(link), free(sock);
}

/* Replace every '@' in `tmpl` with the temp root. */
static char *expand(const char *tmpl)
{
	size_t n = 0, rl = strlen(root);
	for (const char *p = tmpl; *p; p++)
		n += *p == '@' ? rl : 1;
	char *out = malloc(n + 1), *o = out;
	for (const char *p = tmpl; *p; p++) {
		if (*p == '@') {
			memcpy(o, root, rl);
			o += rl;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

static void same_caps(const nono_caps *a, const nono_caps *b)
{
	CHECK_EQ_INT(nono_caps_grant_count(a), nono_caps_grant_count(b));
	for (size_t i = 0; i < nono_caps_grant_count(a) && i < nono_caps_grant_count(b); i++) {
		nono_grant x, y;
		nono_caps_grant(a, i, &x);
		nono_caps_grant(b, i, &y);
		CHECK_STR(x.resolved, y.resolved);
		CHECK_EQ_INT(x.access, y.access);
		CHECK_EQ_INT(x.is_file, y.is_file);
	}
	uint16_t pa, pb;
	CHECK_EQ_INT(nono_caps_network(a, &pa), nono_caps_network(b, &pb));
	CHECK_EQ_INT(pa, pb);
	CHECK_EQ_INT(nono_caps_unix_socket_count(a), nono_caps_unix_socket_count(b));
	for (size_t i = 0; i < nono_caps_unix_socket_count(a); i++)
		CHECK_STR(nono_caps_unix_socket(a, i), nono_caps_unix_socket(b, i));
	CHECK_EQ_INT(nono_caps_bind_port_count(a), nono_caps_bind_port_count(b));
	for (size_t i = 0; i < nono_caps_bind_port_count(a); i++)
		CHECK_EQ_INT(nono_caps_bind_port(a, i), nono_caps_bind_port(b, i));
}

static void test_round_trip(void)
{
	nono_error e = { 0 };
	nono_caps *c = nono_caps_new();
	char *link = P("link"), *f = P("d/f"), *sub = P("d/sub"), *sock = P("sock"), *d = P("d");
	CHECK_EQ_INT(nono_caps_allow_path(c, link, NONO_ACCESS_READ_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, f, NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, sub, NONO_ACCESS_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, d, NONO_ACCESS_READ, &e), 0); /* duplicates survive */
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, sock, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, d, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 8080, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 1, &e), 0);

	char *j1 = nono_caps_to_json(c, &e);
	CHECK(j1 != NULL);
	if (!j1)
		return;
	/* The document says what we put in, field by field. */
	json_error_t je;
	json_t *doc = json_loads(j1, 0, &je);
	CHECK(doc != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "version")), 1);
	json_t *fs = json_object_get(doc, "fs");
	CHECK_EQ_INT(json_array_size(fs), 4);
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 0), "path")), d);
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 0), "access")), "read_write");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 0), "kind")), "dir");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 1), "path")), f);
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 1), "access")), "read");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 1), "kind")), "file");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fs, 2), "access")), "write");
	json_t *net = json_object_get(doc, "network");
	CHECK_STR(json_string_value(json_object_get(net, "mode")), "proxy_only");
	CHECK_EQ_INT(json_integer_value(json_object_get(net, "proxy_port")), 3128);
	CHECK_STR(json_string_value(json_object_get(net, "proxy_address")), "127.0.0.1");
	CHECK_STR(json_string_value(json_array_get(json_object_get(doc, "unix_sockets"), 0)), sock);
	CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(doc, "bind_ports"), 0)),
		     8080);
	CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(doc, "bind_ports"), 1)), 1);
	CHECK_EQ_INT(json_object_size(doc), 5);
	json_decref(doc);

	nono_caps *c2 = nono_caps_from_json(j1, strlen(j1), &e);
	CHECK(c2 != NULL);
	if (c2) {
		same_caps(c, c2);
		char *j2 = nono_caps_to_json(c2, &e);
		CHECK(j2 && strcmp(j1, j2) == 0); /* byte-identical */
		free(j2);
		char *s1 = nono_caps_summary(c), *s2 = nono_caps_summary(c2);
		CHECK_STR(s1, s2);
		free(s1), free(s2);
		nono_grant g;
		nono_caps_grant(c2, 0, &g);
		CHECK_STR(g.original, d); /* saved as the resolved path */
		nono_caps_free(c2);
	}
	/* Every network mode survives. */
	for (int m = 0; m < 2; m++) {
		nono_caps_set_network(c, m ? NONO_NET_BLOCKED : NONO_NET_ALLOWED, 0, &e);
		char *j = nono_caps_to_json(c, &e);
		nono_caps *k = nono_caps_from_json(j, strlen(j), &e);
		CHECK(k != NULL);
		if (k) {
			same_caps(c, k);
			nono_caps_free(k);
		}
		free(j);
	}
	free(j1);
	free(link), free(f), free(sub), free(sock), free(d);
	nono_caps_free(c);

	/* Minimal document: defaults. */
	c = nono_caps_from_json("{\"version\":1}", 13, &e);
	CHECK(c != NULL);
	uint16_t port = 1;
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_ALLOWED);
	CHECK_EQ_INT(port, 0);
	CHECK_EQ_INT(nono_caps_grant_count(c), 0);
	nono_caps_free(c);
	/* `len` bounds the input: what follows is not read. */
	c = nono_caps_from_json("{\"version\":1}garbage", 13, &e);
	CHECK(c != NULL);
	nono_caps_free(c);
	CHECK(nono_caps_from_json("{\"version\":1}", 12, &e) == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	CHECK(nono_caps_from_json(NULL, 0, &e) == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	CHECK(nono_caps_to_json(NULL, &e) == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	/* An omitted proxy_port is 0, accepted for non-proxy modes. */
	c = nono_caps_from_json("{\"version\":1,\"network\":{\"mode\":\"blocked\"}}", 42, &e);
	CHECK(c != NULL && nono_caps_network(c, NULL) == NONO_NET_BLOCKED);
	nono_caps_free(c);
}

static void test_utf8_paths(void)
{
	nono_error e;
	/* Valid multi-byte names (2, 3 and 4 byte sequences) round-trip. */
	char *good = P("\xc3\xbc-\xe2\x80\x94-\xf0\x9f\x98\x80");
	CHECK_EQ_INT(mkdir(good, 0755), 0);
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, good, NONO_ACCESS_READ, &e), 0);
	char *j = nono_caps_to_json(c, &e);
	CHECK(j != NULL);
	nono_caps *k = j ? nono_caps_from_json(j, strlen(j), &e) : NULL;
	CHECK(k != NULL);
	if (k)
		same_caps(c, k);
	nono_caps_free(k);
	nono_caps_free(c);
	free(j);
	free(good);
	/* Overlong '/', a UTF-16 surrogate, a code point above U+10FFFF, a truncated sequence. */
	static const char *const bad_names[] = { "o\xc0\xaf", "s\xed\xa0\x80", "h\xf4\x90\x80\x80",
						 "t\xe2\x80" };
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		char *b = P(bad_names[i]);
		CHECK_EQ_INT(mkdir(b, 0755), 0);
		c = nono_caps_new();
		CHECK_EQ_INT(nono_caps_allow_unix_socket(c, b, &e), 0);
		j = nono_caps_to_json(c, &e);
		CHECK(j == NULL && e.code == -EINVAL && strstr(e.message, "unix_sockets[0]"));
		free(j);
		nono_caps_free(c);
		free(b);
	}
}

static void test_non_utf8_path(void)
{
	nono_error e;
	char *bad = P("bad\xff");
	if (mkdir(bad, 0755)) {
		free(bad);
		return;
	}
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, bad, NONO_ACCESS_READ, &e), 0);
	char *j = nono_caps_to_json(c, &e);
	CHECK(j == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	CHECK(strstr(e.message, "fs[0]") && strstr(e.message, "UTF-8"));
	free(j);
	nono_caps_free(c);
	free(bad);
}

static const struct reject {
	const char *doc; /* '@' = temp root */
	int code;
	const char *fragment;
} rejects[] = {
	{ "", -EINVAL, "invalid JSON" },
	{ "[]", -EINVAL, "top level: expected an object" },
	{ "\"x\"", -EINVAL, "invalid JSON" }, /* jansson: top level must be an object or array */
	{ "{\"version\":1} x", -EINVAL, "end of file expected" },
	{ "{\"version\":1}{}", -EINVAL, "end of file expected" },
	{ "{\"version\":1,\"version\":1}", -EINVAL, "duplicate object key" },
	{ "{}", -EINVAL, "version: missing" },
	{ "{\"version\":2}", -EINVAL, "version: expected 1" },
	{ "{\"version\":0}", -EINVAL, "version: expected 1" },
	{ "{\"version\":\"1\"}", -EINVAL, "version: expected 1" },
	{ "{\"version\":1.0}", -EINVAL, "version: expected 1" },
	{ "{\"version\":true}", -EINVAL, "version: expected 1" },
	{ "{\"version\":1,\"extra\":1}", -EINVAL, "top level: unknown key \"extra\"" },
	{ "{\"version\":1,\"Fs\":[]}", -EINVAL, "unknown key \"Fs\"" },
	{ "{\"version\":1,\"fs\":{}}", -EINVAL, "fs: expected an array" },
	{ "{\"version\":1,\"fs\":null}", -EINVAL, "fs: expected an array" },
	{ "{\"version\":1,\"fs\":[1]}", -EINVAL, "fs[0]: expected an object" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":\"dir\","
	  "\"mode\":1}]}", -EINVAL, "fs[0]: unknown key \"mode\"" },
	{ "{\"version\":1,\"fs\":[{\"access\":\"read\",\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].path: missing" },
	{ "{\"version\":1,\"fs\":[{\"path\":7,\"access\":\"read\",\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].path: expected a string" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\\u0000/etc\",\"access\":\"read\",\"kind\":\"dir\"}]}",
	  -EINVAL, "fs[0].path: NUL byte" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"d\",\"access\":\"read\",\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].path: path must be absolute" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"\",\"access\":\"read\",\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].path: empty path" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":\"dir\"},"
	  "{\"path\":\"@/d/f\",\"access\":\"write\",\"kind\":\"file\"},"
	  "{\"path\":\"@/d\",\"access\":\"rw\",\"kind\":\"dir\"}]}",
	  -EINVAL, "fs[2].access: expected \"read\", \"write\" or \"read_write\"" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\\u0000\",\"kind\":\"dir\"}]}",
	  -EINVAL, "fs[0].access: NUL byte" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":3,\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].access: expected a string" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"kind\":\"dir\"}]}", -EINVAL,
	  "fs[0].access: missing" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\"}]}", -EINVAL,
	  "fs[0].kind: missing" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":\"directory\"}]}",
	  -EINVAL, "fs[0].kind: expected \"dir\" or \"file\"" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":\"file\"}]}",
	  -EINVAL, "fs[0].kind: \"file\" but @/d is a directory" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d/f\",\"access\":\"read\",\"kind\":\"dir\"}]}",
	  -EINVAL, "fs[0].kind: \"dir\" but @/d/f is not a directory" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/gone\",\"access\":\"read\",\"kind\":\"dir\"}]}",
	  -ENOENT, "fs[0].path: path does not exist: @/gone" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":\"dir\","
	  "\"kind\":\"file\"}]}", -EINVAL, "duplicate object key" },
	{ "{\"version\":1,\"network\":[]}", -EINVAL, "network: expected an object" },
	{ "{\"version\":1,\"network\":{\"mode\":\"allowed\",\"port\":1}}", -EINVAL,
	  "network: unknown key \"port\"" },
	{ "{\"version\":1,\"network\":{}}", -EINVAL, "network.mode: missing" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy\"}}", -EINVAL,
	  "network.mode: expected \"allowed\", \"blocked\" or \"proxy_only\"" },
	{ "{\"version\":1,\"network\":{\"mode\":2}}", -EINVAL, "network.mode: expected a string" },
	{ "{\"version\":1,\"network\":{\"mode\":\"blocked\\u0000\"}}", -EINVAL,
	  "network.mode: NUL byte" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/d\",\"access\":\"read\",\"kind\":null}]}", -EINVAL,
	  "fs[0].kind: expected a string" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\"}}", -EINVAL,
	  "network.proxy_port: proxy_only needs a port" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":0}}", -EINVAL,
	  "network.proxy_port: proxy_only needs a port" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":65536}}", -EINVAL,
	  "network.proxy_port: 65536 is out of range" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":-1}}", -EINVAL,
	  "network.proxy_port: -1 is out of range" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":\"3128\"}}", -EINVAL,
	  "network.proxy_port: expected an integer" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":3128.0}}", -EINVAL,
	  "network.proxy_port: expected an integer" },
	{ "{\"version\":1,\"network\":{\"mode\":\"blocked\",\"proxy_port\":80}}", -EINVAL,
	  "network.proxy_port: must be 0" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":80,"
	  "\"proxy_address\":\"10.0.0.1\"}}", -EINVAL, "network.proxy_address: proxy address" },
	{ "{\"version\":1,\"network\":{\"mode\":\"blocked\",\"proxy_address\":\"::1\"}}", -EINVAL,
	  "network.proxy_address: only with" },
	{ "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":"
	  "99999999999999999999999}}", -EINVAL, "too big integer" },
	{ "{\"version\":1,\"unix_sockets\":\"@/sock\"}", -EINVAL, "unix_sockets: expected an array" },
	{ "{\"version\":1,\"unix_sockets\":[1]}", -EINVAL, "unix_sockets[0]: expected a string" },
	{ "{\"version\":1,\"unix_sockets\":[\"@/sock\\u0000\"]}", -EINVAL,
	  "unix_sockets[0]: NUL byte" },
	{ "{\"version\":1,\"unix_sockets\":[\"sock\"]}", -EINVAL,
	  "unix_sockets[0]: path must be absolute" },
	{ "{\"version\":1,\"unix_sockets\":[\"@/nosock\"]}", -ENOENT,
	  "unix_sockets[0]: path does not exist: @/nosock" },
	{ "{\"version\":1,\"unix_sockets\":[\"@/d/f\"]}", -EINVAL,
	  "unix_sockets[0]: @/d/f is neither a unix socket nor a directory" },
	{ "{\"version\":1,\"unix_sockets\":[\"@/d\",\"@/link\"]}", -EINVAL,
	  "unix_sockets[1]: duplicate" },
	{ "{\"version\":1,\"bind_ports\":8080}", -EINVAL, "bind_ports: expected an array" },
	{ "{\"version\":1,\"bind_ports\":[0]}", -EINVAL, "bind_ports[0]: 0 is out of range" },
	{ "{\"version\":1,\"bind_ports\":[80,70000]}", -EINVAL,
	  "bind_ports[1]: 70000 is out of range" },
	{ "{\"version\":1,\"bind_ports\":[\"80\"]}", -EINVAL, "bind_ports[0]: expected an integer" },
	{ "{\"version\":1,\"bind_ports\":[80.5]}", -EINVAL, "bind_ports[0]: expected an integer" },
	{ "{\"version\":1,\"bind_ports\":[80,81,80]}", -EINVAL, "bind_ports[2]: duplicate port 80" },
	{ "{\"version\":1,\"a\\u0000b\":1}", -EINVAL, "NUL byte in object key" },
	{ "{\"version\":1,\"fs\":[{\"path\":\"@/\xff\",\"access\":\"read\",\"kind\":\"dir\"}]}",
	  -EINVAL, "invalid JSON" },
	{ "{\"version\":1,", -EINVAL, "invalid JSON" },
	{ "{'version':1}", -EINVAL, "invalid JSON" },
	{ "{\"version\":1,}", -EINVAL, "invalid JSON" },
};

static void test_rejects(void)
{
	for (size_t i = 0; i < N_ELEMENTS(rejects); i++) {
		char *doc = expand(rejects[i].doc), *frag = expand(rejects[i].fragment);
		nono_error e = { 0 };
		nono_caps *c = nono_caps_from_json(doc, strlen(doc), &e);
		bool ok = c == NULL && e.code == rejects[i].code && strstr(e.message, frag);
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  reject[%zu] %s\n  -> %s code %d message \"%s\"\n", i, doc,
				c ? "ACCEPTED" : "rejected", e.code, e.message);
		nono_caps_free(c);
		free(doc), free(frag);
	}
	/* A proxy on ::1 survives a round trip. */
	const char *v6 = "{\"version\":1,\"network\":{\"mode\":\"proxy_only\",\"proxy_port\":80,"
			 "\"proxy_address\":\"::1\"}}";
	nono_error e6 = { 0 };
	nono_caps *c6 = nono_caps_from_json(v6, strlen(v6), &e6);
	CHECK(c6 != NULL);
	if (c6) {
		CHECK_STR(nono_caps_proxy_address(c6), "::1");
		char *out = nono_caps_to_json(c6, &e6);
		CHECK(out && strstr(out, "\"proxy_address\": \"::1\"") != NULL);
		free(out);
		nono_caps_free(c6);
	}
	/* Nesting deeper than jansson's limit is an error, not a crash. */
	size_t n = 100000;
	char *deep = malloc(n);
	memset(deep, '[', n);
	nono_error e;
	CHECK(nono_caps_from_json(deep, n, &e) == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	free(deep);
}

/* jansson's allocator fails after `fail_after` more calls (-1: never). */
static long fail_after = -1;
static void *failing_malloc(size_t n)
{
	if (fail_after == 0)
		return NULL;
	if (fail_after > 0)
		fail_after--;
	return malloc(n);
}

/* Every allocation failure inside jansson is -ENOMEM, never a crash, a leak (LSan in the ASan
 * build) or a wrong code. */
/* user_namespaces: saved only when allowed, loaded back, and only as a boolean. */
static void test_user_namespaces(void)
{
	nono_error e = { 0 };
	const char *yes = "{\"version\":1,\"user_namespaces\":true}";
	const char *bad = "{\"version\":1,\"user_namespaces\":1}";
	nono_caps *c = nono_caps_from_json(yes, strlen(yes), &e);
	CHECK(c && nono_caps_user_namespaces(c));
	char *j = c ? nono_caps_to_json(c, &e) : NULL;
	CHECK(j && strstr(j, "\"user_namespaces\": true"));
	nono_caps *c2 = j ? nono_caps_from_json(j, strlen(j), &e) : NULL;
	CHECK(c2 && nono_caps_user_namespaces(c2));
	nono_caps_set_user_namespaces(c2, false);
	char *j2 = c2 ? nono_caps_to_json(c2, &e) : NULL;
	CHECK(j2 && !strstr(j2, "user_namespaces"));
	free(j), free(j2);
	nono_caps_free(c), nono_caps_free(c2);
	c = nono_caps_from_json(bad, strlen(bad), &e);
	CHECK(!c && e.code == -EINVAL && strstr(e.message, "user_namespaces"));
	nono_caps_free(c);
}

static void test_out_of_memory(void)
{
	json_set_alloc_funcs(failing_malloc, free);
	nono_error e;
	nono_caps *c = nono_caps_new();
	char *d = P("d"), *f = P("d/f"), *sock = P("sock");
	nono_caps_allow_path(c, d, NONO_ACCESS_READ, &e);
	nono_caps_allow_file(c, f, NONO_ACCESS_READ_WRITE, &e);
	nono_caps_allow_unix_socket(c, sock, &e);
	nono_caps_allow_bind(c, 8080, &e);
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e);
	char *good = NULL;
	int failures = 0;
	for (long i = 0; i < 10000 && !good; i++) {
		fail_after = i;
		good = nono_caps_to_json(c, &e);
		if (!good) {
			failures++;
			CHECK_EQ_INT(e.code, -ENOMEM);
			if (e.code != -ENOMEM)
				fprintf(stderr, "  %s\n", e.message);
		}
	}
	CHECK(good != NULL);
	CHECK(failures > 10);
	nono_caps *back = NULL;
	failures = 0;
	for (long i = 0; i < 10000 && good && !back; i++) {
		fail_after = i;
		back = nono_caps_from_json(good, strlen(good), &e);
		if (!back) {
			failures++;
			/* jansson 2.14 turns most allocation failures in its lexer into syntax
			 * errors; accept those, but nothing else (and never a crash or a leak). */
			bool ok = e.code == -ENOMEM ||
				  (e.code == -EINVAL && strncmp(e.message, "invalid JSON", 12) == 0);
			CHECK(ok);
			if (!ok)
				fprintf(stderr, "  %s\n", e.message);
		}
	}
	fail_after = -1;
	CHECK(back != NULL);
	CHECK(failures > 10);
	if (back)
		same_caps(c, back);
	nono_caps_free(back);
	nono_caps_free(c);
	free(good), free(d), free(f), free(sock);
	json_set_alloc_funcs(malloc, free);
}

int main(void)
{
	make_tree();
	test_round_trip();
	test_non_utf8_path();
	test_utf8_paths();
	test_rejects();
	test_user_namespaces();
	test_out_of_memory();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf -- '%.*s'", PATH_MAX - 1, root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	UNIT_DONE();
}
