/* test_landlock.c — the Landlock ruleset per ABI (1..7): which rights are handled, file-only rights
 * on file grants, TCP port rules, scopes, ABI 0 refusal/best effort, stale grants. Behaviour is
 * checked by entering the ruleset in forked children (loopback sockets only). */
#include "internal.h"
#include "uapi.h"
#include "unit.h"
#include "plan_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define ABI1_FS 0x1fffULL
static const uint64_t handled_by_abi[8] = {
	0, ABI1_FS, ABI1_FS | 1ULL << 13, ABI1_FS | 3ULL << 13, ABI1_FS | 3ULL << 13,
	0xffff, 0xffff, 0xffff,
};
#define TRUNC (1ULL << 14)
#define IOCTL_DEV (1ULL << 15)

/* Decide at Landlock `abi` on an otherwise capable kernel, build the ruleset only. */
static int ll_prepare(const nono_caps *c, unsigned flags, int abi, struct nono_plan *plan,
		      nono_error *e)
{
	struct nono_kernel k = unit_kernel(abi);
	return unit_landlock_plan(c, flags, &k, plan, e);
}

/* The same through the real probe (the cap knob). */
static int ll_prepare_probed(const nono_caps *c, struct nono_plan *plan, nono_error *e)
{
	struct nono_kernel k;
	nono_kernel_probe(&k);
	return unit_landlock_plan(c, 0, &k, plan, e);
}

static char base[256];
static int kabi;

static void pathf(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", base, rel);
}

static nono_caps *caps_with_grants(void)
{
	nono_caps *c = nono_caps_new();
	char p[512];
	nono_error e;
	pathf(p, sizeof p, "dir");
	CHECK_EQ_INT(nono_caps_allow_path(c, p, NONO_ACCESS_READ_WRITE, &e), 0);
	/* a read-write FILE grant: would be EINVAL in the kernel if directory-only rights
	 * (READ_DIR, MAKE_*, REMOVE_*, REFER) were put on it */
	pathf(p, sizeof p, "file");
	CHECK_EQ_INT(nono_caps_allow_file(c, p, NONO_ACCESS_READ_WRITE, &e), 0);
	pathf(p, sizeof p, "rofile");
	CHECK_EQ_INT(nono_caps_allow_file(c, p, NONO_ACCESS_READ, &e), 0);
	return c;
}

static void test_ladder(void)
{
	nono_caps *c = caps_with_grants();
	nono_error e = { 0 };
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e);
	nono_caps_allow_bind(c, 8080, &e);
	for (int abi = 1; abi <= 7 && abi <= kabi; abi++) {
		struct nono_plan plan;
		memset(&plan, 0, sizeof plan);
		int r = ll_prepare(c, 0, abi, &plan, &e);
		if (r != 0)
			fprintf(stderr, "ABI %d: %s\n", abi, e.message);
		CHECK_EQ_INT(r, 0);
		CHECK(plan.ruleset_fd >= 0);
		CHECK(fcntl(plan.ruleset_fd, F_GETFD) & FD_CLOEXEC);
		CHECK_EQ_INT(plan.report.landlock_abi, abi);
		CHECK_EQ_INT(plan.report.fs_handled, handled_by_abi[abi]);
		/* Below ABI 3 the seccomp filter closes truncation instead (seccomp.c): the plan
		 * reports it enforced, and says by what. */
		CHECK_EQ_INT(plan.report.fs_unenforced, abi < 5 ? IOCTL_DEV : 0);
		CHECK(plan.report.truncate_by_filter == (abi < 3));
		CHECK_EQ_INT(nono_landlock_fs_unenforced(abi), (abi < 3 ? TRUNC : 0) | (abi < 5 ? IOCTL_DEV : 0));
		CHECK(plan.report.landlock_tcp == (abi >= 4));
		CHECK(plan.report.landlock_scopes == (abi >= 6));
		/* ABI 7: the command's denials (after our execve) reach the kernel audit too. */
		CHECK_EQ_INT(plan.restrict_flags, abi >= 7 ? 2 /* LOG_NEW_EXEC_ON */ : 0);
		nono_plan_release(&plan);
	}
	/* above the known ladder: the probe reports it as 7 */
	struct nono_kernel k;
	nono_kernel_probe(&k);
	CHECK_EQ_INT(k.landlock_abi, kabi > 7 ? 7 : kabi);
	CHECK_EQ_INT(k.landlock_abi_kernel, kabi);
	nono_caps_free(c);
}

/* Through the cap knob: the plan uses the capped ABI. */
static void test_cap_knob(void)
{
	nono_caps *c = caps_with_grants();
	nono_error e = { 0 };
	int caps_to_try[] = { 1, 2, 3, 4, 6, 7 };
	for (size_t i = 0; i < N_ELEMENTS(caps_to_try); i++) {
		int cap = caps_to_try[i];
		/* a cap above the kernel's ABI does not limit it: min(cap, kernel) is used */
		int want = cap < kabi ? cap : (kabi > 7 ? 7 : kabi);
		CHECK_EQ_INT(nono_set_max_landlock_abi(cap), 0);
		CHECK_EQ_INT(nono_landlock_abi(), want);
		struct nono_plan plan;
		memset(&plan, 0, sizeof plan);
		CHECK_EQ_INT(ll_prepare_probed(c, &plan, &e), 0);
		CHECK_EQ_INT(plan.report.landlock_abi, want);
		CHECK_EQ_INT(plan.report.fs_handled, handled_by_abi[want]);
		nono_plan_release(&plan);
	}
	nono_set_max_landlock_abi(0);
	nono_caps_free(c);
}

static void test_abi0(void)
{
	nono_caps *c = caps_with_grants();
	nono_error e = { 0 };
	struct nono_plan plan;
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, 0, &plan, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, "landlock") != NULL);
	CHECK_EQ_INT(plan.ruleset_fd, -1);
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, NONO_FLAG_BEST_EFFORT, 0, &plan, &e), 0);
	CHECK_EQ_INT(plan.ruleset_fd, -1);
	CHECK(plan.report.downgraded);
	CHECK_EQ_INT(plan.report.landlock_abi, 0);
	CHECK_EQ_INT(plan.report.fs_unenforced, 0xffff);
	/* an empty set needs Landlock too (it means "no filesystem access") */
	nono_caps *empty = nono_caps_new();
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(empty, 0, 0, &plan, &e), -EOPNOTSUPP);
	nono_caps_free(empty);
	nono_caps_free(c);
}

/* A grant whose path changed kind or vanished since it was granted is refused, not followed. */
static void test_stale_grants(void)
{
	char d[512], f[512];
	pathf(d, sizeof d, "stale-dir");
	pathf(f, sizeof f, "stale-file");
	mkdir(d, 0755);
	close(open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	nono_error e = { 0 };
	struct nono_plan plan;

	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, d, NONO_ACCESS_READ, &e), 0);
	rmdir(d);
	close(open(d, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)); /* now a file */
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -ENOTDIR);
	unlink(d);
	CHECK_EQ_INT(symlink("/etc", d), 0); /* a directory grant does not follow a planted link */
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -ENOTDIR);
	CHECK(strstr(e.message, "symlink") != NULL);
	unlink(d);
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -ENOENT);
	CHECK(strstr(e.message, d) != NULL);
	nono_caps_free(c);

	c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_file(c, f, NONO_ACCESS_READ, &e), 0);
	unlink(f);
	mkdir(f, 0755); /* a file grant must not widen into a tree */
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -EISDIR);
	rmdir(f);
	CHECK_EQ_INT(symlink("/etc", f), 0); /* ... nor follow a symlink planted there */
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -ELOOP);
	unlink(f);
	nono_caps_free(c);

	/* A directory on the way replaced by a symlink after the grant (review R5): the open follows
	 * it, so the rule would cover another tree than the grant names. Refused by identity. The
	 * same directory replaced in place by another one, under the same canonical name, is what
	 * the path names now: granted (an automount point mounted by the open looks like that). */
	char top[512], sub[600], other[512], moved[512];
	pathf(top, sizeof top, "swap-top");
	pathf(other, sizeof other, "swap-other");
	pathf(moved, sizeof moved, "swap-moved");
	snprintf(sub, sizeof sub, "%s/c", top);
	char osub[600];
	snprintf(osub, sizeof osub, "%s/c", other);
	mkdir(top, 0755);
	mkdir(sub, 0755);
	mkdir(other, 0755);
	mkdir(osub, 0755);
	c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, sub, NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(rename(top, moved), 0);
	CHECK_EQ_INT(symlink(other, top), 0);
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), -ESTALE);
	CHECK(strstr(e.message, "replaced") != NULL);
	unlink(top);
	CHECK_EQ_INT(rename(moved, top), 0);
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), 0);
	if (plan.ruleset_fd >= 0)
		close(plan.ruleset_fd);
	rmdir(sub);
	mkdir(sub, 0755); /* another directory, the same canonical name */
	memset(&plan, 0, sizeof plan);
	CHECK_EQ_INT(ll_prepare(c, 0, kabi, &plan, &e), 0);
	if (plan.ruleset_fd >= 0)
		close(plan.ruleset_fd);
	nono_caps_free(c);
	rmdir(sub);
	rmdir(top);
	rmdir(osub);
	rmdir(other);
}

/* ---- behaviour in children ---- */

static int listen_tcp(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0)
		return -1;
	socklen_t l = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &l);
	*port = ntohs(a.sin_port);
	return s;
}

static int try_connect(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
	close(s);
	return r;
}

static int try_bind(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = bind(s, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
	close(s);
	return r;
}

static int try_abstract(const char *name)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	memcpy(a.sun_path + 1, name, n);
	int r = connect(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) == 0 ? 0 : errno;
	close(s);
	return r;
}

static int listen_abstract(const char *name)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	memcpy(a.sun_path + 1, name, n);
	if (bind(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0 ||
	    listen(s, 16) < 0)
		return -1;
	return s;
}

struct net_case {
	int abi;
	nono_net_mode mode;
	uint16_t proxy, other, bindok, bindno;
	const char *abstract;
};

/* Child: enter only the Landlock part, then report results as a bitmask of mismatches. */
static int net_child(const struct net_case *nc)
{
	nono_caps *c = nono_caps_new();
	nono_error e = { 0 };
	nono_caps_set_network(c, nc->mode, nc->mode == NONO_NET_PROXY_ONLY ? nc->proxy : 0, &e);
	if (nc->mode == NONO_NET_PROXY_ONLY) /* bind grants exist only there (plan.c) */
		nono_caps_allow_bind(c, nc->bindok, &e);
	struct nono_plan plan;
	memset(&plan, 0, sizeof plan);
	if (ll_prepare(c, 0, nc->abi, &plan, &e) != 0) {
		fprintf(stderr, "prepare: %s\n", e.message);
		return 100;
	}
	int lfd;
	if (nono_plan_enter(&plan, &lfd) != 0)
		return 101;
	bool tcp = nc->abi >= 4 && nc->mode != NONO_NET_ALLOWED;
	bool scope_unix = nc->abi >= 6 && nc->mode != NONO_NET_ALLOWED;
	int bad = 0;
	int want_proxy = tcp && nc->mode == NONO_NET_BLOCKED ? EACCES : 0;
	if (try_connect(nc->proxy) != want_proxy)
		bad |= 1;
	if (try_connect(nc->other) != (tcp ? EACCES : 0))
		bad |= 2;
	if (try_bind(nc->bindok) != (tcp && nc->mode == NONO_NET_BLOCKED ? EACCES : 0))
		bad |= 4;
	if (try_bind(nc->bindno) != (tcp ? EACCES : 0))
		bad |= 8;
	if (try_abstract(nc->abstract) != (scope_unix ? EPERM : 0))
		bad |= 16;
	/* signal scope (ABI 6): never signal outside the domain, whatever the network mode */
	int k = kill(getppid(), 0) == 0 ? 0 : errno;
	if (k != (nc->abi >= 6 ? EPERM : 0))
		bad |= 32;
	nono_caps_free(c);
	return bad;
}

/* Accept (and close) whatever connections wait on non-blocking listener `s`, so its backlog never
 * fills across cases (a full backlog makes the next connect block: unix waits for the peer, TCP
 * retries SYNs). */
static void drain(int s)
{
	for (int i = 0; i < 64; i++) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			break;
		close(c);
	}
}

static void test_net_and_scopes(void)
{
	uint16_t p1, p2, b1, b2;
	int l1 = listen_tcp(&p1), l2 = listen_tcp(&p2);
	int t1 = listen_tcp(&b1), t2 = listen_tcp(&b2); /* reserve two free ports, then free them */
	close(t1);
	close(t2);
	char abstract[64];
	snprintf(abstract, sizeof abstract, "nono-test-landlock-%d", (int)getpid());
	int la = listen_abstract(abstract);
	CHECK(l1 >= 0 && l2 >= 0 && la >= 0);
	fcntl(l1, F_SETFL, O_NONBLOCK);
	fcntl(l2, F_SETFL, O_NONBLOCK);
	fcntl(la, F_SETFL, O_NONBLOCK);
	nono_net_mode modes[] = { NONO_NET_ALLOWED, NONO_NET_BLOCKED, NONO_NET_PROXY_ONLY };
	/* below ABI 4 (6.7) Landlock restricts no network at all, below 6 (6.12) no scope: those
	 * rungs (the only ones on 6.1) check that nothing is claimed there either */
	int abis[] = { 1, 2, 3, 4, 5, 6, 7 };
	for (size_t m = 0; m < 3; m++) {
		for (size_t i = 0; i < N_ELEMENTS(abis); i++) {
			if (abis[i] > kabi)
				continue;
			struct net_case nc = { abis[i], modes[m], p1, p2, b1, b2, abstract };
			fflush(NULL);
			pid_t pid = fork();
			if (pid == 0)
				_exit(net_child(&nc));
			int st;
			waitpid(pid, &st, 0);
			int r = WIFEXITED(st) ? WEXITSTATUS(st) : 200;
			drain(l1);
			drain(l2);
			drain(la);
			if (r)
				fprintf(stderr, "net case abi %d mode %d: mismatch mask %d\n", abis[i],
					(int)modes[m], r);
			CHECK_EQ_INT(r, 0);
		}
	}
	close(l1);
	close(l2);
	close(la);
}

/* Rights on single files: read-only file cannot be written/truncated, rw file can; siblings are
 * denied; for every ABI. */
static int file_child(int abi)
{
	nono_caps *c = caps_with_grants();
	nono_error e = { 0 };
	struct nono_plan plan;
	memset(&plan, 0, sizeof plan);
	if (ll_prepare(c, 0, abi, &plan, &e) != 0)
		return 100;
	int lfd;
	if (nono_plan_enter(&plan, &lfd) != 0)
		return 101;
	char p[512];
	int bad = 0;
	pathf(p, sizeof p, "file");
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		bad |= 1;
	else
		close(fd);
	pathf(p, sizeof p, "rofile");
	if (open(p, O_WRONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		bad |= 2;
	/* TRUNCATE is handled from ABI 3 (6.2); below, Landlock alone lets truncate(2) and
	 * open(O_RDONLY|O_TRUNC) through (fs_unenforced says so; seccomp.c covers truncate(2)) */
	int t = truncate(p, 0) == 0 ? 0 : errno;
	if (t != (abi >= 3 ? EACCES : 0))
		bad |= 4;
	fd = open(p, O_RDONLY | O_TRUNC | O_CLOEXEC);
	t = fd >= 0 ? 0 : errno;
	if (fd >= 0)
		close(fd);
	if (t != (abi >= 3 ? EACCES : 0))
		bad |= 32;
	pathf(p, sizeof p, "sibling");
	if (open(p, O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		bad |= 8;
	pathf(p, sizeof p, "dir/x");
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		bad |= 16;
	else
		close(fd);
	nono_caps_free(c);
	return bad;
}

static void test_file_rights(void)
{
	for (int abi = 1; abi <= 7 && abi <= kabi; abi++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0)
			_exit(file_child(abi));
		int st;
		waitpid(pid, &st, 0);
		int r = WIFEXITED(st) ? WEXITSTATUS(st) : 200;
		if (r)
			fprintf(stderr, "file case abi %d: mismatch mask %d\n", abi, r);
		CHECK_EQ_INT(r, 0);
	}
}

int main(void)
{
	kabi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (kabi < 1) {
		printf("SKIP: Landlock unavailable\n");
		return 0;
	}
	snprintf(base, sizeof base, "/tmp/nono-test-landlock-XXXXXX");
	if (!mkdtemp(base))
		return 2;
	char p[512];
	pathf(p, sizeof p, "dir");
	mkdir(p, 0755);
	const char *files[] = { "file", "rofile", "sibling" };
	for (int i = 0; i < 3; i++) {
		pathf(p, sizeof p, files[i]);
		close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	}
	test_ladder();
	test_cap_knob();
	test_abi0();
	test_stale_grants();
	test_file_rights();
	test_net_and_scopes();
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	UNIT_DONE();
}
