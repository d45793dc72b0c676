/* env.c — the one builder for every child environment (sandboxed exec, the proxy's env helper, the
 * Python binding), and the table of loader-control variables we refuse.
 *
 * Why refuse instead of pass through: the sandbox is entered before execve, so anything that makes
 * the dynamic loader (or libc at startup) load code or read files chosen by the environment runs
 * *inside* our policy but under the caller's choice of code — and several of these variables have
 * been privilege-escalation vectors on their own. A caller who sets one explicitly gets -EINVAL
 * naming it; an inherited one is dropped, because the caller did not choose it for the child.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

/* Reviewable table. `prefix` entries match any name that starts with `name`. */
static const struct loader_var {
	const char *name;
	bool prefix;
	const char *why;
} loader_vars[] = {
	{ "LD_", true, "glibc/musl ld.so: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, LD_DEBUG_OUTPUT …" },
	{ "DYLD_", true, "macOS dyld (refused everywhere so profiles behave the same)" },
	{ "_RLD", true, "IRIX/Tru64 rld: _RLD_LIST, _RLD_ROOT, _RLDN32_* …" },
	{ "GLIBC_TUNABLES", false, "parsed by ld.so; CVE-2023-4911 (Looney Tunables) overflow" },
	{ "GCONV_PATH", false, "iconv loads gconv modules (shared objects) from here" },
	{ "GETCONF_DIR", false, "getconf execs helpers from this directory" },
	{ "HOSTALIASES", false, "resolver reads an arbitrary file as host aliases" },
	{ "LOCPATH", false, "locale archives loaded from an arbitrary directory" },
	{ "MALLOC_TRACE", false, "mtrace writes to an arbitrary file" },
	{ "NLSPATH", false, "catopen reads message catalogs (format strings) from here" },
	{ "RESOLV_HOST_CONF", false, "resolver reads an arbitrary host.conf" },
	{ "RES_OPTIONS", false, "resolver options override resolv.conf" },
	{ "LIBPATH", false, "AIX loader search path" },
	{ "SHLIB_PATH", false, "HP-UX loader search path" },
};

/* Compare the NAME part of `a` (up to '=' or `alen`) with `name`. */
static bool name_is_loader(const char *name, size_t len)
{
	for (size_t i = 0; i < N_ELEMENTS(loader_vars); i++) {
		const struct loader_var *v = &loader_vars[i];
		size_t n = strlen(v->name);
		if (v->prefix ? (len >= n && memcmp(name, v->name, n) == 0)
			      : (len == n && memcmp(name, v->name, n) == 0))
			return true;
	}
	return false;
}

bool nono_env_name_is_loader(const char *name)
{
	if (!name)
		return false;
	const char *eq = strchr(name, '=');
	return name_is_loader(name, eq ? (size_t)(eq - name) : strlen(name));
}

struct envv {
	char **v;
	size_t n, cap;
};

/* Insert a copy of `entry` (NAME=VALUE, name length `nlen`), replacing an earlier one with the same
 * NAME in place (the first occurrence keeps its position). */
static int envv_set(struct envv *e, const char *entry, size_t nlen)
{
	char *copy = strdup(entry);
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], entry, nlen + 1) == 0) { /* includes the '=' */
			free(e->v[i]);
			e->v[i] = copy;
			return 0;
		}
	}
	if (e->n + 1 >= e->cap) {
		size_t ncap = e->cap ? e->cap * 2 : 32;
		char **v = realloc(e->v, ncap * sizeof *v);
		if (!v) {
			free(copy);
			return -ENOMEM;
		}
		e->v = v;
		e->cap = ncap;
	}
	e->v[e->n++] = copy;
	e->v[e->n] = NULL;
	return 0;
}

static void envv_free(struct envv *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

static int add_list(struct envv *e, const char *const *list, const char *what, nono_error *err)
{
	if (!list)
		return 0;
	for (size_t i = 0; list[i]; i++) {
		const char *s = list[i];
		const char *eq = strchr(s, '=');
		if (!eq)
			return nono_fail(err, -EINVAL, "%s[%zu] \"%.100s\": expected NAME=VALUE", what,
					 i, s);
		size_t nlen = (size_t)(eq - s);
		if (nlen == 0)
			return nono_fail(err, -EINVAL, "%s[%zu] \"%.100s\": empty variable name", what,
					 i, s);
		if (name_is_loader(s, nlen))
			return nono_fail(err, -EINVAL, "%s[%zu]: %.*s is a loader-control variable "
					 "and is refused", what, i, (int)(nlen > 100 ? 100 : nlen), s);
		if (envv_set(e, s, nlen) < 0)
			return nono_fail(err, -ENOMEM, "out of memory building the environment");
	}
	return 0;
}

int nono_env_build(bool inherit, const char *const *extra, const char *const *overrides,
		   char ***out, nono_error *err)
{
	if (!out)
		return nono_fail(err, -EINVAL, "output pointer is NULL");
	*out = NULL;
	struct envv e = { 0 };
	int rc;
	/* Start with an empty, NULL-terminated vector so an empty environment is still valid. */
	e.v = calloc(32, sizeof *e.v);
	if (!e.v)
		return nono_fail(err, -ENOMEM, "out of memory building the environment");
	e.cap = 32;
	if (inherit && environ) {
		for (char **p = environ; *p; p++) {
			const char *eq = strchr(*p, '=');
			/* Malformed inherited entries and loader variables are dropped, not errors:
			 * the caller did not pick them for the child. */
			if (!eq || eq == *p || name_is_loader(*p, (size_t)(eq - *p)))
				continue;
			if (envv_set(&e, *p, (size_t)(eq - *p)) < 0) {
				rc = nono_fail(err, -ENOMEM, "out of memory building the environment");
				goto fail;
			}
		}
	}
	rc = add_list(&e, extra, "env", err);
	if (rc)
		goto fail;
	rc = add_list(&e, overrides, "override", err);
	if (rc)
		goto fail;
	*out = e.v;
	nono_error_clear(err);
	return 0;
fail:
	envv_free(&e);
	return rc;
}
