/* test_seccomp.c — the BPF program from nono_seccomp_prepare, loaded for real in forked children.
 * Each check shows the unfiltered behaviour where it differs, so a broken rule fails the test. */
#include "unit.h"
#include "internal.h"
#include "uapi.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* errno of a raw syscall result: 0 on success (closing any fd it returned). */
static int err_of(long r)
{
	if (r < 0)
		return errno;
	return 0;
}

static int sock_err(long domain, long type, long proto)
{
	long fd = syscall(SYS_socket, domain, type, proto);
	if (fd >= 0) {
		close((int)fd);
		return 0;
	}
	return errno;
}

static struct nono_plan make_plan(nono_net_mode mode, uint16_t port)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	struct nono_plan p;
	memset(&p, 0, sizeof p);
	p.ruleset_fd = -1;
	CHECK_EQ_INT(nono_caps_set_network(c, mode, port, &e), 0);
	int r = nono_seccomp_prepare(c, 0, &p, &e);
	if (r < 0)
		fprintf(stderr, "prepare: %s\n", e.message);
	CHECK_EQ_INT(r, 0);
	nono_caps_free(c);
	return p;
}

/* Fork; the child loads `p` (closing the listener at once, so trapped calls get ENOSYS), runs
 * `fn` and exits with its failure count. Returns the child's wait status. */
static int run_child(const struct nono_plan *p, void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		unit_failures = 0;
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		unsigned fl = p->seccomp_flags | (p->notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
		long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, fl, &p->prog);
		if (fd < 0) {
			fprintf(stderr, "seccomp: %s\n", strerror(errno));
			_exit(100);
		}
		if (p->notify)
			close((int)fd);
		fn();
		fflush(NULL);
		_exit(unit_failures > 99 ? 99 : unit_failures);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

static void expect_clean_exit(int st)
{
	CHECK(WIFEXITED(st));
	if (WIFEXITED(st)) {
		unit_failures += WEXITSTATUS(st);
		CHECK_EQ_INT(WEXITSTATUS(st), 0);
	} else {
		fprintf(stderr, "child killed by signal %d\n", WTERMSIG(st));
	}
}

/* Checks common to every mode. */
static void always_checks(void)
{
	char c = 'x';
	/* TIOCSTI on a pipe is ENOTTY unfiltered; the filter answers first with EPERM — also with
	 * garbage in the upper 32 bits of cmd, which the kernel ignores. */
	CHECK_EQ_INT(err_of(syscall(SYS_ioctl, 0, (long)TIOCSTI, &c)), EPERM);
	CHECK_EQ_INT(err_of(syscall(SYS_ioctl, 0, (long)(0xdeadbeef00000000ULL | TIOCSTI), &c)),
		     EPERM);
	CHECK_EQ_INT(err_of(syscall(SYS_ioctl, 0, (long)TIOCLINUX, &c)), EPERM);
	/* io_uring_setup(1, NULL) is EFAULT unfiltered. */
	CHECK_EQ_INT(err_of(syscall(__NR_io_uring_setup, 1, NULL)), ENOSYS);
	CHECK_EQ_INT(err_of(syscall(__NR_io_uring_enter, -1, 0, 0, 0, NULL, 0)), ENOSYS);
	CHECK_EQ_INT(err_of(syscall(__NR_io_uring_register, -1, 0, NULL, 0)), ENOSYS);
}

static void unfiltered_baseline(void)
{
	char c = 'x';
	CHECK(err_of(syscall(SYS_ioctl, 0, (long)(0xdeadbeef00000000ULL | TIOCSTI), &c)) != EPERM);
	CHECK_EQ_INT(err_of(syscall(__NR_io_uring_setup, 1, NULL)), EFAULT);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), 0);
}

static void restricted_common(void)
{
	always_checks();
	/* Families: never IP raw/packet, never UDP, and the kernel's int truncation does not
	 * help (0x1_00000002 is AF_INET to the kernel). */
	CHECK_EQ_INT(sock_err(AF_PACKET, SOCK_RAW, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_DGRAM, IPPROTO_UDP), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_RAW, IPPROTO_ICMP), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), EACCES);
	CHECK_EQ_INT(sock_err(0x100000000L | AF_INET, SOCK_DGRAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_VSOCK, SOCK_STREAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_UNSPEC, SOCK_STREAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(0x7fffffff, SOCK_STREAM, 0), EACCES);
	/* unix: stream and seqpacket; no datagram (nor SOCK_RAW, which becomes one). */
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_SEQPACKET, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_RAW, 0), EACCES);
	/* netlink route only. */
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 0);
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), EACCES);
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW, 0x100000000L | NETLINK_SOCK_DIAG), EACCES);
	int sv[2];
	CHECK_EQ_INT(err_of(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
	int sv2[2];
	CHECK_EQ_INT(err_of(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv2)), EACCES);
	CHECK_EQ_INT(err_of(socketpair(AF_INET, SOCK_STREAM, 0, sv2)), EACCES);
	/* sendto without an address is not supervised; with one it is (listener closed: ENOSYS);
	 * MSG_FASTOPEN is refused in BPF. */
	CHECK_EQ_INT(err_of(send(sv[0], "a", 1, 0)), 0);
	CHECK_EQ_INT(err_of(sendto(sv[0], "a", 1, 0, NULL, 0)), 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(err_of(sendto(sv[0], "a", 1, 0, (struct sockaddr *)&sin, sizeof sin)), ENOSYS);
	CHECK_EQ_INT(err_of(sendto(sv[0], "a", 1, MSG_FASTOPEN, NULL, 0)), EACCES);
	struct iovec iov = {"a", 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	CHECK_EQ_INT(err_of(sendmsg(sv[0], &mh, 0)), 0);
	CHECK_EQ_INT(err_of(sendmsg(sv[0], &mh, MSG_FASTOPEN)), EACCES);
	struct mmsghdr mm = {.msg_hdr = mh};
	CHECK_EQ_INT(err_of(sendmmsg(sv[0], &mm, 1, MSG_FASTOPEN)), EACCES);
	/* connect/bind/listen are trapped: with the listener gone, the kernel says ENOSYS. */
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un { sa_family_t f; char p[108]; } sun = {AF_UNIX, "/tmp/nono-no-such"};
	CHECK_EQ_INT(err_of(connect(u, (struct sockaddr *)&sun, sizeof sun)), ENOSYS);
	CHECK_EQ_INT(err_of(bind(u, (struct sockaddr *)&sun, sizeof sun)), ENOSYS);
	CHECK_EQ_INT(err_of(listen(u, 1)), ENOSYS);
	close(u);
	close(sv[0]);
	close(sv[1]);
}

static void blocked_checks(void)
{
	restricted_common();
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0), EACCES);
}

static void proxy_checks(void)
{
	restricted_common();
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP), 0);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_STREAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, IPPROTO_SCTP), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_SEQPACKET, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, 0x100000000L | SOCK_DGRAM, 0), EACCES);
	/* TCP connect is trapped (listener gone: ENOSYS). */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(err_of(connect(s, (struct sockaddr *)&sin, sizeof sin)), ENOSYS);
	close(s);
}

static void allowed_checks(void)
{
	always_checks();
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM, 0), 0);
	/* Not trapped: a refused loopback port, not ENOSYS. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(err_of(connect(s, (struct sockaddr *)&sin, sizeof sin)), ECONNREFUSED);
	close(s);
}

static void x32_getpid(void)
{
	syscall(0x40000000L | SYS_getpid); /* __X32_SYSCALL_BIT */
	_exit(0); /* not reached: killed */
}

static void i386_getpid(void)
{
	long ret;
	/* int $0x80 with eax = 20 (i386 getpid): audited as AUDIT_ARCH_I386. */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
	(void)ret;
	_exit(0);
}

static void i386_socketcall(void)
{
	long ret;
	unsigned long args[3] = {AF_INET, SOCK_DGRAM, 0};
	/* socketcall(SYS_SOCKET=1, args): eax = 102. The args live below 4 GiB only by luck, but
	 * the filter kills on arch before the kernel ever reads them. */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(102L), "b"(1L), "c"(args) : "memory");
	(void)ret;
	_exit(0);
}

static void truncate_check(void)
{
	/* Below Landlock ABI 3 truncate(2) is denied by the filter: EACCES before any lookup. */
	CHECK_EQ_INT(err_of(truncate("/nonexistent/nono", 0)), EACCES);
}

static void truncate_allowed(void)
{
	CHECK_EQ_INT(err_of(truncate("/nonexistent/nono", 0)), ENOENT);
}

/* No listener (EBUSY under another supervisor, old kernel): blocked still holds, by the filter
 * alone — address syscalls are refused in BPF instead of trapped. */
static void nolistener_checks(void)
{
	always_checks();
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, 0), EACCES);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), EACCES);
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un { sa_family_t f; char p[108]; } sun = {AF_UNIX, "/tmp/nono-no-such"};
	CHECK_EQ_INT(err_of(connect(u, (struct sockaddr *)&sun, sizeof sun)), EACCES);
	CHECK_EQ_INT(err_of(bind(u, (struct sockaddr *)&sun, sizeof sun)), EACCES);
	CHECK_EQ_INT(err_of(listen(u, 1)), EACCES);
	int sv[2];
	CHECK_EQ_INT(err_of(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
	CHECK_EQ_INT(err_of(sendto(sv[0], "a", 1, 0, (struct sockaddr *)&sun, sizeof sun)), EACCES);
	CHECK_EQ_INT(err_of(send(sv[0], "a", 1, 0)), 0);
	close(u);
}

static void test_no_listener(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	struct nono_plan p;
	memset(&p, 0, sizeof p);
	p.no_listener = true;
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e), 0);
	CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), 0);
	CHECK(!p.notify && p.prog.len > 0 && !p.report.downgraded);
	expect_clean_exit(run_child(&p, nolistener_checks));
	free(p.prog.filter);
	/* A unix-socket grant cannot be honoured without a supervisor: refused… */
	memset(&p, 0, sizeof p);
	p.no_listener = true;
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, "/tmp", &e), 0);
	CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, "supervisor") != NULL);
	/* …or, best effort, dropped and reported. */
	memset(&p, 0, sizeof p);
	p.no_listener = true;
	CHECK_EQ_INT(nono_seccomp_prepare(c, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK(!p.notify && p.report.downgraded);
	free(p.prog.filter);
	/* proxy-only: refused, or best effort → blocked (never open). */
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e), 0);
	memset(&p, 0, sizeof p);
	p.no_listener = true;
	CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), -EOPNOTSUPP);
	memset(&p, 0, sizeof p);
	p.no_listener = true;
	CHECK_EQ_INT(nono_seccomp_prepare(c, NONO_FLAG_BEST_EFFORT, &p, &e), 0);
	CHECK(!p.notify && p.report.downgraded);
	CHECK_EQ_INT(p.report.net_enforced, NONO_NET_BLOCKED);
	expect_clean_exit(run_child(&p, nolistener_checks));
	free(p.prog.filter);
	nono_caps_free(c);
}

/* A UDP socket as stdin would be a way around the filter (sendmsg): refused for restricted
 * networks, fine for an allowed one; a stream socket pair is fine. */
static void test_stdio_sockets(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		unit_failures = 0;
		nono_caps *c = nono_caps_new();
		nono_error e;
		struct nono_plan p;
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		dup2(u, 0);
		nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL);
		memset(&p, 0, sizeof p);
		CHECK_EQ_INT(nono_seccomp_prepare(c, NONO_FLAG_BEST_EFFORT, &p, &e), -EINVAL);
		CHECK(strstr(e.message, "stdin") != NULL);
		nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, NULL);
		memset(&p, 0, sizeof p);
		CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), -EINVAL);
		nono_caps_set_network(c, NONO_NET_ALLOWED, 0, NULL);
		memset(&p, 0, sizeof p);
		CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), 0);
		free(p.prog.filter);
		int sv[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		dup2(sv[0], 0);
		nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL);
		memset(&p, 0, sizeof p);
		CHECK_EQ_INT(nono_seccomp_prepare(c, 0, &p, &e), 0);
		free(p.prog.filter);
		nono_caps_free(c);
		fflush(NULL);
		_exit(unit_failures > 99 ? 99 : unit_failures);
	}
	int st;
	waitpid(pid, &st, 0);
	expect_clean_exit(st);
}

int main(void)
{
	/* Baseline: the same probes without a filter. */
	pid_t pid = fork();
	if (pid == 0) {
		unfiltered_baseline();
		_exit(unit_failures);
	}
	int st;
	waitpid(pid, &st, 0);
	expect_clean_exit(st);

	struct nono_plan p = make_plan(NONO_NET_BLOCKED, 0);
	CHECK(p.notify);
	CHECK(p.prog.len > 0 && p.prog.filter);
	CHECK(p.report.seccomp && p.report.supervisor);
	/* WAIT_KILLABLE_RECV exactly where the kernel has it (5.19; 6.1 lacks it: no failure). */
	nono_support sup;
	nono_support_query(&sup);
	CHECK_EQ_INT(!!(p.seccomp_flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV),
		     sup.wait_killable_recv);
	/* Architecture check first: load arch, compare with AUDIT_ARCH_X86_64. */
	CHECK_EQ_INT(p.prog.filter[0].code, BPF_LD | BPF_W | BPF_ABS);
	CHECK_EQ_INT(p.prog.filter[0].k, 4); /* offsetof(struct seccomp_data, arch) */
	CHECK_EQ_INT(p.prog.filter[1].k, 0xc000003e);
	expect_clean_exit(run_child(&p, blocked_checks));

	st = run_child(&p, x32_getpid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	st = run_child(&p, i386_getpid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	st = run_child(&p, i386_socketcall);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	free(p.prog.filter);

	p = make_plan(NONO_NET_PROXY_ONLY, 3128);
	CHECK(p.notify);
	expect_clean_exit(run_child(&p, proxy_checks));
	st = run_child(&p, x32_getpid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	free(p.prog.filter);

	p = make_plan(NONO_NET_ALLOWED, 0);
	CHECK(!p.notify);
	CHECK(p.prog.len > 0);
	expect_clean_exit(run_child(&p, allowed_checks));
	st = run_child(&p, i386_getpid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	/* ABI 7 here: truncate is Landlock's business. */
	if (nono_landlock_abi() >= 3)
		expect_clean_exit(run_child(&p, truncate_allowed));
	free(p.prog.filter);

	CHECK_EQ_INT(nono_set_max_landlock_abi(2), 0);
	p = make_plan(NONO_NET_ALLOWED, 0);
	expect_clean_exit(run_child(&p, truncate_check));
	free(p.prog.filter);
	nono_set_max_landlock_abi(0);

	test_no_listener();
	test_stdio_sockets();
	UNIT_DONE();
}
