/* caps_meta.c — what a capability set carries beside its grants that never decides access on Linux:
 * where each grant came from (nono_source), and raw platform rules (macOS Seatbelt syntax), which
 * are validated, recorded and reported by every plan instead of being dropped silently.
 *
 * Why validate a rule Linux will not apply: a policy written for both platforms must fail the same
 * way on both, and a dangerous rule (an allow that re-opens "/") must not load anywhere only because
 * this platform happens to ignore it. */
#include "caps_int.h"

#include <stdio.h>
#include <string.h>

#define RULE_MAX 1024

const char *nono_source_name(nono_source s)
{
	switch (s) {
	case NONO_SOURCE_USER: return "user";
	case NONO_SOURCE_GROUP: return "group";
	case NONO_SOURCE_SYSTEM: return "system";
	}
	return NULL;
}

static bool printable(const char *s, bool allow_ws)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c > 0x7e) {
			if (!(allow_ws && (c == '\t' || c == '\n')))
				return false;
		}
	}
	return true;
}

int nono_caps_set_grant_source(nono_caps *caps, size_t i, nono_source source, const char *group,
			       nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (i >= caps->ngrants)
		return nono_fail(err, -ERANGE, "no grant %zu (the set has %zu)", i, caps->ngrants);
	if (!nono_source_name(source))
		return nono_fail(err, -EINVAL, "invalid grant source %d", (int)source);
	if ((source == NONO_SOURCE_GROUP) != (group != NULL))
		return nono_fail(err, -EINVAL, "a group name is required for a group source and only "
				 "for it");
	char *copy = NULL;
	if (group) {
		if (!*group || strlen(group) > 128 || !printable(group, false))
			return nono_fail(err, -EINVAL, "group name must be 1..128 printable characters");
		copy = strdup(group);
		if (!copy)
			return nono_fail(err, -ENOMEM, "out of memory");
	}
	struct grant *g = &caps->grants[i];
	free(g->group);
	g->group = copy;
	g->source = source;
	nono_error_clear(err);
	return 0;
}

/* ---- platform rules ------------------------------------------------------------------------ */

/* A tiny S-expression reader: enough to check shape and find dangerous allows, never to apply. */
typedef struct {
	const char *p;
	int depth;
	int forms_at_top; /* complete top-level forms seen */
} rd;

static void skip_ws(rd *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n')
		r->p++;
}

/* Read an atom or a string into buf; returns 1 atom, 2 string, 0 none, -1 malformed. */
static int read_token(rd *r, char *buf, size_t n)
{
	size_t len = 0;
	bool str = false;
	if (*r->p == '#' && r->p[1] == '"')
		r->p++; /* #"regex" */
	if (*r->p == '"') {
		str = true;
		r->p++;
		while (*r->p && *r->p != '"') {
			if (*r->p == '\\' && r->p[1])
				r->p++;
			if (len + 1 < n)
				buf[len++] = *r->p;
			r->p++;
		}
		if (*r->p != '"')
			return -1;
		r->p++;
	} else {
		while (*r->p && !strchr(" \t\n()\"", *r->p)) {
			if (len + 1 < n)
				buf[len++] = *r->p;
			r->p++;
		}
	}
	buf[len] = '\0';
	return str ? 2 : len ? 1 : 0;
}

static bool valid_operation(const char *op)
{
	size_t n = strlen(op);
	if (!n || op[0] < 'a' || op[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = op[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			  (c == '*' && i == n - 1);
		if (!ok)
			return false;
	}
	return true;
}

/* A path or regex argument that reaches everything. */
static bool covers_root(const char *filter, const char *arg)
{
	if (!strcmp(filter, "regex"))
		return !strcmp(arg, "") || !strcmp(arg, "^/") || !strcmp(arg, "^/.*") ||
		       !strcmp(arg, ".*") || !strcmp(arg, "^.*") || !strcmp(arg, "/");
	return !strcmp(arg, "/") || !strcmp(arg, "") || !strcmp(arg, "//");
}

/* Walk one list whose '(' was consumed; `filter` is this list's head (for nested filters).
 * Sets *root when an argument covers "/". */
static int walk_list(rd *r, bool *root, nono_error *err)
{
	char head[64] = "", tok[RULE_MAX];
	bool first = true;
	if (++r->depth > 16)
		return nono_fail(err, -EINVAL, "platform rule nests too deeply");
	for (;;) {
		skip_ws(r);
		if (!*r->p)
			return nono_fail(err, -EINVAL, "platform rule: unbalanced parentheses");
		if (*r->p == ')') {
			r->p++;
			r->depth--;
			return 0;
		}
		if (*r->p == '(') {
			r->p++;
			int rc = walk_list(r, root, err);
			if (rc)
				return rc;
			first = false;
			continue;
		}
		int t = read_token(r, tok, sizeof tok);
		if (t < 0)
			return nono_fail(err, -EINVAL, "platform rule: unterminated string");
		if (t == 0)
			return nono_fail(err, -EINVAL, "platform rule: unexpected character '%c'", *r->p);
		if (first)
			snprintf(head, sizeof head, "%.63s", tok);
		else if (t == 2 && covers_root(head, tok))
			*root = true;
		first = false;
	}
}

static int validate_rule(const char *rule, nono_error *err)
{
	if (!rule || !*rule)
		return nono_fail(err, -EINVAL, "platform rule is empty");
	if (strlen(rule) > RULE_MAX)
		return nono_fail(err, -EINVAL, "platform rule longer than %d bytes", RULE_MAX);
	if (!printable(rule, true))
		return nono_fail(err, -EINVAL, "platform rule: only printable ASCII is accepted");
	rd r = {.p = rule};
	char verb[16], op[96];
	skip_ws(&r);
	if (*r.p != '(')
		return nono_fail(err, -EINVAL, "platform rule must be one (allow|deny OPERATION ...) form");
	r.p++;
	skip_ws(&r);
	if (read_token(&r, verb, sizeof verb) != 1 || (strcmp(verb, "allow") && strcmp(verb, "deny")))
		return nono_fail(err, -EINVAL, "platform rule must start with allow or deny");
	skip_ws(&r);
	if (read_token(&r, op, sizeof op) != 1 || !valid_operation(op))
		return nono_fail(err, -EINVAL, "platform rule: missing or malformed operation after %s",
				 verb);
	bool root = false;
	skip_ws(&r);
	bool scoped = *r.p != ')';
	r.depth = 1;
	/* The rest of the form: filters (lists) until the closing parenthesis. */
	for (;;) {
		skip_ws(&r);
		if (*r.p == ')') {
			r.p++;
			break;
		}
		if (!*r.p)
			return nono_fail(err, -EINVAL, "platform rule: unbalanced parentheses");
		if (*r.p != '(')
			return nono_fail(err, -EINVAL, "platform rule: filters must be lists, e.g. "
					 "(subpath \"/path\")");
		r.p++;
		int rc = walk_list(&r, &root, err);
		if (rc)
			return rc;
	}
	skip_ws(&r);
	if (*r.p)
		return nono_fail(err, -EINVAL, "platform rule: text after the form (one rule per call)");
	if (!strcmp(verb, "allow") && (!scoped || !strcmp(op, "default")))
		return nono_fail(err, -EINVAL, "dangerous platform rule: an unscoped (allow %s) "
				 "re-opens everything the sandbox closes", op);
	if (!strcmp(verb, "allow") && root)
		return nono_fail(err, -EINVAL, "dangerous platform rule: (allow %s) covering \"/\" "
				 "re-opens the whole filesystem", op);
	return 0;
}

int nono_caps_add_platform_rule(nono_caps *caps, const char *rule, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	int rc = validate_rule(rule, err);
	if (rc)
		return rc;
	char **v = realloc(caps->prules, (caps->nprules + 1) * sizeof *v);
	if (!v)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->prules = v;
	if (!(v[caps->nprules] = strdup(rule)))
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->nprules++;
	nono_error_clear(err);
	return 0;
}

size_t nono_caps_platform_rule_count(const nono_caps *caps)
{
	return caps ? caps->nprules : 0;
}

const char *nono_caps_platform_rule(const nono_caps *caps, size_t i)
{
	return caps && i < caps->nprules ? caps->prules[i] : NULL;
}

void nono_caps_meta_free(nono_caps *caps)
{
	for (size_t i = 0; i < caps->ngrants; i++) {
		free(caps->grants[i].group);
		caps->grants[i].group = NULL;
	}
	for (size_t i = 0; i < caps->nprules; i++)
		free(caps->prules[i]);
	free(caps->prules);
	caps->prules = NULL;
	caps->nprules = 0;
}

int nono_caps_meta_clone(nono_caps *dst, const nono_caps *src)
{
	for (size_t i = 0; i < src->ngrants && i < dst->ngrants; i++) {
		dst->grants[i].source = src->grants[i].source;
		if (src->grants[i].group && !(dst->grants[i].group = strdup(src->grants[i].group)))
			return -ENOMEM;
	}
	if (!src->nprules)
		return 0;
	if (!(dst->prules = calloc(src->nprules, sizeof *dst->prules)))
		return -ENOMEM;
	for (size_t i = 0; i < src->nprules; i++) {
		if (!(dst->prules[i] = strdup(src->prules[i])))
			return -ENOMEM;
		dst->nprules++;
	}
	return 0;
}
