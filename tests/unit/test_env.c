/* Unit tests for env.c: the loader-variable table, merging order and replacement, entry validation,
 * and dropping of inherited loader variables. */
#include "internal.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static size_t count(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static ssize_t find(char **v, const char *entry)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], entry) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t find_name(char **v, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; v && v[i]; i++)
		if (strncmp(v[i], name, n) == 0 && v[i][n] == '=')
			return (ssize_t)i;
	return -1;
}

static void test_loader_names(void)
{
	static const char *const refused[] = {
		"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_", "LD_PRELOAD=x",
		"DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH", "_RLD_ROOT", "_RLDN32_LIST",
		"_RLD64_LIST", "GLIBC_TUNABLES", "GLIBC_TUNABLES=glibc.malloc.mxfast=0", "GCONV_PATH",
		"GETCONF_DIR", "HOSTALIASES", "LOCPATH", "MALLOC_TRACE", "NLSPATH",
		"RESOLV_HOST_CONF", "RES_OPTIONS", "LIBPATH", "SHLIB_PATH",
	};
	static const char *const fine[] = {
		"PATH", "HOME", "LANG", "OLDPWD", "ld_preload", "XLD_PRELOAD", "LD", "DYLD",
		"GLIBC_TUNABLES_X", "LIBPATHX", "MY_LIBPATH", "GCONV", "RES_OPTION", "PATH=LD_PRELOAD",
		"", "_RL",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		bool r = nono_env_name_is_loader(refused[i]);
		CHECK(r);
		if (!r)
			fprintf(stderr, "  not refused: %s\n", refused[i]);
	}
	for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
		bool r = nono_env_name_is_loader(fine[i]);
		CHECK(!r);
		if (r)
			fprintf(stderr, "  wrongly refused: %s\n", fine[i]);
	}
	CHECK(!nono_env_name_is_loader(NULL));
}

static void test_merge(void)
{
	nono_error e = { 0 };
	char **out = (char **)1;
	CHECK_EQ_INT(nono_env_build(false, NULL, NULL, &out, &e), 0);
	CHECK(out != NULL && out[0] == NULL);
	nono_strv_free(out);

	const char *const extra[] = { "A=1", "B=2", "A=3", "C=x=y", "D=", NULL };
	const char *const over[] = { "B=over", "E=5", "A=last", NULL };
	CHECK_EQ_INT(nono_env_build(false, extra, NULL, &out, &e), 0);
	CHECK_EQ_INT(count(out), 4);
	CHECK_STR(out[0], "A=3"); /* replaced in place: first position kept */
	CHECK_STR(out[1], "B=2");
	CHECK_STR(out[2], "C=x=y");
	CHECK_STR(out[3], "D=");
	nono_strv_free(out);

	CHECK_EQ_INT(nono_env_build(false, extra, over, &out, &e), 0);
	CHECK_EQ_INT(count(out), 5);
	CHECK_STR(out[0], "A=last");
	CHECK_STR(out[1], "B=over");
	CHECK_STR(out[2], "C=x=y");
	CHECK_STR(out[3], "D=");
	CHECK_STR(out[4], "E=5");
	nono_strv_free(out);

	/* Names are compared whole: "A" does not replace "AB". */
	const char *const pre[] = { "AB=1", "A=2", "ABC=3", "AB=4", NULL };
	CHECK_EQ_INT(nono_env_build(false, pre, NULL, &out, NULL), 0);
	CHECK_EQ_INT(count(out), 3);
	CHECK_STR(out[0], "AB=4");
	CHECK_STR(out[1], "A=2");
	CHECK_STR(out[2], "ABC=3");
	nono_strv_free(out);

	/* The result is ours: the caller's strings may go away. */
	char *mine = strdup("OWN=1");
	const char *const own[] = { mine, NULL };
	CHECK_EQ_INT(nono_env_build(false, own, NULL, &out, &e), 0);
	free(mine);
	CHECK_STR(out[0], "OWN=1");
	nono_strv_free(out);

	/* Many entries. */
	char **many = calloc(2001, sizeof *many);
	for (int i = 0; i < 2000; i++)
		if (asprintf(&many[i], "V%d=%d", i % 1000, i) < 0)
			abort();
	CHECK_EQ_INT(nono_env_build(false, (const char *const *)many, NULL, &out, &e), 0);
	CHECK_EQ_INT(count(out), 1000);
	CHECK_STR(out[7], "V7=1007");
	nono_strv_free(out);
	nono_strv_free(many);
}

static void test_refusals(void)
{
	static const struct {
		const char *entry;
		const char *fragment;
	} bad[] = {
		{ "NOEQUALS", "NOEQUALS" },
		{ "=value", "empty variable name" },
		{ "", "expected NAME=VALUE" },
		{ "LD_PRELOAD=/tmp/evil.so", "LD_PRELOAD is a loader-control variable" },
		{ "LD_LIBRARY_PATH=/tmp", "LD_LIBRARY_PATH" },
		{ "DYLD_INSERT_LIBRARIES=x", "DYLD_INSERT_LIBRARIES" },
		{ "GLIBC_TUNABLES=glibc.tune.hwcaps=x", "GLIBC_TUNABLES" },
		{ "GCONV_PATH=/tmp", "GCONV_PATH" },
		{ "_RLD_LIST=x", "_RLD_LIST" },
		{ "LIBPATH=x", "LIBPATH" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *const list[] = { "OK=1", bad[i].entry, NULL };
		for (int where = 0; where < 2; where++) {
			nono_error e = { 0 };
			char **out = (char **)1;
			int rc = where ? nono_env_build(false, NULL, list, &out, &e)
				       : nono_env_build(false, list, NULL, &out, &e);
			bool ok = rc == -EINVAL && e.code == -EINVAL && out == NULL &&
				  strstr(e.message, bad[i].fragment) && strstr(e.message, "[1]");
			CHECK(ok);
			if (!ok)
				fprintf(stderr, "  %s: rc %d message \"%s\"\n", bad[i].entry, rc,
					e.message);
		}
	}
	/* A loader variable after valid ones still fails the whole build. */
	const char *const late[] = { "A=1", "B=2", "LD_AUDIT=x", NULL };
	char **out = NULL;
	CHECK_EQ_INT(nono_env_build(true, late, NULL, &out, NULL), -EINVAL);
	CHECK(out == NULL);
	CHECK_EQ_INT(nono_env_build(false, NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_inherit(void)
{
	setenv("NONO_TEST_KEEP", "1", 1);
	setenv("NONO_TEST_REPLACE", "old", 1);
	setenv("LD_LIBRARY_PATH", "/nonexistent-nono", 1);
	setenv("GCONV_PATH", "/nonexistent-nono", 1);
	setenv("GLIBC_TUNABLES", "glibc.malloc.check=0", 1);
	size_t env_n = count(environ);
	ssize_t at = find_name(environ, "NONO_TEST_REPLACE");
	CHECK(at >= 0);
	size_t before_replace = 0; /* loader variables dropped before that position */
	for (ssize_t i = 0; i < at; i++) {
		const char *eq = strchr(environ[i], '=');
		char name[256];
		size_t n = eq ? (size_t)(eq - environ[i]) : 0;
		if (n >= sizeof name)
			n = sizeof name - 1;
		memcpy(name, environ[i], n);
		name[n] = '\0';
		if (nono_env_name_is_loader(name))
			before_replace++;
	}

	const char *const extra[] = { "NONO_TEST_REPLACE=new", "NONO_TEST_ADDED=2", NULL };
	char **out = NULL;
	nono_error e;
	CHECK_EQ_INT(nono_env_build(true, extra, NULL, &out, &e), 0);
	CHECK(find(out, "NONO_TEST_KEEP=1") >= 0);
	CHECK_EQ_INT(find(out, "NONO_TEST_REPLACE=new"), at - (ssize_t)before_replace);
	CHECK(find(out, "NONO_TEST_REPLACE=old") < 0);
	CHECK_EQ_INT(find(out, "NONO_TEST_ADDED=2"), (ssize_t)count(out) - 1);
	CHECK(find_name(out, "LD_LIBRARY_PATH") < 0);
	CHECK(find_name(out, "GCONV_PATH") < 0);
	CHECK(find_name(out, "GLIBC_TUNABLES") < 0);
	size_t loaders = 0;
	for (size_t i = 0; i < count(out); i++) {
		const char *eq = strchr(out[i], '=');
		CHECK(eq != NULL && eq != out[i]);
		if (eq) {
			char *name = strndup(out[i], (size_t)(eq - out[i]));
			if (nono_env_name_is_loader(name))
				loaders++;
			free(name);
		}
	}
	CHECK_EQ_INT(loaders, 0);
	CHECK(count(out) <= env_n + 1 - 3);
	nono_strv_free(out);

	/* Without inherit nothing of ours leaks in. */
	CHECK_EQ_INT(nono_env_build(false, NULL, NULL, &out, &e), 0);
	CHECK(find_name(out, "NONO_TEST_KEEP") < 0);
	nono_strv_free(out);

	unsetenv("LD_LIBRARY_PATH");
	unsetenv("GCONV_PATH");
	unsetenv("GLIBC_TUNABLES");
}

/* nono_env_compose: the basic set by default, copies, sets, the three bases, loader and reserved
 * names refused when asked for and withheld (and named) when inherited. */
static void test_compose(void)
{
	setenv("PATH", "/usr/bin:/bin", 1);
	setenv("LC_TIME", "C", 1);
	setenv("NONO_TEST_SECRET", "hunter2", 1);
	setenv("NONO_TEST_COPY", "copied", 1);
	setenv("LD_PRELOAD", "/nonexistent-nono.so", 1);
	setenv("HTTPS_PROXY", "http://caller:1", 1);
	CHECK(nono_env_name_is_basic("PATH") && nono_env_name_is_basic("LC_ALL=C"));
	CHECK(!nono_env_name_is_basic("LC_") && !nono_env_name_is_basic("PATHX"));
	CHECK(!nono_env_name_is_basic(NULL));
	nono_error err = {0};
	char **env = NULL, **dropped = NULL;
	const char *copy[] = {"NONO_TEST_COPY", NULL};
	const char *set[] = {"PATH=/opt/bin", "X=1", NULL};
	const char *const *reserved = nono_proxy_env_names();
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, copy, set, reserved, &env, NULL, &err), 0);
	CHECK(find(env, "PATH=/opt/bin") >= 0 && find(env, "LC_TIME=C") >= 0);
	CHECK(find(env, "NONO_TEST_COPY=copied") >= 0 && find(env, "X=1") >= 0);
	CHECK(find_name(env, "NONO_TEST_SECRET") < 0 && find_name(env, "LD_PRELOAD") < 0);
	CHECK(find_name(env, "HTTPS_PROXY") < 0);
	nono_strv_free(env);
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_CLEAR, NULL, set, NULL, &env, NULL, &err), 0);
	CHECK_EQ_INT(count(env), 2);
	nono_strv_free(env);
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_INHERIT, NULL, NULL, reserved, &env, &dropped, &err),
		     0);
	CHECK(find(env, "NONO_TEST_SECRET=hunter2") >= 0 && find_name(env, "LD_PRELOAD") < 0);
	CHECK(find_name(env, "HTTPS_PROXY") < 0);
	CHECK(find(dropped, "LD_PRELOAD") >= 0 && find(dropped, "HTTPS_PROXY") >= 0);
	CHECK_EQ_INT(count(dropped), 2);
	nono_strv_free(env);
	nono_strv_free(dropped);
	/* asked for explicitly: errors naming the variable, nothing returned */
	const char *bad_set[] = {"HTTPS_PROXY=http://x", NULL};
	env = NULL;
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, NULL, bad_set, reserved, &env, NULL, &err),
		     -EINVAL);
	CHECK(env == NULL && strstr(err.message, "HTTPS_PROXY") != NULL);
	const char *bad_copy[] = {"LD_PRELOAD", NULL};
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, bad_copy, NULL, NULL, &env, NULL, &err),
		     -EINVAL);
	const char *missing[] = {"NONO_TEST_UNSET_VAR", NULL};
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, missing, NULL, NULL, &env, NULL, &err), -ENOENT);
	const char *not_name[] = {"A=B", NULL};
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, not_name, NULL, NULL, &env, NULL, &err),
		     -EINVAL);
	CHECK_EQ_INT(nono_env_compose((nono_env_base)7, NULL, NULL, NULL, &env, NULL, &err), -EINVAL);
	CHECK_EQ_INT(nono_env_compose(NONO_ENV_BASIC, NULL, NULL, NULL, NULL, NULL, &err), -EINVAL);
	unsetenv("LD_PRELOAD");
	unsetenv("HTTPS_PROXY");
	unsetenv("NONO_TEST_SECRET");
	unsetenv("NONO_TEST_COPY");
}

int main(void)
{
	test_loader_names();
	test_merge();
	test_refusals();
	test_inherit();
	test_compose();
	UNIT_DONE();
}
