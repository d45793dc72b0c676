/* Unit tests for caps_meta.c: grant sources (set, kept by clone / deduplicate / JSON, refused when
 * malformed) and platform rules (the validator's accept/refuse table, recording, JSON, the plan's
 * report), plus the query decision's tag and access fields (caps_query.c). */
#include "internal.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_sources(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	nono_grant g;
	CHECK_EQ_INT(nono_caps_allow_path(c, "/usr", NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, "/tmp", NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_grant(c, 0, &g), 0);
	CHECK(g.source == NONO_SOURCE_USER && g.group == NULL);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 0, NONO_SOURCE_SYSTEM, NULL, &e), 0);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, NONO_SOURCE_GROUP, "node", &e), 0);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 2, NONO_SOURCE_USER, NULL, &e), -ERANGE);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, NONO_SOURCE_GROUP, NULL, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, NONO_SOURCE_SYSTEM, "x", &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, NONO_SOURCE_GROUP, "", &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, NONO_SOURCE_GROUP, "a\nb", &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_set_grant_source(c, 1, (nono_source)7, NULL, &e), -EINVAL);
	CHECK_STR(nono_source_name(NONO_SOURCE_GROUP), "group");
	CHECK(nono_source_name((nono_source)7) == NULL);
	/* a later grant of the same path merges into the first: its source wins */
	CHECK_EQ_INT(nono_caps_allow_path(c, "/tmp", NONO_ACCESS_WRITE, &e), 0);
	nono_caps_deduplicate(c);
	CHECK_EQ_INT((int)nono_caps_grant_count(c), 2);
	CHECK_EQ_INT(nono_caps_grant(c, 1, &g), 0);
	CHECK(g.source == NONO_SOURCE_GROUP && !strcmp(g.group, "node") &&
	      g.access == NONO_ACCESS_READ_WRITE);
	/* clone and JSON keep them */
	nono_caps *k = nono_caps_clone(c);
	CHECK_EQ_INT(nono_caps_grant(k, 0, &g), 0);
	CHECK(g.source == NONO_SOURCE_SYSTEM);
	char *j = nono_caps_to_json(k, &e);
	CHECK(j && strstr(j, "\"source\": \"group:node\"") && strstr(j, "\"source\": \"system\""));
	nono_caps *back = nono_caps_from_json(j, strlen(j), &e);
	CHECK(back != NULL);
	CHECK_EQ_INT(nono_caps_grant(back, 1, &g), 0);
	CHECK(g.source == NONO_SOURCE_GROUP && !strcmp(g.group, "node"));
	free(j);
	nono_caps_free(back);
	nono_caps_free(k);
	/* malformed sources in JSON are refused by name */
	static const char *bad[] = {
		"{\"version\":1,\"fs\":[{\"path\":\"/usr\",\"access\":\"read\",\"kind\":\"dir\","
		"\"source\":\"profile\"}]}",
		"{\"version\":1,\"fs\":[{\"path\":\"/usr\",\"access\":\"read\",\"kind\":\"dir\","
		"\"source\":\"group:\"}]}",
		"{\"version\":1,\"fs\":[{\"path\":\"/usr\",\"access\":\"read\",\"kind\":\"dir\","
		"\"source\":1}]}",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		nono_caps *x = nono_caps_from_json(bad[i], strlen(bad[i]), &e);
		CHECK(x == NULL && e.code == -EINVAL && strstr(e.message, "fs[0].source"));
		nono_caps_free(x);
	}
	nono_caps_free(c);
}

static void test_platform_rules(void)
{
	static const char *good[] = {
		"(deny file-write* (subpath \"/Users/me/.ssh\"))",
		"(allow file-read* (subpath \"/opt/tool\"))",
		"(allow mach-lookup (global-name \"com.apple.x\"))",
		"(deny network-outbound (remote ip \"*:22\"))",
		"(allow file-read* (require-any (literal \"/etc/a\") (regex #\"^/opt/x/\")))",
		"  (deny process-exec)  ",
	};
	static const char *refused[] = {
		"(allow file-read* (subpath \"/\"))", "(allow default)", "(allow network*)",
		"(allow file-read* (regex #\"^/\"))", "(allow file-write* (literal \"/\"))",
		"(allow file-read* (require-any (subpath \"/\")))", "(allow file-read*",
		"allow file-read*", "", "(permit file-read* (subpath \"/x\"))", "(deny)",
		"(deny File-Read)", "(deny file-read* \"/x\")", "(deny file-read*) (allow default)",
		"(deny file-read* (subpath \"/x))", "(deny file-read* (subpath \"/x\")) trailing",
		"(deny file-read* (subpath \"caf\xc3\xa9\"))",
	};
	nono_caps *c = nono_caps_new();
	nono_error e;
	for (size_t i = 0; i < N_ELEMENTS(good); i++) {
		int r = nono_caps_add_platform_rule(c, good[i], &e);
		if (r)
			fprintf(stderr, "refused %s: %s\n", good[i], e.message);
		CHECK_EQ_INT(r, 0);
	}
	for (size_t i = 0; i < N_ELEMENTS(refused); i++) {
		int r = nono_caps_add_platform_rule(c, refused[i], &e);
		if (r != -EINVAL)
			fprintf(stderr, "accepted %s\n", refused[i]);
		CHECK_EQ_INT(r, -EINVAL);
	}
	CHECK(strstr(e.message, "platform rule") != NULL);
	char longer[1100];
	memset(longer, ' ', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	memcpy(longer, "(deny process-exec)", 19);
	CHECK_EQ_INT(nono_caps_add_platform_rule(c, longer, &e), -EINVAL);
	CHECK_EQ_INT((int)nono_caps_platform_rule_count(c), (int)N_ELEMENTS(good));
	CHECK_STR(nono_caps_platform_rule(c, 0), good[0]);
	CHECK(nono_caps_platform_rule(c, N_ELEMENTS(good)) == NULL);
	/* clone and JSON keep them; the plan reports them */
	nono_caps *k = nono_caps_clone(c);
	CHECK_EQ_INT((int)nono_caps_platform_rule_count(k), (int)N_ELEMENTS(good));
	char *j = nono_caps_to_json(k, &e);
	nono_caps *back = j ? nono_caps_from_json(j, strlen(j), &e) : NULL;
	CHECK(back && nono_caps_platform_rule_count(back) == N_ELEMENTS(good));
	CHECK_STR(nono_caps_platform_rule(back, 4), good[4]);
	const char *bad = "{\"version\":1,\"platform_rules\":[\"(allow default)\"]}";
	nono_caps *x = nono_caps_from_json(bad, strlen(bad), &e);
	CHECK(x == NULL && strstr(e.message, "platform_rules[0]"));
	nono_report rep;
	CHECK_EQ_INT(nono_plan_report(back, NONO_FLAG_BEST_EFFORT, &rep, &e), 0);
	CHECK_EQ_INT((int)rep.platform_rules, (int)N_ELEMENTS(good));
	CHECK(strstr(rep.text, "platform rules: 6 recorded, NOT ENFORCED on Linux") != NULL);
	char *rj = nono_report_json(&rep);
	CHECK(rj && strstr(rj, "\"platform_rules\": 6"));
	free(rj);
	free(j);
	nono_caps_free(back);
	nono_caps_free(k);
	nono_caps_free(c);
}

static void test_query_fields(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	nono_decision *d = calloc(1, sizeof *d);
	CHECK_EQ_INT(nono_caps_allow_path(c, "/usr", NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_query_path(c, "/usr/x", NONO_ACCESS_READ, d, &e), 0);
	CHECK(d->allowed && !strcmp(d->code, "granted_path") && d->granted == NONO_ACCESS_READ);
	CHECK_EQ_INT(nono_caps_query_path(c, "/usr/x", NONO_ACCESS_WRITE, d, &e), 0);
	CHECK(!d->allowed && !strcmp(d->code, "insufficient_access"));
	CHECK(d->granted == NONO_ACCESS_READ && d->requested == NONO_ACCESS_WRITE);
	CHECK_EQ_INT(nono_caps_query_path(c, "/nono-nowhere", NONO_ACCESS_READ, d, &e), 0);
	CHECK(!d->allowed && !strcmp(d->code, "path_not_granted") && d->granted == 0);
	nono_caps_query_network(c, d);
	CHECK(d->allowed && !strcmp(d->code, "network_allowed"));
	nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e);
	nono_caps_query_network(c, d);
	CHECK(!d->allowed && !strcmp(d->code, "network_blocked"));
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e);
	nono_caps_query_network(c, d);
	CHECK(!d->allowed && !strcmp(d->code, "network_proxy_only"));
	free(d);
	nono_caps_free(c);
}

int main(void)
{
	test_sources();
	test_platform_rules();
	test_query_fields();
	UNIT_DONE();
}
