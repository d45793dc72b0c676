/* test_support.c — the support report against independent probes, and the ABI cap knob (API and
 * environment; the environment cases re-execute this binary so the variable is read fresh). */
#include "internal.h"
#include "uapi.h"
#include "unit.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>


static char self_exe[4096];

static int kernel_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v > 0 ? (int)v : 0;
}

static int kver(void)
{
	struct utsname u;
	int a = 0, b = 0;
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2)
		return a * 100 + b;
	return 0;
}

/* Independent probe: can a forked child install a filter with a listener? */
static bool child_gets_listener(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
		struct sock_fprog prog = { .len = 1, .filter = &allow };
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		_exit(syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog) >= 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static json_t *support_json(const nono_support *s)
{
	char *t = nono_support_json(s);
	if (!t)
		return NULL;
	json_t *j = json_loads(t, 0, NULL);
	free(t);
	return j;
}

static void test_query(void)
{
	nono_support s;
	CHECK_EQ_INT(nono_support_query(&s), 0);
	struct utsname u;
	uname(&u);
	CHECK_STR(s.kernel_release, u.release);
	CHECK_EQ_INT(s.landlock_abi_kernel, kernel_abi());
	CHECK_EQ_INT(s.landlock_abi_cap, 0);
	int want = s.landlock_abi_kernel > 7 ? 7 : s.landlock_abi_kernel;
	CHECK_EQ_INT(s.landlock_abi, want);
	CHECK_EQ_INT(nono_landlock_abi(), want);
	CHECK(s.landlock_fs == (want >= 1));
	CHECK(s.landlock_tcp == (want >= 4));
	CHECK(s.landlock_scopes == (want >= 6));
	CHECK(s.landlock_log_flags == (want >= 7));
#if defined(__x86_64__)
	CHECK(s.x86_64 == (strcmp(u.machine, "x86_64") == 0));
#endif
	CHECK(s.seccomp_filter);
	CHECK(s.seccomp_user_notif == child_gets_listener());
	int pfd = (int)syscall(__NR_pidfd_open, getpid(), 0);
	if (pfd >= 0) {
		int d = (int)syscall(__NR_pidfd_getfd, pfd, 0, 0);
		CHECK(s.pidfd_getfd == (d >= 0));
		if (d >= 0)
			close(d);
		close(pfd);
	}
	/* cross-check the feature probes against the version they appeared in */
	int v = kver();
	CHECK(s.wait_killable_recv == (v >= 519));
	CHECK(s.sync_wakeup == (v >= 606));
	/* The plan's probe agrees with the public report. */
	struct nono_kernel k;
	nono_kernel_probe(&k);
	CHECK_EQ_INT(k.user_notif, s.seccomp_user_notif ? 0 : -EOPNOTSUPP);
	CHECK_EQ_INT(k.landlock_abi, want);
	CHECK_EQ_INT(k.landlock_abi_kernel, s.landlock_abi_kernel);
	CHECK(k.pidfd_getfd == s.pidfd_getfd);
	CHECK(k.wait_killable_recv == s.wait_killable_recv);
	CHECK(k.seccomp_filter == s.seccomp_filter);
	CHECK_STR(k.landlock_cap, "");

	char *t = nono_support_text(&s);
	CHECK(t != NULL);
	if (t) {
		char line[64];
		snprintf(line, sizeof line, "landlock: ABI %d\n", want);
		CHECK(strstr(t, line) != NULL);
		CHECK(strstr(t, u.release) != NULL);
		CHECK(strstr(t, "capped") == NULL);
		CHECK(strstr(t, s.sync_wakeup ? "sync wake-up (6.6): yes" : "sync wake-up (6.6): no"));
		free(t);
	}
	json_t *j = support_json(&s);
	CHECK(j != NULL);
	if (j) {
		CHECK_EQ_INT(json_integer_value(json_object_get(j, "landlock_abi")), want);
		CHECK_STR(json_string_value(json_object_get(j, "landlock_abi_cap_source")), "none");
		CHECK(json_is_true(json_object_get(j, "seccomp_filter")));
		CHECK(json_boolean_value(json_object_get(j, "sync_wakeup")) == s.sync_wakeup);
		CHECK_STR(json_string_value(json_object_get(j, "kernel_release")), u.release);
		json_decref(j);
	}
}

/* Under a filter that already owns a listener, a second listener is EBUSY: the support report
 * must say user notification is unavailable, and the internal check must say EBUSY. */
static void test_busy_listener(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
		struct sock_fprog prog = { .len = 1, .filter = &allow };
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			    &prog) < 0)
			_exit(3);
		nono_support s;
		nono_support_query(&s);
		int bad = 0;
		bad |= s.seccomp_user_notif ? 1 : 0;
		struct nono_kernel k;
		nono_kernel_probe(&k);
		bad |= k.user_notif != -EBUSY ? 2 : 0;
		_exit(bad ? 10 + bad : 0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 0);
}

static void test_cap_api(void)
{
	int k = kernel_abi();
	CHECK_EQ_INT(nono_set_max_landlock_abi(-1), -EINVAL);
	CHECK_EQ_INT(nono_set_max_landlock_abi(65), -EINVAL);
	for (int cap = 1; cap <= 7; cap++) {
		CHECK_EQ_INT(nono_set_max_landlock_abi(cap), 0);
		nono_support s;
		nono_support_query(&s);
		int want = cap < k ? cap : k;
		CHECK_EQ_INT(s.landlock_abi_cap, cap);
		CHECK_EQ_INT(s.landlock_abi, want);
		CHECK_EQ_INT(nono_landlock_abi(), want);
		CHECK(s.landlock_refer == (want >= 2));
		CHECK(s.landlock_truncate == (want >= 3));
		CHECK(s.landlock_tcp == (want >= 4));
		CHECK(s.landlock_ioctl_dev == (want >= 5));
		CHECK(s.landlock_scopes == (want >= 6));
		char *t = nono_support_text(&s);
		if (cap < k) {
			char line[128];
			snprintf(line, sizeof line,
				 "landlock: ABI %d (kernel offers %d, capped by "
				 "nono_set_max_landlock_abi(%d))",
				 cap, k, cap);
			CHECK(t && strstr(t, line));
		}
		free(t);
		json_t *j = support_json(&s);
		CHECK(j && json_integer_value(json_object_get(j, "landlock_abi_cap")) == cap);
		CHECK(j && strcmp(json_string_value(json_object_get(j, "landlock_abi_cap_source")),
				  "api") == 0);
		json_decref(j);
	}
	/* 64 is a valid cap above every kernel: the kernel's ABI is used (at most 7) */
	CHECK_EQ_INT(nono_set_max_landlock_abi(64), 0);
	CHECK_EQ_INT(nono_landlock_abi(), k > 7 ? 7 : k);
	CHECK_EQ_INT(nono_set_max_landlock_abi(0), 0);
	CHECK_EQ_INT(nono_landlock_abi(), k > 7 ? 7 : k);
}

/* Re-executed with NONO_MAX_LANDLOCK_ABI=<value>: check what the library made of it. */
static int env_child(const char *value)
{
	int k = kernel_abi();
	nono_support s;
	nono_support_query(&s);
	char *t = nono_support_text(&s);
	int bad = 0;
	int n = -2;
	bool digits = *value != '\0';
	for (const char *p = value; *p; p++)
		digits &= *p >= '0' && *p <= '9';
	if (digits && strlen(value) <= 2)
		n = atoi(value);
	if (*value == '\0' || n == 0) {
		bad |= s.landlock_abi_cap != 0;
		bad |= s.landlock_abi != (k > 7 ? 7 : k);
		bad |= strstr(t, "capped") != NULL;
	} else if (n >= 1 && n <= 64) {
		int want = n < k ? n : k;
		char line[128];
		snprintf(line, sizeof line,
			 "landlock: ABI %d (kernel offers %d, capped by NONO_MAX_LANDLOCK_ABI=%d)", want,
			 k, n);
		bad |= s.landlock_abi_cap != n;
		bad |= s.landlock_abi != want;
		bad |= nono_landlock_abi() != want;
		if (n < k)
			bad |= strstr(t, line) == NULL;
		else
			bad |= strstr(t, "does not limit it") == NULL;
		snprintf(line, sizeof line, "NONO_MAX_LANDLOCK_ABI=%d", n);
		bad |= strstr(t, line) == NULL; /* the cap is shown whenever one is set */
	} else {
		/* invalid: refused loudly, never read as some number */
		bad |= s.landlock_abi_cap != -1;
		bad |= s.landlock_abi != 0;
		bad |= nono_landlock_abi() != -EINVAL;
		bad |= strstr(t, "REFUSED") == NULL || strstr(t, "NONO_MAX_LANDLOCK_ABI") == NULL;
		json_t *j = support_json(&s);
		bad |= !j || strcmp(json_string_value(json_object_get(j, "landlock_abi_cap_source")),
				    "invalid") != 0;
		json_decref(j);
		/* the API overrides an invalid environment value */
		nono_set_max_landlock_abi(2);
		bad |= nono_landlock_abi() != (k < 2 ? k : 2);
	}
	if (bad)
		fprintf(stderr, "env '%s' gave:\n%s\n", value, t);
	free(t);
	return bad ? 1 : 0;
}

static int reexec(const char *value)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("NONO_MAX_LANDLOCK_ABI", value, 1);
		execl(self_exe, self_exe, "env", value, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cap_env(void)
{
	const char *vals[] = { "3", "1", "2", "6", "64", "0", "", "abc", "-1", "65", "3 ", " 3",
			       "3x", "007", "99999999999999999999" };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		int r = reexec(vals[i]);
		if (r != 0)
			fprintf(stderr, "NONO_MAX_LANDLOCK_ABI='%s' failed\n", vals[i]);
		CHECK_EQ_INT(r, 0);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "env") == 0)
		return env_child(argv[2]);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return 2;
	self_exe[n] = '\0';
	unsetenv("NONO_MAX_LANDLOCK_ABI");
	test_query();
	test_busy_listener();
	test_cap_env();
	test_cap_api();
	UNIT_DONE();
}
