/* envpolicy.c — which of the caller's variables a sandboxed command gets (nono_env_compose), the
 * one rule for the CLI, the C API and nono_py.
 *
 * Why a small default set rather than nothing or everything: with nothing, ordinary tools break in
 * ways that look like sandbox denials (make cannot find cc without PATH, bash starts with "HOME not
 * set" and TERM=dumb, git never reads ~/.gitconfig); with everything, whatever secrets the caller
 * keeps in its environment (tokens, agent sockets, cloud credentials) reach the untrusted command
 * without anyone having chosen to pass them. The set below is what comparable tools keep: where
 * programs are, who and where the user is, the terminal, the locale. Anything else is one --env NAME
 * away, and --inherit-env names what it still withholds.
 *
 * Loader variables never pass (env.c says why). Names nono sets itself (`reserved`: the proxy's
 * variables, the private temp dir's) are an error when the caller asks for them explicitly — a
 * silent overwrite would leave the command using another value than the one asked for — and are
 * withheld (and named) when they would only have been inherited. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

static const char *const basic_names[] = {
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ",
};

static size_t name_len(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq ? (size_t)(eq - s) : strlen(s);
}

static bool name_eq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

bool nono_env_name_is_basic(const char *name)
{
	if (!name)
		return false;
	size_t n = name_len(name);
	if (n > 3 && memcmp(name, "LC_", 3) == 0)
		return true;
	for (size_t i = 0; i < N_ELEMENTS(basic_names); i++)
		if (name_eq(name, n, basic_names[i]))
			return true;
	return false;
}

static bool in_list(const char *const *list, const char *name, size_t n)
{
	for (size_t i = 0; list && list[i]; i++)
		if (name_eq(name, n, list[i]))
			return true;
	return false;
}

/* A growable NULL-terminated vector of borrowed or owned strings (owned: freed with it). */
struct strv {
	char **v;
	size_t n, cap;
};

static int strv_push(struct strv *s, const char *str, size_t len)
{
	if (s->n + 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, ncap * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = ncap;
	}
	if (!(s->v[s->n] = strndup(str, len)))
		return -ENOMEM;
	s->v[++s->n] = NULL;
	return 0;
}

static void strv_clear(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv){0};
}

static const char *caller_entry(const char *name, size_t n)
{
	for (char **p = environ; p && *p; p++)
		if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
			return *p;
	return NULL;
}

/* The caller's variables the base passes; withheld ones go to `dropped` (names). */
static int take_base(nono_env_base base, const char *const *reserved, struct strv *env,
		     struct strv *dropped)
{
	if (base == NONO_ENV_CLEAR)
		return 0;
	for (char **p = environ; p && *p; p++) {
		const char *eq = strchr(*p, '=');
		if (!eq || eq == *p)
			continue;
		size_t n = (size_t)(eq - *p);
		bool want = base == NONO_ENV_INHERIT || nono_env_name_is_basic(*p);
		if (!want)
			continue;
		bool withheld = nono_env_name_is_loader(*p) || in_list(reserved, *p, n);
		int rc = withheld ? (dropped->v || dropped->cap ? strv_push(dropped, *p, n) : 0)
				  : strv_push(env, *p, strlen(*p));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One explicitly asked-for name (from `copy` or `set`): not a loader variable, not reserved. */
static int check_explicit(const char *what, size_t i, const char *s, size_t n,
			  const char *const *reserved, nono_error *err)
{
	int shown = (int)(n > 100 ? 100 : n);
	if (n == 0)
		return nono_fail(err, -EINVAL, "%s[%zu] \"%.100s\": empty variable name", what, i, s);
	if (nono_env_name_is_loader(s))
		return nono_fail(err, -EINVAL, "%s[%zu]: %.*s is a loader-control variable and is "
				 "refused", what, i, shown, s);
	if (in_list(reserved, s, n))
		return nono_fail(err, -EINVAL, "%s[%zu]: %.*s is set by nono itself for this run; "
				 "giving it too would be silently overwritten", what, i, shown, s);
	return 0;
}

static int take_copies(const char *const *copy, const char *const *reserved, struct strv *env,
		       nono_error *err)
{
	for (size_t i = 0; copy && copy[i]; i++) {
		const char *s = copy[i];
		size_t n = strlen(s);
		if (strchr(s, '='))
			return nono_fail(err, -EINVAL, "copy[%zu] \"%.100s\": expected a NAME", i, s);
		int rc = check_explicit("copy", i, s, n, reserved, err);
		if (rc)
			return rc;
		const char *e = caller_entry(s, n);
		if (!e)
			return nono_fail(err, -ENOENT, "copy[%zu]: %.100s is not set in the caller's "
					 "environment (NAME= sets it empty)", i, s);
		if (strv_push(env, e, strlen(e)) < 0)
			return nono_fail(err, -ENOMEM, "out of memory building the environment");
	}
	return 0;
}

static int check_sets(const char *const *set, const char *const *reserved, nono_error *err)
{
	for (size_t i = 0; set && set[i]; i++) {
		const char *eq = strchr(set[i], '=');
		if (!eq)
			return nono_fail(err, -EINVAL, "set[%zu] \"%.100s\": expected NAME=VALUE", i,
					 set[i]);
		int rc = check_explicit("set", i, set[i], (size_t)(eq - set[i]), reserved, err);
		if (rc)
			return rc;
	}
	return 0;
}

int nono_env_compose(nono_env_base base, const char *const *copy, const char *const *set,
		     const char *const *reserved, char ***out, char ***dropped, nono_error *err)
{
	if (!out || (base != NONO_ENV_BASIC && base != NONO_ENV_CLEAR && base != NONO_ENV_INHERIT))
		return nono_fail(err, -EINVAL, "bad arguments to nono_env_compose");
	*out = NULL;
	if (dropped)
		*dropped = NULL;
	struct strv env = {0}, drop = {0};
	int rc = check_sets(set, reserved, err);
	if (rc)
		return rc;
	/* cap != 0 marks "collect the dropped names" for take_base. */
	if (dropped && !(drop.v = calloc(1, sizeof *drop.v)))
		return nono_fail(err, -ENOMEM, "out of memory building the environment");
	drop.cap = dropped ? 1 : 0;
	rc = take_base(base, reserved, &env, &drop);
	if (rc < 0) {
		rc = nono_fail(err, -ENOMEM, "out of memory building the environment");
		goto out;
	}
	rc = take_copies(copy, reserved, &env, err);
	if (rc)
		goto out;
	/* `set` last: an explicit value wins over the same name from the base or a copy. */
	rc = nono_env_build(false, (const char *const *)env.v, set, out, err);
	if (rc == 0 && dropped)
		*dropped = steal_pointer(&drop.v);
out:
	strv_clear(&env);
	if (drop.v) {
		for (size_t i = 0; i < drop.n; i++)
			free(drop.v[i]);
		free(drop.v);
	}
	return rc;
}
