/* json.c — save and load a capability set as JSON (jansson), with strict validation.
 *
 * Schema, version 1 (every key below; nothing else is accepted):
 *
 *   {
 *     "version": 1,                                   required, the integer 1
 *     "fs": [                                         optional, default []
 *       { "path":   "/abs/path",                      required, absolute, no NUL bytes
 *         "access": "read" | "write" | "read_write",  required
 *         "kind":   "dir" | "file" }                  required, must match what the path is
 *     ],
 *     "network": {                                    optional, default {"mode":"allowed"}
 *       "mode": "allowed" | "blocked" | "proxy_only", required
 *       "proxy_port": N,                              1..65535 for proxy_only, else 0 or absent
 *       "proxy_address": "127.0.0.1" | "::1" },       optional, proxy_only only; default 127.0.0.1
 *     "unix_sockets": ["/abs/path", ...],             optional; socket files or directories
 *     "bind_ports": [N, ...],                         optional; 1..65535, no duplicates
 *     "user_namespaces": true | false,                optional, default false
 *     "internal": ["HOST:PORT", ...]                  optional (written only when not empty);
 *                                                     nono_caps_allow_internal grants as given,
 *                                                     resolved again on load, like paths
 *   }
 *
 * Loading is strict because a profile is policy: a typo that silently dropped a field would run the
 * child with a policy other than the one the user read. Unknown keys, wrong types, a wrong version,
 * out-of-range ports, NUL bytes inside strings, duplicate keys, trailing bytes after the document,
 * duplicate unix sockets / bind ports, and a "kind" that contradicts the path on disk are -EINVAL
 * with a message naming the field ("fs[2].access: …"). Paths are canonicalised again on load (the
 * grant is re-checked against the file system of the loading machine); a missing path is -ENOENT.
 *
 * Saving writes the resolved paths, so from_json(to_json(c)) yields the same grants, and saving the
 * loaded set again yields byte-identical text.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define JSON_SCHEMA_VERSION 1

static const char *access_json(nono_access a)
{
	switch (a) {
	case NONO_ACCESS_READ: return "read";
	case NONO_ACCESS_WRITE: return "write";
	case NONO_ACCESS_READ_WRITE: return "read_write";
	}
	return NULL;
}

static const char *mode_json(nono_net_mode m)
{
	switch (m) {
	case NONO_NET_ALLOWED: return "allowed";
	case NONO_NET_BLOCKED: return "blocked";
	case NONO_NET_PROXY_ONLY: return "proxy_only";
	}
	return NULL;
}

/* json_object_set_new that reports failure (value is consumed either way). */
static bool put(json_t *obj, const char *key, json_t *v)
{
	return v && json_object_set_new(obj, key, v) == 0;
}

bool nono_utf8_valid(const unsigned char *s, size_t len)
{
	const unsigned char *end = s + len;
	while (s < end) {
		unsigned c = *s++;
		if (c < 0x80)
			continue;
		unsigned n, min, cp;
		if ((c & 0xE0) == 0xC0)
			n = 1, min = 0x80, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			n = 2, min = 0x800, cp = c & 0x0F;
		else if ((c & 0xF8) == 0xF0)
			n = 3, min = 0x10000, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - s) < n)
			return false;
		for (unsigned k = 0; k < n; k++, s++) {
			if ((*s & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (*s & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
	}
	return true;
}

static json_t *path_string(const char *p, const char *what, size_t i, nono_error *err, int *rc)
{
	/* jansson only emits valid UTF-8; Linux paths need not be. */
	if (!nono_utf8_valid((const unsigned char *)p, strlen(p))) {
		*rc = nono_fail(err, -EINVAL, "%s[%zu]: path %s is not valid UTF-8 and cannot be "
				"saved as JSON", what, i, p);
		return NULL;
	}
	json_t *s = json_string(p);
	if (!s)
		*rc = nono_fail(err, -ENOMEM, "out of memory serialising the capability set");
	return s;
}

/* The internal grants as given ("HOST:PORT", IPv6 bracketed), one per grant (a grant resolved to
 * several addresses is written once). NULL when out of memory (put() then fails). */
static json_t *internal_json(const nono_caps *caps)
{
	json_t *a = json_array();
	char prev[300] = "";
	for (size_t i = 0; a && i < nono_caps_internal_count(caps); i++) {
		nono_internal_dest d;
		char hp[300];
		if (nono_caps_internal(caps, i, &d) != 0)
			continue;
		bool v6 = strchr(d.host, ':') != NULL;
		snprintf(hp, sizeof hp, "%s%.254s%s:%u", v6 ? "[" : "", d.host, v6 ? "]" : "",
			 (unsigned)d.port);
		if (!strcmp(hp, prev))
			continue;
		snprintf(prev, sizeof prev, "%s", hp);
		if (json_array_append_new(a, json_string(hp)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* "source" of a grant that is not the caller's own: "system" or "group:NAME". */
static bool put_source(json_t *e, const nono_grant *g)
{
	if (g->source != NONO_SOURCE_GROUP)
		return put(e, "source", json_string(nono_source_name(g->source)));
	size_t n = strlen(g->group) + 7;
	char *s = malloc(n);
	if (!s)
		return false;
	snprintf(s, n, "group:%s", g->group);
	bool ok = put(e, "source", json_string(s));
	free(s);
	return ok;
}

/* "platform_rules", only when there are any (older readers never see the key). */
static bool put_platform_rules(json_t *root, const nono_caps *caps)
{
	size_t n = nono_caps_platform_rule_count(caps);
	if (!n)
		return true;
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(nono_caps_platform_rule(caps, i))) != 0) {
			json_decref(a);
			a = NULL;
		}
	return put(root, "platform_rules", a);
}

char *nono_caps_to_json(const nono_caps *caps, nono_error *err)
{
	if (!caps) {
		nono_fail(err, -EINVAL, "capability set is NULL");
		return NULL;
	}
	uint16_t pp = 0;
	if (nono_caps_network(caps, &pp) == NONO_NET_PROXY_ONLY && pp == 0) {
		nono_fail(err, -EINVAL, "network.proxy_port: proxy-only with the port not chosen yet "
					"cannot be saved (set the proxy's port first)");
		return NULL;
	}
	int rc = -ENOMEM;
	char *out = NULL;
	json_t *root = json_object(), *fs = json_array(), *net = json_object(),
	       *socks = json_array(), *ports = json_array();
	if (!root || !fs || !net || !socks || !ports)
		goto oom;
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) != 0)
			goto oom;
		json_t *e = json_object();
		if (!e || json_array_append_new(fs, e) != 0)
			goto oom;
		json_t *p = path_string(g.resolved, "fs", i, err, &rc);
		if (!p)
			goto fail;
		if (!put(e, "path", p) || !put(e, "access", json_string(access_json(g.access))) ||
		    !put(e, "kind", json_string(g.is_file ? "file" : "dir")))
			goto oom;
		if (g.source != NONO_SOURCE_USER && !put_source(e, &g))
			goto oom;
	}
	uint16_t port = 0;
	nono_net_mode mode = nono_caps_network(caps, &port);
	if (!put(net, "mode", json_string(mode_json(mode))) ||
	    !put(net, "proxy_port", json_integer(port)))
		goto oom;
	if (mode == NONO_NET_PROXY_ONLY && !put(net, "proxy_address",
						json_string(nono_caps_proxy_address(caps))))
		goto oom;
	for (size_t i = 0; i < nono_caps_unix_socket_count(caps); i++) {
		json_t *p = path_string(nono_caps_unix_socket(caps, i), "unix_sockets", i, err, &rc);
		if (!p)
			goto fail;
		if (json_array_append_new(socks, p) != 0)
			goto oom;
	}
	for (size_t i = 0; i < nono_caps_bind_port_count(caps); i++)
		if (json_array_append_new(ports, json_integer(nono_caps_bind_port(caps, i))) != 0)
			goto oom;
	if (!put(root, "version", json_integer(JSON_SCHEMA_VERSION)))
		goto oom;
	/* put() consumes the container whether or not it succeeds: call it for each. */
	bool ok = put(root, "fs", fs);
	ok = put(root, "network", net) && ok;
	ok = put(root, "unix_sockets", socks) && ok;
	ok = put(root, "bind_ports", ports) && ok;
	if (nono_caps_internal_count(caps))
		ok = put(root, "internal", internal_json(caps)) && ok;
	ok = put_platform_rules(root, caps) && ok;
	fs = net = socks = ports = NULL;
	if (nono_caps_user_namespaces(caps))
		ok = put(root, "user_namespaces", json_true()) && ok;
	if (!ok)
		goto oom;
	if (nono_caps_deny_count(caps)) { /* only when there are some: older readers stay happy */
		json_t *deny = json_array();
		if (!put(root, "deny", deny))
			goto oom;
		for (size_t i = 0; i < nono_caps_deny_count(caps); i++) {
			json_t *p = path_string(nono_caps_deny(caps, i), "deny", i, err, &rc);
			if (!p)
				goto fail;
			if (json_array_append_new(deny, p) != 0)
				goto oom;
		}
	}
	out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!out)
		goto oom;
	nono_error_clear(err);
	goto done;
oom:
	rc = nono_fail(err, -ENOMEM, "out of memory serialising the capability set");
fail:
	(void)rc;
done:
	json_decref(root);
	json_decref(fs);
	json_decref(net);
	json_decref(socks);
	json_decref(ports);
	return out;
}

/* ---- loading ---- */

/* Only the keys in `allowed` (NULL-terminated) may appear in `obj`. */
static int check_keys(json_t *obj, const char *const *allowed, const char *where, nono_error *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || strcmp(key, allowed[i]) == 0;
		if (!ok)
			return nono_fail(err, -EINVAL, "%s: unknown key \"%.64s\"", where, key);
	}
	return 0;
}

/* A string without NUL bytes (the document was loaded with JSON_ALLOW_NUL so we can see them). */
static int get_string(json_t *v, const char *field, const char **out, nono_error *err)
{
	if (!json_is_string(v))
		return nono_fail(err, -EINVAL, "%s: expected a string", field);
	const char *s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		return nono_fail(err, -EINVAL, "%s: NUL byte inside the string", field);
	*out = s;
	return 0;
}

static int get_path(json_t *v, const char *field, const char **out, nono_error *err)
{
	int rc = get_string(v, field, out, err);
	if (rc)
		return rc;
	if (!**out)
		return nono_fail(err, -EINVAL, "%s: empty path", field);
	if (**out != '/')
		return nono_fail(err, -EINVAL, "%s: path must be absolute, got \"%.200s\"", field,
				 *out);
	return 0;
}

static int get_port(json_t *v, const char *field, bool zero_ok, uint16_t *out, nono_error *err)
{
	if (!json_is_integer(v))
		return nono_fail(err, -EINVAL, "%s: expected an integer", field);
	json_int_t n = json_integer_value(v);
	if (n < (zero_ok ? 0 : 1) || n > 65535)
		return nono_fail(err, -EINVAL, "%s: %lld is out of range (%d..65535)", field,
				 (long long)n, zero_ok ? 0 : 1);
	*out = (uint16_t)n;
	return 0;
}

/* "source": "system" or "group:NAME" (absent = "user"); applied to the grant just added. */
static int load_source(nono_caps *caps, json_t *js, const char *field, nono_error *err)
{
	const char *src;
	int rc = get_string(js, field, &src, err);
	if (rc)
		return rc;
	size_t last = nono_caps_grant_count(caps) - 1;
	nono_error e2 = { 0 };
	if (!strcmp(src, "user"))
		rc = nono_caps_set_grant_source(caps, last, NONO_SOURCE_USER, NULL, &e2);
	else if (!strcmp(src, "system"))
		rc = nono_caps_set_grant_source(caps, last, NONO_SOURCE_SYSTEM, NULL, &e2);
	else if (!strncmp(src, "group:", 6))
		rc = nono_caps_set_grant_source(caps, last, NONO_SOURCE_GROUP, src + 6, &e2);
	else
		return nono_fail(err, -EINVAL, "%s: expected \"user\", \"system\" or \"group:NAME\"",
				 field);
	return rc ? nono_fail(err, rc, "%s: %s", field, e2.message) : 0;
}

static int load_platform_rules(nono_caps *caps, json_t *arr, nono_error *err)
{
	if (!json_is_array(arr))
		return nono_fail(err, -EINVAL, "platform_rules: expected an array");
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		char field[48];
		const char *rule;
		snprintf(field, sizeof field, "platform_rules[%zu]", i);
		int rc = get_string(e, field, &rule, err);
		if (rc)
			return rc;
		nono_error e2 = { 0 };
		if ((rc = nono_caps_add_platform_rule(caps, rule, &e2)))
			return nono_fail(err, rc, "%s: %s", field, e2.message);
	}
	return 0;
}

static int load_fs(nono_caps *caps, json_t *fs, nono_error *err)
{
	static const char *const keys[] = { "path", "access", "kind", "source", NULL };
	if (!json_is_array(fs))
		return nono_fail(err, -EINVAL, "fs: expected an array");
	size_t i;
	json_t *e;
	json_array_foreach(fs, i, e) {
		char where[64], field[80];
		snprintf(where, sizeof where, "fs[%zu]", i);
		if (!json_is_object(e))
			return nono_fail(err, -EINVAL, "%s: expected an object", where);
		int rc = check_keys(e, keys, where, err);
		if (rc)
			return rc;
		json_t *jp = json_object_get(e, "path"), *ja = json_object_get(e, "access"),
		       *jk = json_object_get(e, "kind");
		const char *path, *acc, *kind;
		snprintf(field, sizeof field, "%s.path", where);
		if (!jp)
			return nono_fail(err, -EINVAL, "%s: missing", field);
		if ((rc = get_path(jp, field, &path, err)))
			return rc;
		snprintf(field, sizeof field, "%s.access", where);
		if (!ja)
			return nono_fail(err, -EINVAL, "%s: missing", field);
		nono_access a = 0;
		if ((rc = get_string(ja, field, &acc, err)))
			return rc;
		if (!strcmp(acc, "read"))
			a = NONO_ACCESS_READ;
		else if (!strcmp(acc, "write"))
			a = NONO_ACCESS_WRITE;
		else if (!strcmp(acc, "read_write"))
			a = NONO_ACCESS_READ_WRITE;
		if (!a)
			return nono_fail(err, -EINVAL, "%s: expected \"read\", \"write\" or "
					 "\"read_write\"", field);
		snprintf(field, sizeof field, "%s.kind", where);
		if (!jk)
			return nono_fail(err, -EINVAL, "%s: missing", field);
		int is_file = -1;
		if ((rc = get_string(jk, field, &kind, err)))
			return rc;
		if (!strcmp(kind, "file"))
			is_file = 1;
		else if (!strcmp(kind, "dir"))
			is_file = 0;
		if (is_file < 0)
			return nono_fail(err, -EINVAL, "%s: expected \"dir\" or \"file\"", field);
		nono_error e2 = { 0 };
		rc = is_file ? nono_caps_allow_file(caps, path, a, &e2)
			     : nono_caps_allow_path(caps, path, a, &e2);
		if (rc == -EISDIR)
			return nono_fail(err, -EINVAL, "%s.kind: \"file\" but %s is a directory", where,
					 path);
		if (rc == -ENOTDIR)
			return nono_fail(err, -EINVAL, "%s.kind: \"dir\" but %s is not a directory",
					 where, path);
		if (rc)
			return nono_fail(err, rc, "%s.path: %s", where, e2.message);
		json_t *js = json_object_get(e, "source");
		snprintf(field, sizeof field, "%s.source", where);
		if (js && (rc = load_source(caps, js, field, err)))
			return rc;
	}
	return 0;
}

static int load_network(nono_caps *caps, json_t *net, nono_error *err)
{
	static const char *const keys[] = { "mode", "proxy_port", "proxy_address", NULL };
	if (!json_is_object(net))
		return nono_fail(err, -EINVAL, "network: expected an object");
	int rc = check_keys(net, keys, "network", err);
	if (rc)
		return rc;
	json_t *jm = json_object_get(net, "mode"), *jp = json_object_get(net, "proxy_port");
	if (!jm)
		return nono_fail(err, -EINVAL, "network.mode: missing");
	const char *m;
	int mode = -1;
	if ((rc = get_string(jm, "network.mode", &m, err)))
		return rc;
	if (!strcmp(m, "allowed"))
		mode = NONO_NET_ALLOWED;
	else if (!strcmp(m, "blocked"))
		mode = NONO_NET_BLOCKED;
	else if (!strcmp(m, "proxy_only"))
		mode = NONO_NET_PROXY_ONLY;
	if (mode < 0)
		return nono_fail(err, -EINVAL, "network.mode: expected \"allowed\", \"blocked\" or "
				 "\"proxy_only\"");
	uint16_t port = 0;
	if (jp && (rc = get_port(jp, "network.proxy_port", true, &port, err)))
		return rc;
	if (mode == NONO_NET_PROXY_ONLY && port == 0)
		return nono_fail(err, -EINVAL, "network.proxy_port: proxy_only needs a port "
				 "(1..65535)");
	if (mode != NONO_NET_PROXY_ONLY && port != 0)
		return nono_fail(err, -EINVAL, "network.proxy_port: must be 0 unless mode is "
				 "\"proxy_only\"");
	nono_error e2 = { 0 };
	rc = nono_caps_set_network(caps, (nono_net_mode)mode, port, &e2);
	if (rc)
		return nono_fail(err, rc, "network: %s", e2.message);
	json_t *ja = json_object_get(net, "proxy_address");
	if (ja) {
		const char *a;
		if ((rc = get_string(ja, "network.proxy_address", &a, err)))
			return rc;
		if (mode != NONO_NET_PROXY_ONLY)
			return nono_fail(err, -EINVAL, "network.proxy_address: only with \"proxy_only\"");
		if ((rc = nono_caps_set_proxy_address(caps, a, &e2)))
			return nono_fail(err, rc, "network.proxy_address: %s", e2.message);
	}
	return 0;
}

static int load_sockets(nono_caps *caps, json_t *arr, nono_error *err)
{
	if (!json_is_array(arr))
		return nono_fail(err, -EINVAL, "unix_sockets: expected an array");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char field[64];
		snprintf(field, sizeof field, "unix_sockets[%zu]", i);
		const char *path;
		int rc = get_path(v, field, &path, err);
		if (rc)
			return rc;
		size_t before = nono_caps_unix_socket_count(caps);
		nono_error e2 = { 0 };
		rc = nono_caps_allow_unix_socket(caps, path, &e2);
		if (rc)
			return nono_fail(err, rc, "%s: %s", field, e2.message);
		if (nono_caps_unix_socket_count(caps) == before)
			return nono_fail(err, -EINVAL, "%s: duplicate of an earlier entry (%s)", field,
					 path);
	}
	return 0;
}

static int load_ports(nono_caps *caps, json_t *arr, nono_error *err)
{
	if (!json_is_array(arr))
		return nono_fail(err, -EINVAL, "bind_ports: expected an array");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char field[64];
		snprintf(field, sizeof field, "bind_ports[%zu]", i);
		uint16_t port = 0;
		int rc = get_port(v, field, false, &port, err);
		if (rc)
			return rc;
		size_t before = nono_caps_bind_port_count(caps);
		nono_error e2 = { 0 };
		rc = nono_caps_allow_bind(caps, port, &e2);
		if (rc)
			return nono_fail(err, rc, "%s: %s", field, e2.message);
		if (nono_caps_bind_port_count(caps) == before)
			return nono_fail(err, -EINVAL, "%s: duplicate port %u", field, (unsigned)port);
	}
	return 0;
}

static int load_internal(nono_caps *caps, json_t *arr, nono_error *err)
{
	if (!json_is_array(arr))
		return nono_fail(err, -EINVAL, "internal: expected an array");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char field[64];
		snprintf(field, sizeof field, "internal[%zu]", i);
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return nono_fail(err, -EINVAL, "%s: expected a HOST:PORT string", field);
		nono_error e2 = { 0 };
		int rc = nono_caps_allow_internal(caps, json_string_value(v), &e2);
		if (rc)
			return nono_fail(err, rc, "%s: %s", field, e2.message);
	}
	return 0;
}

/* "deny": absolute paths (nono_caps_deny_path); they need not exist. */
static int load_denies(nono_caps *caps, json_t *arr, nono_error *err)
{
	if (!json_is_array(arr))
		return nono_fail(err, -EINVAL, "deny: expected an array");
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *p;
		char field[32];
		snprintf(field, sizeof field, "deny[%zu]", i);
		int rc = get_path(e, field, &p, err);
		if (rc || (rc = nono_caps_deny_path(caps, p, err)))
			return rc;
	}
	return 0;
}

nono_caps *nono_caps_from_json(const char *json, size_t len, nono_error *err)
{
	static const char *const keys[] = { "version", "fs", "network", "unix_sockets",
					    "bind_ports", "user_namespaces", "internal", "platform_rules",
					    "deny", NULL };
	if (!json) {
		nono_fail(err, -EINVAL, "JSON text is NULL");
		return NULL;
	}
	json_error_t je;
	/* REJECT_DUPLICATES: {"mode":"blocked","mode":"allowed"} must not mean whichever came last.
	 * ALLOW_NUL: so "\u0000" inside a string loads and get_string can refuse it by name, rather
	 * than jansson failing with a position only. The EOF check (default on) refuses trailing
	 * bytes after the document. */
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!root) {
		/* jansson 2.14 reports most allocation failures while lexing as syntax errors (we
		 * cannot tell those apart); an empty error text means its lexer could not even be
		 * set up, which only happens when out of memory. */
		if (json_error_code(&je) == json_error_out_of_memory || je.text[0] == '\0')
			nono_fail(err, -ENOMEM, "out of memory parsing JSON");
		else
			nono_fail(err, -EINVAL, "invalid JSON at line %d, column %d: %s", je.line,
				  je.column, je.text);
		return NULL;
	}
	nono_caps *caps = NULL;
	int rc;
	if (!json_is_object(root)) {
		rc = nono_fail(err, -EINVAL, "top level: expected an object");
		goto fail;
	}
	if ((rc = check_keys(root, keys, "top level", err)))
		goto fail;
	json_t *v = json_object_get(root, "version");
	if (!v) {
		rc = nono_fail(err, -EINVAL, "version: missing (expected %d)", JSON_SCHEMA_VERSION);
		goto fail;
	}
	if (!json_is_integer(v) || json_integer_value(v) != JSON_SCHEMA_VERSION) {
		rc = nono_fail(err, -EINVAL, "version: expected %d", JSON_SCHEMA_VERSION);
		goto fail;
	}
	caps = nono_caps_new();
	if (!caps) {
		rc = nono_fail(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((v = json_object_get(root, "fs")) && (rc = load_fs(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "network")) && (rc = load_network(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "unix_sockets")) && (rc = load_sockets(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "bind_ports")) && (rc = load_ports(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "user_namespaces"))) {
		if (!json_is_boolean(v)) {
			rc = nono_fail(err, -EINVAL, "user_namespaces: expected true or false");
			goto fail;
		}
		nono_caps_set_user_namespaces(caps, json_is_true(v));
	}
	if ((v = json_object_get(root, "internal")) && (rc = load_internal(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "platform_rules")) && (rc = load_platform_rules(caps, v, err)))
		goto fail;
	if ((v = json_object_get(root, "deny")) && (rc = load_denies(caps, v, err)))
		goto fail;
	json_decref(root);
	nono_error_clear(err);
	return caps;
fail:
	(void)rc;
	nono_caps_free(caps);
	json_decref(root);
	return NULL;
}
