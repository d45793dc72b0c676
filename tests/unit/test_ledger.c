/* Unit tests for the ledger's canonical-text check (ledger_canon.c): every text it accepts must be
 * exactly jansson's own canonical dump of what it parses to (else the ledger would hash a text that
 * `nono audit verify` re-dumps differently), checked on hand-written cases, on jansson's dumps of
 * generated values, and on random mutations of them; and a ledger written through both paths
 * verifies. */
#include "ledger_int.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

#define CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* If accepted, it must be its own canonical round trip. Returns whether it was accepted. */
static bool accepted_and_exact(const char *text)
{
	if (!ledger_is_canonical_object(text))
		return false;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	char *back = v ? json_dumps(v, CANON) : NULL;
	bool same = back && !strcmp(back, text);
	if (!same)
		fprintf(stderr, "accepted but not canonical: %s (jansson: %s)\n", text,
			back ? back : "(does not parse)");
	CHECK(same);
	free(back);
	json_decref(v);
	return true;
}

static void test_cases(void)
{
	static const char *const yes[] = {
		"{}", "{\"a\":1}", "{\"a\":[],\"b\":{}}", "{\"a\":-12,\"b\":0,\"c\":true,\"d\":null}",
		"{\"a\":\"x\\\"y\\\\z\\n\\t\"}", "{\"A\":1,\"a\":2,\"ab\":3}", "{\"a\":[1,\"2\",[false]]}",
		"{\"p\":\"/etc/passwd\"}", "{\"t\":0.0}", "{\"t\":-1.5}", "{\"t\":-0.0}",
	};
	static const char *const no[] = {
		"", "[]", "1", "{", "{\"a\":1", "{\"a\":1}x", "{ \"a\":1}", "{\"a\": 1}", "{\"b\":1,\"a\":2}",
		"{\"a\":1,\"a\":2}", "{\"a\":1e3}", "{\"a\":-0}", "{\"a\":01}",
		"{\"a\":\"\\u0041\"}", "{\"a\":\"\\/\"}", "{\"a\\n\":1}", "{\"a\":\"\xc3\xa9\"}",
		"{\"a\":\"\x01\"}", "{\"a\":tru}", "{\"a\":[1,]}", "{\"a\":1,}", "{a:1}",
		"{\"a\":1234567890123456789}", "{\"ab\":1,\"a\":2}",
		"{\"t\":0.1}", "{\"t\":1.50}", "{\"t\":1.}", "{\"t\":0}x",
		"{\"t\":1.0e5}", "{\"t\":.5}",
	};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		bool ok = accepted_and_exact(yes[i]);
		if (!ok)
			fprintf(stderr, "not accepted: %s\n", yes[i]);
		CHECK(ok);
	}
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
		bool acc = ledger_is_canonical_object(no[i]);
		if (acc)
			fprintf(stderr, "accepted: %s\n", no[i]);
		CHECK(!acc);
	}
	char deep[300] = "{\"a\":";
	for (int i = 0; i < 70; i++)
		strcat(deep, "[");
	for (int i = 0; i < 70; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	CHECK(!ledger_is_canonical_object(deep));
}

static const char alphabet[] = "aAbZ_/ .\"\\\n\t\x01\x7f\xc3\xa9-0";

static char *rand_str(void)
{
	size_t n = (size_t)(rand() % 5);
	char *s = calloc(n + 1, 1);
	for (size_t i = 0; i < n; i++) {
		char c = alphabet[rand() % (int)(sizeof alphabet - 1)];
		s[i] = c == '\xc3' || c == '\xa9' ? 'e' : c; /* keep it valid UTF-8 */
	}
	return s;
}

static json_t *rand_value(int depth)
{
	static const double reals[] = {0.0, -0.0, 1.5, 0.1, 1e20, 1e-7, 3.0, -2.25, 123456.789};
	int k = rand() % (depth > 3 ? 6 : 8);
	switch (k) {
	case 0: return json_integer((rand() % 2001) - 1000);
	case 1: { char *s = rand_str(); json_t *v = json_string(s); free(s); return v; }
	case 2: return rand() % 2 ? json_true() : json_false();
	case 3: return json_null();
	case 4: return json_integer((json_int_t)rand() * 1000003);
	case 5: return json_real(rand() % 2 ? reals[rand() % 9] : rand() / 7.0);
	case 6: {
		json_t *a = json_array();
		for (int i = rand() % 4; i > 0; i--)
			json_array_append_new(a, rand_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (int i = rand() % 4; i > 0; i--) {
			char *key = rand_str();
			json_object_set_new(o, key, rand_value(depth + 1));
			free(key);
		}
		return o;
	}
	}
}

static void test_generated_and_mutated(void)
{
	srand(12345);
	int accepted = 0, mutants_accepted = 0;
	for (int i = 0; i < 3000; i++) {
		json_t *o = json_object();
		for (int j = rand() % 5; j > 0; j--) {
			char *key = rand_str();
			json_object_set_new(o, key, rand_value(0));
			free(key);
		}
		char *text = json_dumps(o, CANON);
		json_decref(o);
		accepted += accepted_and_exact(text);
		size_t n = strlen(text);
		for (int m = 0; m < 8 && n > 0; m++) {
			char *mut = strdup(text);
			mut[rand() % n] = alphabet[rand() % (int)(sizeof alphabet - 1)];
			mutants_accepted += accepted_and_exact(mut);
			free(mut);
		}
		free(text);
	}
	/* The check is meant for the common case: most generated dumps must take the fast path. */
	CHECK(accepted > 1000);
	CHECK(mutants_accepted > 0);
}

static void test_ledger_both_paths(void)
{
	char dir[] = "/tmp/nono-ledger-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char path[64];
	snprintf(path, sizeof path, "%s/ledger.jsonl", dir);
	nono_ledger *l = NULL;
	nono_error e;
	CHECK_EQ_INT(nono_ledger_create(path, &l, &e), 0);
	CHECK_EQ_INT(nono_ledger_append(l, "a", "{\"x\":[1,2],\"y\":\"s\"}", &e), 0); /* as is */
	CHECK_EQ_INT(nono_ledger_append(l, "b", "{\"y\": 1.5, \"x\": \"\\u00e9\"}", &e), 0);
	CHECK_EQ_INT(nono_ledger_append(l, "c", "[1]", &e), -EINVAL);
	nono_ledger_summary s;
	CHECK_EQ_INT(nono_ledger_finish(l, "{}", &s, &e), 0);
	nono_ledger_free(l);
	nono_ledger_summary v;
	CHECK_EQ_INT(nono_ledger_verify(path, &v, &e), 0);
	CHECK_EQ_INT(v.records, 3);
	CHECK_STR(v.chain_head, s.chain_head);
	CHECK_STR(v.merkle_root, s.merkle_root);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_cases();
	test_generated_and_mutated();
	test_ledger_both_paths();
	UNIT_DONE();
}
