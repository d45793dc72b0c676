/* test_plan.c — the one decision step (nono_plan_decide) on kernels we do not have: Debian 12's 6.1,
 * kernels without user notification or pidfd_getfd, a process under another supervisor, no Landlock,
 * no seccomp filter; the combinations every front end must refuse alike; the report rendered from
 * the plan's fields; and that deciding makes no syscall at all. */
#include "internal.h"
#include "plan_util.h"
#include "uapi.h"
#include "unit.h"

#include <jansson.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define IOCTL_DEV (1ULL << 15)
#define TRUNC (1ULL << 14)

static nono_caps *caps_net(nono_net_mode m, uint16_t port)
{
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, m, port, NULL), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, "/usr", NONO_ACCESS_READ, NULL), 0);
	return c;
}

static int decide(const nono_caps *c, const struct nono_kernel *k, unsigned flags,
		  struct nono_plan *p, nono_error *e)
{
	memset(e, 0, sizeof *e);
	return nono_plan_decide(c, k, flags, p, e);
}

/* This machine's kind: everything there. */
static void test_full_kernel(void)
{
	struct nono_kernel k = unit_kernel(7);
	struct nono_plan p;
	nono_error e;
	nono_caps *c = caps_net(NONO_NET_PROXY_ONLY, 3128);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK_EQ_INT(p.net, NONO_NET_PROXY_ONLY);
	CHECK_EQ_INT(p.proxy_port, 3128);
	CHECK(p.notify && p.seccomp && p.landlock_tcp);
	CHECK_EQ_INT(p.seccomp_variant, NONO_SC_ALWAYS | NONO_SC_NO_USERNS | NONO_SC_PROXY |
					NONO_SC_NOTIFY | NONO_SC_META);
	CHECK_EQ_INT(p.seccomp_flags, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
	CHECK_EQ_INT(p.landlock_scoped, LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET);
	CHECK_EQ_INT(p.fs_handled, 0xffff);
	CHECK(!p.report.downgraded && p.report.n_downgrades == 0);
	CHECK(p.report.supervisor && p.report.scope_abstract_unix && !p.report.truncate_by_filter);
	CHECK_EQ_INT(p.report.fs_unenforced, 0);
	CHECK_EQ_INT(p.report.grants, 1);
	nono_caps_free(c);
	/* allowed: no TCP rules, signal scope only; the supervisor decides metadata writes and
	 * watches only (issue 11), so no network rule of the filter applies */
	c = caps_net(NONO_NET_ALLOWED, 0);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK(p.notify && !p.landlock_tcp && p.seccomp);
	CHECK_EQ_INT(p.landlock_scoped, LANDLOCK_SCOPE_SIGNAL);
	CHECK_EQ_INT(p.seccomp_variant, NONO_SC_ALWAYS | NONO_SC_NO_USERNS | NONO_SC_META);
	CHECK_EQ_INT(p.seccomp_flags, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
	CHECK(p.report.supervisor && !p.report.downgraded);
	CHECK(p.report.userns_refused);
	/* user namespaces allowed by the caps: the filter leaves them alone, the report says so */
	nono_caps_set_user_namespaces(c, true);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK_EQ_INT(p.seccomp_variant, NONO_SC_ALWAYS | NONO_SC_META);
	CHECK(!p.report.userns_refused);
	nono_caps_free(c);
	/* no Landlock (best effort): nothing to hold metadata writes to, no supervisor */
	c = caps_net(NONO_NET_ALLOWED, 0);
	struct nono_kernel nolandlock = unit_kernel(0);
	CHECK_EQ_INT(decide(c, &nolandlock, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK(!p.notify && p.seccomp);
	CHECK(!(p.seccomp_variant & (NONO_SC_META | NONO_SC_NOMETA)));
	nono_caps_free(c);
}

/* Debian 12's own kernel: 6.1, Landlock ABI 2, user notification and pidfd_getfd, no
 * WAIT_KILLABLE_RECV (5.19 is older, but Debian's probe says yes: model the worst case). */
static void test_debian_61(void)
{
	struct nono_kernel k = unit_kernel(2);
	k.wait_killable_recv = false;
	struct nono_plan p;
	nono_error e;
	nono_caps *c = caps_net(NONO_NET_PROXY_ONLY, 3128);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK_EQ_INT(p.net, NONO_NET_PROXY_ONLY); /* the supervisor holds it without TCP rules */
	CHECK(p.notify && !p.landlock_tcp);
	CHECK_EQ_INT(p.landlock_scoped, 0);
	CHECK_EQ_INT(p.seccomp_variant, NONO_SC_ALWAYS | NONO_SC_NO_USERNS | NONO_SC_PROXY |
					NONO_SC_NOTIFY | NONO_SC_OLD_LL | NONO_SC_META);
	CHECK_EQ_INT(p.seccomp_flags, 0);
	CHECK(p.report.truncate_by_filter);
	CHECK_EQ_INT(p.report.fs_unenforced, IOCTL_DEV); /* truncation: closed by the filter */
	CHECK(!p.report.landlock_scopes && !p.report.downgraded);
	CHECK(strstr(p.report.text, "landlock scopes: NOT ENFORCED (ABI < 6)") != NULL);
	nono_caps_free(c);
}

/* Without a supervisor proxy-only is refused, or (best effort) becomes blocked, never open; each
 * cause is named. */
static void test_no_supervisor(void)
{
	struct {
		int user_notif;
		bool pidfd;
		const char *why;
	} cases[] = {
		{-EOPNOTSUPP, true, "5.0"},
		{0, false, "5.6"},
		{-EBUSY, true, "EBUSY"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct nono_kernel k = unit_kernel(7);
		k.user_notif = cases[i].user_notif;
		k.pidfd_getfd = cases[i].pidfd;
		struct nono_plan p;
		nono_error e;
		nono_caps *c = caps_net(NONO_NET_PROXY_ONLY, 3128);
		CHECK_EQ_INT(decide(c, &k, 0, &p, &e), -EOPNOTSUPP);
		CHECK(strstr(e.message, cases[i].why) != NULL);
		CHECK(!p.report.seccomp && !p.report.supervisor); /* a refusal enforces nothing */
		CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
		CHECK_EQ_INT(p.net, NONO_NET_BLOCKED);
		CHECK_EQ_INT(p.proxy_port, 0); /* no layer keeps a rule for the proxy port */
		CHECK(!p.notify);
		/* …and nobody decides metadata writes and watches: refused outright (issue 11) */
		CHECK_EQ_INT(p.seccomp_variant, NONO_SC_ALWAYS | NONO_SC_NO_USERNS | NONO_SC_BLOCKED |
						     NONO_SC_NONOTIFY | NONO_SC_NOMETA);
		CHECK(p.landlock_tcp); /* ABI 7: TCP handled, nothing granted */
		CHECK_EQ_INT(p.report.net_requested, NONO_NET_PROXY_ONLY);
		CHECK_EQ_INT(p.report.net_enforced, NONO_NET_BLOCKED);
		CHECK(p.report.downgraded && p.report.n_downgrades == 2);
		CHECK(strstr(p.report.downgrades[0], cases[i].why) != NULL);
		CHECK(strstr(p.report.downgrades[1], "chmod") != NULL);
		CHECK(strstr(p.report.downgrades[1], cases[i].why) != NULL);
		CHECK(strstr(p.report.text, "downgraded: proxy-only became blocked") != NULL);
		/* blocked alone stays fully enforced by the filter; the one line says that metadata
		 * writes are refused everywhere */
		CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL), 0);
		CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
		CHECK(!p.notify && p.report.n_downgrades == 1);
		CHECK(strstr(p.report.downgrades[0], "chmod") != NULL);
		CHECK(p.seccomp_variant & NONO_SC_NONOTIFY);
		/* …but a unix-socket grant cannot be honoured */
		CHECK_EQ_INT(nono_caps_allow_unix_socket(c, "/tmp", NULL), 0);
		CHECK_EQ_INT(decide(c, &k, 0, &p, &e), -EOPNOTSUPP);
		CHECK(strstr(e.message, "supervisor") != NULL);
		CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
		CHECK(p.report.downgraded && strstr(p.report.downgrades[0], "not honoured") != NULL);
		CHECK_EQ_INT(p.report.unix_sockets, 0); /* the report counts what is honoured */
		nono_caps_free(c);
	}
}

static void test_missing_layers(void)
{
	struct nono_plan p;
	nono_error e;
	nono_caps *c = caps_net(NONO_NET_ALLOWED, 0);
	/* no Landlock */
	struct nono_kernel k = unit_kernel(0);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, "landlock") != NULL);
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK_EQ_INT(p.landlock_abi, 0);
	CHECK_EQ_INT(p.report.fs_unenforced, 0xffff);
	CHECK(p.report.downgraded && strstr(p.report.downgrades[0], "filesystem unrestricted"));
	CHECK(strstr(p.report.text, "landlock: NOT APPLIED") != NULL);
	/* no seccomp filter: best effort may drop it only with the network allowed */
	k = unit_kernel(7);
	k.seccomp_filter = false;
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), -EOPNOTSUPP);
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK(!p.seccomp && !p.report.seccomp && p.report.downgraded);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL), 0);
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, "network blocked") != NULL);
	/* not x86_64: our filter is written for it alone */
	k = unit_kernel(7);
	k.x86_64 = false;
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), -EOPNOTSUPP);
	/* an invalid ABI cap, unknown flags */
	k = unit_kernel(7);
	k.landlock_abi = -1;
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), -EINVAL);
	CHECK(strstr(e.message, "NONO_MAX_LANDLOCK_ABI") != NULL);
	k = unit_kernel(7);
	CHECK_EQ_INT(decide(c, &k, 0x80, &p, &e), -EINVAL);
	nono_caps_free(c);
}

/* The same refusals for the CLI, the C API and nono_py: they all come from here. */
static void test_combinations(void)
{
	struct nono_kernel k = unit_kernel(7);
	struct nono_plan p;
	nono_error e;
	nono_caps *c = caps_net(NONO_NET_ALLOWED, 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, "/tmp", NULL), 0);
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), -EINVAL);
	CHECK(strstr(e.message, "only mean something when the network is restricted") != NULL);
	nono_caps_free(c);
	c = caps_net(NONO_NET_BLOCKED, 0);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 8080, NULL), 0);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), -EINVAL);
	CHECK(strstr(e.message, "bind grants need proxy-only") != NULL);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, NULL), 0);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK_EQ_INT(p.report.bind_ports, 1);
	struct nono_kernel old = unit_kernel(7);
	old.user_notif = -EOPNOTSUPP; /* best effort: blocked, the bind grant not honoured */
	CHECK_EQ_INT(decide(c, &old, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK_EQ_INT(p.report.bind_ports, 0);
	CHECK_EQ_INT(p.report.proxy_port, 3128); /* as requested; net_enforced says blocked */
	CHECK_EQ_INT(p.report.net_enforced, NONO_NET_BLOCKED);
	/* a datagram socket on stdout under a restricted network */
	k.stdio_dgram_fd = 1;
	CHECK_EQ_INT(decide(c, &k, NONO_FLAG_BEST_EFFORT, &p, &e), -EINVAL);
	CHECK(strstr(e.message, "stdout") != NULL);
	nono_caps_free(c);
}

/* Port 0: "chosen when the proxy starts". A plan report accepts it and prints no port; a plan that
 * will be entered refuses it. */
static void test_port_chosen_at_start(void)
{
	struct nono_kernel k = unit_kernel(7);
	struct nono_plan p;
	nono_error e;
	nono_caps *c = caps_net(NONO_NET_PROXY_ONLY, 0);
	CHECK_EQ_INT(decide(c, &k, 0, &p, &e), 0);
	CHECK_EQ_INT(p.report.proxy_port, 0);
	CHECK(strstr(p.report.text, "requested proxy-only(port chosen at start)") != NULL);
	CHECK(strstr(p.report.text, "connect: port chosen at start") != NULL);
	nono_report rep;
	CHECK_EQ_INT(nono_plan_report(c, 0, &rep, &e), 0);
	CHECK_EQ_INT(rep.proxy_port, 0);
	CHECK_EQ_INT(nono_plan_prepare(c, 0, &p, &e), -EINVAL);
	CHECK(strstr(e.message, "port") != NULL);
	char *j = nono_report_json(&rep);
	json_t *o = j ? json_loads(j, 0, NULL) : NULL;
	CHECK(o && json_is_null(json_object_get(o, "proxy_port")));
	json_decref(o);
	free(j);
	nono_caps_free(c);
}

/* Text and JSON are renderings of the fields. */
static void test_render(void)
{
	nono_report r;
	memset(&r, 0, sizeof r);
	r.landlock_abi = 3;
	r.landlock_abi_kernel = 7;
	snprintf(r.landlock_cap, sizeof r.landlock_cap, "NONO_MAX_LANDLOCK_ABI=3");
	r.fs_handled = nono_landlock_fs_handled(3);
	r.fs_unenforced = nono_landlock_fs_unenforced(3);
	r.grants = 2;
	r.seccomp = r.supervisor = r.no_new_privs = true;
	r.net_requested = r.net_enforced = NONO_NET_BLOCKED;
	nono_report_downgrade(&r, "first");
	nono_report_downgrade(&r, "second %d", 2);
	nono_report_render(&r);
	CHECK(strstr(r.text, "landlock: ABI 3 (kernel offers 7, capped by NONO_MAX_LANDLOCK_ABI=3), 2 "
			     "grant(s), fs rights handled 0x7fff, not enforceable: ioctl_dev\n") != NULL);
	CHECK(strstr(r.text, "seccomp: filter + user-notification supervisor\n") != NULL);
	CHECK(strstr(r.text, "network: requested blocked, enforced blocked\n") != NULL);
	CHECK(strstr(r.text, "downgraded: first; second 2") != NULL);
	CHECK(r.downgraded && r.n_downgrades == 2);
	for (int i = 0; i < 10; i++) /* bounded */
		nono_report_downgrade(&r, "more");
	CHECK_EQ_INT(r.n_downgrades, NONO_REPORT_DOWNGRADES_MAX);
	CHECK(strstr(r.downgrades[NONO_REPORT_DOWNGRADES_MAX - 1], "more downgrades") != NULL);
	char *j = nono_report_json(&r);
	json_t *o = j ? json_loads(j, 0, NULL) : NULL;
	CHECK(o != NULL);
	if (o) {
		CHECK_STR(json_string_value(json_object_get(o, "net_enforced")), "blocked");
		CHECK_STR(json_string_value(json_object_get(o, "landlock_cap")), "NONO_MAX_LANDLOCK_ABI=3");
		json_t *un = json_object_get(o, "fs_unenforced");
		CHECK(json_array_size(un) == 1 &&
		      !strcmp(json_string_value(json_array_get(un, 0)), "ioctl_dev"));
		CHECK_EQ_INT(json_array_size(json_object_get(o, "downgrades")), NONO_REPORT_DOWNGRADES_MAX);
		CHECK_EQ_INT(json_array_size(json_object_get(o, "fs_handled")), 15);
		json_decref(o);
	}
	free(j);
	CHECK(nono_report_json(NULL) == NULL);
}

/* The decision step makes no syscall: run it under SECCOMP_MODE_STRICT (read, write, _exit and
 * sigreturn only; anything else is SIGKILL). Everything it needs is prepared before. */
static void test_decide_makes_no_syscall(void)
{
	nono_caps *c = caps_net(NONO_NET_PROXY_ONLY, 3128);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 8080, NULL), 0);
	struct nono_kernel ks[] = {unit_kernel(7), unit_kernel(2), unit_kernel(0)};
	ks[1].user_notif = -EBUSY;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		static struct nono_plan p;
		static nono_error e;
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0)
			syscall(SYS_exit, 3);
		int sum = 0;
		for (size_t i = 0; i < N_ELEMENTS(ks); i++)
			sum += nono_plan_decide(c, &ks[i], NONO_FLAG_BEST_EFFORT, &p, &e) == 0;
		syscall(SYS_exit, sum == 3 ? 0 : 4);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), 0);
	nono_caps_free(c);
}

int main(void)
{
	test_full_kernel();
	test_debian_61();
	test_no_supervisor();
	test_missing_layers();
	test_combinations();
	test_port_chosen_at_start();
	test_render();
	test_decide_makes_no_syscall();
	UNIT_DONE();
}
