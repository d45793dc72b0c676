/* fuzz_caps_json.c — libFuzzer harness for the capability-set JSON loader (profiles are untrusted
 * input: a user may load one written by anyone).
 *
 * Properties checked on every input:
 * - nono_caps_from_json never crashes, leaks or reads out of bounds (ASan/UBSan/LSan do the work);
 * - a rejection always carries a negative code and a non-empty message;
 * - an accepted document round-trips exactly: to_json(from_json(to_json(c))) == to_json(c), byte
 *   for byte, and the reloaded set has the same grants, network mode, sockets and ports;
 * - the query functions, summary, clone and deduplicate accept whatever the loader accepted.
 * The loader canonicalises paths with realpath()/stat() only; it never creates or writes files.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static void exercise(const nono_caps *c)
{
	static const char *const probes[] = { "/", "/tmp", "/etc/passwd", "/no/such/path",
					      "relative/x", "/tmp/../etc" };
	nono_decision d;
	nono_error e;
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		for (int a = 1; a <= 3; a++)
			REQUIRE(nono_caps_query_path(c, probes[i], (nono_access)a, &d, &e) == 0);
		(void)nono_caps_path_covered(c, probes[i]);
	}
	nono_caps_query_network(c, &d);
	char *s = nono_caps_summary(c);
	REQUIRE(s != NULL);
	free(s);
	nono_caps *k = nono_caps_clone(c);
	REQUIRE(k != NULL);
	size_t n = nono_caps_grant_count(k);
	nono_caps_deduplicate(k);
	REQUIRE(nono_caps_grant_count(k) <= n);
	nono_caps_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nono_error e = { 0 };
	nono_caps *c = nono_caps_from_json((const char *)data, size, &e);
	if (!c) {
		REQUIRE(e.code < 0 && e.message[0] != '\0');
		return 0;
	}
	exercise(c);
	char *j1 = nono_caps_to_json(c, &e);
	if (!j1) {
		/* Only possible when a symlink resolved to a name that is not UTF-8. */
		REQUIRE(e.code == -EINVAL && strstr(e.message, "UTF-8"));
		nono_caps_free(c);
		return 0;
	}
	nono_caps *c2 = nono_caps_from_json(j1, strlen(j1), &e);
	REQUIRE(c2 != NULL);
	char *j2 = nono_caps_to_json(c2, &e);
	REQUIRE(j2 != NULL && strcmp(j1, j2) == 0);
	REQUIRE(nono_caps_grant_count(c) == nono_caps_grant_count(c2));
	for (size_t i = 0; i < nono_caps_grant_count(c); i++) {
		nono_grant a, b;
		REQUIRE(nono_caps_grant(c, i, &a) == 0 && nono_caps_grant(c2, i, &b) == 0);
		REQUIRE(strcmp(a.resolved, b.resolved) == 0 && a.access == b.access &&
			a.is_file == b.is_file);
	}
	uint16_t p1, p2;
	REQUIRE(nono_caps_network(c, &p1) == nono_caps_network(c2, &p2) && p1 == p2);
	REQUIRE(nono_caps_unix_socket_count(c) == nono_caps_unix_socket_count(c2));
	REQUIRE(nono_caps_bind_port_count(c) == nono_caps_bind_port_count(c2));
	free(j1);
	free(j2);
	nono_caps_free(c2);
	nono_caps_free(c);
	return 0;
}
