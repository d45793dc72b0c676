/* test_mounts.c — the plan's step for the command's private mount namespace (mounts.c) on kernels
 * we do not have: which paths get covers and read-only binds, in which order; refused without a
 * namespace, a downgrade under best effort; the query follows the binds. Plus the policy
 * documents' C API (policy.c, policy_resolve.c): strict parsing, all-or-nothing resolution. */
#include "plan_util.h"
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/nono-test-mounts-XXXXXX";

static const char *P(const char *rel)
{
	static char buf[8][512];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, 512, "%s/%s", base, rel);
	return b;
}

static void test_ops_and_order(void)
{
	nono_error e = {0};
	nono_caps *c = nono_caps_new();
	mkdir(P("w"), 0755);
	mkdir(P("w/ro"), 0755);
	mkdir(P("w/ro/rw"), 0755);
	mkdir(P("w/ro/secret"), 0755);
	mkdir(P("other"), 0755);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w"), NONO_ACCESS_READ_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w/ro"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w/ro/rw"), NONO_ACCESS_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("other"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_deny_path(c, P("w/ro/secret"), &e), 0);
	CHECK_EQ_INT(nono_caps_deny_path(c, P("nowhere"), &e), 0); /* outside every grant */

	struct nono_kernel k = unit_kernel(7);
	k.mount_ns = true;
	struct nono_plan plan;
	CHECK_EQ_INT(nono_plan_decide(c, &k, 0, &plan, &e), 0);
	CHECK(plan.mount_ops != NULL);
	if (plan.mount_ops) {
		/* outer bind first, the writable one inside it next, covers last */
		CHECK(plan.mount_ops[0].kind == 'r' && !strcmp(plan.mount_ops[0].path, P("w/ro")));
		CHECK(plan.mount_ops[1].kind == 'w' && !strcmp(plan.mount_ops[1].path, P("w/ro/rw")));
		CHECK(plan.mount_ops[2].kind == 'd' &&
		      !strcmp(plan.mount_ops[2].path, P("w/ro/secret")));
		CHECK(plan.mount_ops[3].kind == 0);
	}
	CHECK_EQ_INT(plan.report.deny_mounts, 1);
	CHECK_EQ_INT(plan.report.ro_binds, 1);
	CHECK(strstr(plan.report.text, "mounts: 1 denied") != NULL);
	nono_plan_release(&plan);

	/* No namespace here: refused, naming a path; best effort: a downgrade, no ops. */
	k.mount_ns = false;
	CHECK_EQ_INT(nono_plan_decide(c, &k, 0, &plan, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, P("w/ro")) != NULL);
	nono_plan_release(&plan);
	CHECK_EQ_INT(nono_plan_decide(c, &k, NONO_FLAG_BEST_EFFORT, &plan, &e), 0);
	CHECK(plan.mount_ops == NULL && plan.report.downgraded);
	CHECK(strstr(plan.report.downgrades[0], "NOT enforced") != NULL);
	nono_plan_release(&plan);

	/* The query says what the binds and covers enforce. */
	nono_decision d;
	CHECK_EQ_INT(nono_caps_query_path(c, P("w/ro/x"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_EQ_INT(nono_caps_query_path(c, P("w/ro/rw/x"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_EQ_INT(nono_caps_query_path(c, P("w/ro/secret/k"), NONO_ACCESS_READ, &d, &e), 0);
	CHECK(!d.allowed && strstr(d.reason, "deny path") != NULL);
	CHECK_EQ_INT(nono_caps_query_path(c, P("w/x"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(d.allowed);

	/* A clone keeps the deny paths. */
	nono_caps *c2 = nono_caps_clone(c);
	CHECK_EQ_INT(nono_caps_deny_count(c2), 2);
	CHECK(!strcmp(nono_caps_deny(c2, 0), P("w/ro/secret")));
	CHECK(nono_caps_deny(c2, 2) == NULL);
	nono_caps_free(c2);
	CHECK_EQ_INT(nono_caps_deny_path(c, "relative", &e), -EINVAL);
	/* nono_apply refuses what only nono_exec's namespace can enforce (checked before anything is
	 * applied: no plan is entered). */
	nono_caps_free(c);
}

static void test_policy_api(void)
{
	nono_error e = {0};
	const char bad[] = "{\"groups\": {\"g\": {\"allow\": {\"read\": [\"/x\"], \"exec\": []}}}}";
	CHECK(nono_policy_load(bad, sizeof bad - 1, &e) == NULL);
	CHECK_EQ_INT(e.code, -EINVAL);
	CHECK(strstr(e.message, "groups.g.allow: unknown field \"exec\"") != NULL);
	nono_policy *emb = nono_policy_load_embedded(&e);
	CHECK(emb != NULL);
	CHECK(nono_policy_group_required(emb, "deny_credentials"));
	CHECK(!nono_policy_group_required(emb, "git"));
	CHECK(nono_policy_group_description(emb, "no such group") == NULL);
	nono_policy_free(emb);

	char doc[1024];
	snprintf(doc, sizeof doc,
		 "{\"never_grant\": [\"%s\"], \"groups\": {"
		 "\"a\": {\"allow\": {\"readwrite\": [\"%s\"]}, \"deny\": {\"access\": [\"%s\"]}},"
		 "\"bad\": {\"allow\": {\"read\": [\"%s\"]}}}}",
		 P("other"), P("w"), P("w/ro/secret"), P("other"));
	nono_policy *p = nono_policy_load(doc, strlen(doc), &e);
	CHECK(p != NULL);
	nono_caps *c = nono_caps_new();
	const char *both[] = {"a", "bad"};
	CHECK_EQ_INT(nono_policy_resolve(p, both, 2, c, NULL, &e), -EINVAL);
	CHECK(strstr(e.message, "never_grant") != NULL);
	CHECK_EQ_INT(nono_caps_grant_count(c), 0); /* all or nothing */
	nono_policy_resolved *r = NULL;
	CHECK_EQ_INT(nono_policy_resolve(p, both, 1, c, &r, &e), 0);
	CHECK_EQ_INT(nono_caps_grant_count(c), 1);
	nono_policy_grant g;
	CHECK_EQ_INT(nono_policy_resolved_grant(r, 0, &g), 0);
	CHECK(!strcmp(g.group, "a") && g.access == NONO_ACCESS_READ_WRITE && !g.skipped);
	CHECK_EQ_INT(nono_policy_resolved_grant(r, 1, &g), -ERANGE);
	nono_policy_deny dn;
	CHECK_EQ_INT(nono_policy_resolved_deny(r, 0, &dn), 0);
	const char *deny[] = {dn.path};
	CHECK_EQ_INT(nono_policy_validate_deny_overlaps(deny, 1, c, &e), -EOPNOTSUPP);
	nono_policy_resolved_free(r);
	nono_caps_free(c);
	nono_policy_free(p);
}

int main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_ops_and_order();
	test_policy_api();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	UNIT_DONE();
}
