/* test_seccomp.c — the BPF program for a plan's variant (nono_plan_decide, then
 * nono_seccomp_build), loaded for real in forked children.
 * Each check shows the unfiltered behaviour where it differs, so a broken rule fails the test. */
#include "unit.h"
#include "internal.h"
#include "uapi.h"
#include "plan_util.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Decide with kernel `k` (NULL: this machine, through the real probe), build only the filter. */
static int sc_prepare(const nono_caps *c, unsigned flags, const struct nono_kernel *k,
		      struct nono_plan *p, nono_error *e)
{
	struct nono_kernel probed;
	if (!k) {
		nono_kernel_probe(&probed);
		k = &probed;
	}
	int r = nono_plan_decide(c, k, flags, p, e);
	return r < 0 ? r : nono_seccomp_build(p->seccomp_variant, &p->prog, e);
}

/* A refused socket()/socketpair(): EACCES from the filter alone; with a supervisor the filter
 * sends it there (seccomp.c via_supervisor) to be recorded, and with the listener closed as here
 * the kernel answers ENOSYS — refused either way. Set in the child by run_child. */
static int refused_errno = EACCES;
#define REFUSED refused_errno

static struct nono_plan make_plan(nono_net_mode mode, uint16_t port)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	struct nono_plan p;
	CHECK_EQ_INT(nono_caps_set_network(c, mode, port, &e), 0);
	int r = sc_prepare(c, 0, NULL, &p, &e);
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
		refused_errno = p->notify ? ENOSYS : EACCES;
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

/* A 2-segment IPv6 segment routing header (type 4), as setsockopt(IPV6_RTHDR) takes it: the kernel
 * would route to the first hop (2001:db8::9), whatever address the socket was connected to. */
static const unsigned char srh[8 + 32] = {
	0, 4 /* hdrlen: 2 segments */, 4 /* type: SRH */, 1 /* segments_left */, 1 /* first_segment */,
	0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, /* 2001:db8::9 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,            /* ::1 */
};

/* errno of setsockopt via the raw syscall (so the upper halves of level/optname are ours). */
static int sso(int fd, long level, long opt, const void *v, socklen_t len)
{
	return err_of(syscall(SYS_setsockopt, fd, level, opt, v, len));
}

/* The setsockopt deny list (review F10/F11): every pair EPERM, on any socket (the filter answers
 * before the kernel looks at the fd), also with garbage in the upper 32 bits. */
static void setsockopt_denied(int fd)
{
	static const long pairs[][2] = {{41, 3},  {41, 4},  {41, 5},  {41, 6}, {41, 9}, {41, 54},
					{41, 55}, {41, 57}, {41, 59}, {0, 4},  {1, 25}, {1, 62}};
	char buf[64] = {0};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		int e = sso(fd, pairs[i][0], pairs[i][1], buf, sizeof buf);
		if (e != EPERM)
			fprintf(stderr, "setsockopt(%ld, %ld): errno %d, want EPERM\n", pairs[i][0],
				pairs[i][1], e);
		CHECK_EQ_INT(e, EPERM);
		CHECK_EQ_INT(sso(fd, 0x100000000L | pairs[i][0], 0x700000000L | pairs[i][1], buf,
				 sizeof buf),
			     EPERM);
	}
	CHECK_EQ_INT(sso(fd, 41, 57, srh, sizeof srh), EPERM);
	CHECK_EQ_INT(sso(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), EPERM);
	int one = 1;
	CHECK_EQ_INT(sso(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &one, sizeof one), EPERM);
}

static void unfiltered_baseline(void)
{
	/* The options the filter refuses do work without it (root or not: IPV6_RTHDR with a
	 * segment routing header and SO_BINDTODEVICE are unprivileged). */
	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK_EQ_INT(sso(s6, 41, 57, srh, sizeof srh), 0);
	CHECK_EQ_INT(sso(s6, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), 0);
	close(s6);

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
	CHECK_EQ_INT(sock_err(AF_PACKET, SOCK_RAW, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_DGRAM, IPPROTO_UDP), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_RAW, IPPROTO_ICMP), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), REFUSED);
	CHECK_EQ_INT(sock_err(0x100000000L | AF_INET, SOCK_DGRAM, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_VSOCK, SOCK_STREAM, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_UNSPEC, SOCK_STREAM, 0), REFUSED);
	CHECK_EQ_INT(sock_err(0x7fffffff, SOCK_STREAM, 0), REFUSED);
	/* unix: stream and seqpacket; no datagram (nor SOCK_RAW, which becomes one). */
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_SEQPACKET, 0), 0);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_UNIX, SOCK_RAW, 0), REFUSED);
	/* netlink route only. */
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 0);
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), REFUSED);
	CHECK_EQ_INT(sock_err(AF_NETLINK, SOCK_RAW, 0x100000000L | NETLINK_SOCK_DIAG), REFUSED);
	int sv[2];
	CHECK_EQ_INT(err_of(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
	int sv2[2];
	CHECK_EQ_INT(err_of(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv2)), REFUSED);
	CHECK_EQ_INT(err_of(socketpair(AF_INET, SOCK_STREAM, 0, sv2)), REFUSED);
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
	/* setsockopt: the deny list on any socket; ordinary options untouched. */
	setsockopt_denied(sv[0]);
	int one = 1;
	CHECK_EQ_INT(sso(sv[0], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(sv[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){65536}, sizeof(int)), 0);
	close(u);
	close(sv[0]);
	close(sv[1]);
}

/* blocked and proxy-only: TCP sockets may exist (as in an empty network namespace); what they could
 * reach goes through the address syscalls, trapped here. */
static void tcp_socket_checks(void)
{
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP), 0);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_STREAM, 0), 0);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_STREAM, IPPROTO_SCTP), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_SEQPACKET, 0), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), REFUSED);
	CHECK_EQ_INT(sock_err(AF_INET, 0x100000000L | SOCK_DGRAM, 0), REFUSED);
	/* TCP connect is trapped (listener gone: ENOSYS). */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(err_of(connect(s, (struct sockaddr *)&sin, sizeof sin)), ENOSYS);
	/* The sockets proxy-only lets exist: the deny list holds on them (IP_OPTIONS would work
	 * here as root), harmless TCP/IP options keep working. */
	int one = 1;
	setsockopt_denied(s);
	CHECK_EQ_INT(sso(s, IPPROTO_IP, IP_OPTIONS, "\x01\x01\x01\x01", 4), EPERM);
	CHECK_EQ_INT(sso(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(s, IPPROTO_IP, IP_TOS, &(int){0x10}, sizeof(int)), 0);
	close(s);
	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt_denied(s6);
	CHECK_EQ_INT(sso(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(s6, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
	CHECK_EQ_INT(sso(s6, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
	close(s6);
}

static void blocked_checks(void)
{
	restricted_common();
	tcp_socket_checks();
	/* listen on an unbound TCP socket would auto-bind an ephemeral port on every address:
	 * trapped like bind (the supervisor refuses it; here the listener is gone: ENOSYS). */
	int s = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_EQ_INT(err_of(listen(s, 1)), ENOSYS);
	close(s);
}

static void proxy_checks(void)
{
	restricted_common();
	tcp_socket_checks();
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
	/* The setsockopt deny list is for restricted networks only. */
	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK_EQ_INT(sso(s6, 41, 57, srh, sizeof srh), 0);
	CHECK_EQ_INT(sso(s6, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), 0);
	close(s6);
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

static char trunc_file[64]; /* a file with content, made by main before the child runs */

static long long fsize(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* Below Landlock ABI 3 the filter closes truncation without a write fd (review F2): truncate(2),
 * and O_TRUNC opens with access mode O_RDONLY or 3 (upper-half garbage in the int flags does not
 * help), EACCES before any lookup; openat2 ENOSYS. Opens for writing with O_TRUNC stay (Landlock
 * checks WRITE_FILE for them), and so do plain reads. */
static void truncate_check(void)
{
	long long size = fsize(trunc_file);
	CHECK(size > 0);
	CHECK_EQ_INT(err_of(truncate("/nonexistent/nono", 0)), EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_open, trunc_file, O_RDONLY | O_TRUNC)), EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_open, trunc_file, O_ACCMODE | O_TRUNC)), EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_openat, AT_FDCWD, trunc_file, O_RDONLY | O_TRUNC)), EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_openat, AT_FDCWD, trunc_file,
				    0xffffffff00000000L | O_RDONLY | O_TRUNC | O_CLOEXEC)),
		     EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_openat, AT_FDCWD, trunc_file, O_ACCMODE | O_TRUNC | O_CREAT,
				    0600)),
		     EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_open_by_handle_at, -1, NULL, O_RDONLY | O_TRUNC)), EACCES);
	CHECK_EQ_INT(err_of(syscall(SYS_openat2, AT_FDCWD, trunc_file, NULL, 0)), ENOSYS);
	CHECK_EQ_INT(fsize(trunc_file), size);
	int fd = open(trunc_file, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	fd = openat(AT_FDCWD, trunc_file, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(fsize(trunc_file), size);
	fd = open(trunc_file, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(fsize(trunc_file), 0);
}

/* ABI >= 3: Landlock's business; the same calls reach the kernel (no Landlock domain here). */
static void truncate_allowed(void)
{
	CHECK_EQ_INT(err_of(truncate("/nonexistent/nono", 0)), ENOENT);
	CHECK(fsize(trunc_file) > 0);
	int fd = open(trunc_file, O_RDONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(fsize(trunc_file), 0);
	/* openat2(AT_FDCWD, path, NULL how) reaches the kernel: EFAULT, not ENOSYS. */
	CHECK_EQ_INT(err_of(syscall(SYS_openat2, AT_FDCWD, trunc_file, NULL, 24)), EFAULT);
}

static void make_trunc_file(void)
{
	int fd = open(trunc_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT((int)write(fd, "data\n", 5), 5);
	close(fd);
}

/* No listener (EBUSY under another supervisor, old kernel): blocked still holds, by the filter
 * alone — address syscalls are refused in BPF instead of trapped. */
static void nolistener_checks(void)
{
	always_checks();
	CHECK_EQ_INT(sock_err(AF_INET, SOCK_DGRAM, 0), EACCES);
	/* A TCP socket exists (as in an empty network namespace) and goes nowhere: connect, bind,
	 * listen (which would auto-bind) and sendto with an address fail with EACCES in BPF. */
	int t = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(t >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(err_of(connect(t, (struct sockaddr *)&sin, sizeof sin)), EACCES);
	CHECK_EQ_INT(err_of(bind(t, (struct sockaddr *)&sin, sizeof sin)), EACCES);
	CHECK_EQ_INT(err_of(listen(t, 1)), EACCES);
	CHECK_EQ_INT(err_of(sendto(t, "a", 1, 0, (struct sockaddr *)&sin, sizeof sin)), EACCES);
	close(t);
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
	struct nono_kernel busy = unit_kernel(7);
	busy.user_notif = -EBUSY; /* under another supervisor */
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e), 0);
	CHECK_EQ_INT(sc_prepare(c, 0, &busy, &p, &e), 0);
	CHECK(!p.notify && p.prog.len > 0 && p.report.n_downgrades == 1);
	CHECK(p.seccomp_variant & NONO_SC_NONOTIFY);
	CHECK(p.seccomp_variant & NONO_SC_NOMETA);
	expect_clean_exit(run_child(&p, nolistener_checks));
	free(p.prog.filter);
	/* A unix-socket grant cannot be honoured without a supervisor: refused… */
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, "/tmp", &e), 0);
	CHECK_EQ_INT(sc_prepare(c, 0, &busy, &p, &e), -EOPNOTSUPP);
	CHECK(strstr(e.message, "supervisor") != NULL);
	/* …or, best effort, dropped and reported. */
	CHECK_EQ_INT(sc_prepare(c, NONO_FLAG_BEST_EFFORT, &busy, &p, &e), 0);
	CHECK(!p.notify && p.report.downgraded);
	free(p.prog.filter);
	/* proxy-only: refused, or best effort → blocked (never open). */
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e), 0);
	CHECK_EQ_INT(sc_prepare(c, 0, &busy, &p, &e), -EOPNOTSUPP);
	CHECK_EQ_INT(sc_prepare(c, NONO_FLAG_BEST_EFFORT, &busy, &p, &e), 0);
	CHECK(!p.notify && p.report.downgraded);
	CHECK_EQ_INT(p.report.net_enforced, NONO_NET_BLOCKED);
	CHECK_EQ_INT(p.net, NONO_NET_BLOCKED);
	CHECK(p.seccomp_variant & NONO_SC_BLOCKED);
	CHECK(!(p.seccomp_variant & NONO_SC_PROXY));
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
		CHECK_EQ_INT(sc_prepare(c, NONO_FLAG_BEST_EFFORT, NULL, &p, &e), -EINVAL);
		CHECK(strstr(e.message, "stdin") != NULL);
		nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, NULL);
		CHECK_EQ_INT(sc_prepare(c, 0, NULL, &p, &e), -EINVAL);
		nono_caps_set_network(c, NONO_NET_ALLOWED, 0, NULL);
		CHECK_EQ_INT(sc_prepare(c, 0, NULL, &p, &e), 0);
		free(p.prog.filter);
		int sv[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		dup2(sv[0], 0);
		nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL);
		CHECK_EQ_INT(sc_prepare(c, 0, NULL, &p, &e), 0);
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
	CHECK(p.notify); /* metadata writes and watches (issue 11) */
	CHECK(p.seccomp_variant & NONO_SC_META);
	CHECK(p.prog.len > 0);
	expect_clean_exit(run_child(&p, allowed_checks));
	st = run_child(&p, i386_getpid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	/* ABI 7 here: truncate is Landlock's business. */
	snprintf(trunc_file, sizeof trunc_file, "/tmp/nono-test-seccomp-%d", (int)getpid());
	make_trunc_file();
	if (nono_landlock_abi() >= 3)
		expect_clean_exit(run_child(&p, truncate_allowed));
	free(p.prog.filter);

	CHECK_EQ_INT(nono_set_max_landlock_abi(2), 0);
	nono_net_mode modes[] = {NONO_NET_ALLOWED, NONO_NET_BLOCKED, NONO_NET_PROXY_ONLY};
	for (size_t i = 0; i < 3; i++) {
		p = make_plan(modes[i], modes[i] == NONO_NET_PROXY_ONLY ? 3128 : 0);
		make_trunc_file();
		expect_clean_exit(run_child(&p, truncate_check));
		free(p.prog.filter);
	}
	nono_set_max_landlock_abi(0);
	unlink(trunc_file);

	test_no_listener();
	test_stdio_sockets();
	UNIT_DONE();
}
