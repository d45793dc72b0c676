/* test_supervisor.c — the network supervisor with real seccomp filters in forked children.
 * The parent plays the exec side (pidfd_getfd of the listener, nono_supervisor_start) and runs
 * loopback listeners; each child reports errno values through its exit status or a pipe. */
#include "unit.h"
#include "supervisor_int.h"

#include <jansson.h>
#include <seccomp.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (void *)&ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	inet_pton(AF_INET, ip, &in->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in6 *in6 = (void *)&ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &in6->sin6_addr);
	return ss;
}

static void policy_tests(void)
{
	struct sockaddr_storage a;
	a = v4("127.0.0.1", 3128);
	CHECK(nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3128, false));
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3128, true));
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3129, false));
	CHECK(!nono_sup_is_proxy_addr(&a, 8, 3128, false)); /* short: the kernel would say EINVAL */
	a = v4("127.0.0.2", 3128);
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3128, false));
	a = v4("0.0.0.0", 3128); /* the kernel routes INADDR_ANY to the local host: still denied */
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3128, false));
	a = v4("169.254.169.254", 3128);
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in), 3128, false));
	/* The proxy's own address only: 127.0.0.1 (and its v4-mapped form), or [::1] when it
	 * listens there; never the other loopback address, which another program may hold. */
	a = v6("::1", 3128);
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	CHECK(nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, true));
	a = v6("::ffff:127.0.0.1", 3128);
	CHECK(nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, true));
	a = v6("::ffff:127.0.0.2", 3128);
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	a = v6("::", 3128); /* also the local host to the kernel */
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	a = v6("::127.0.0.1", 3128); /* v4-compatible, not mapped */
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	a = v6("64:ff9b::7f00:1", 3128); /* NAT64 of 127.0.0.1 */
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 3128, false));
	CHECK(!nono_sup_is_proxy_addr(&a, sizeof(struct sockaddr_in6), 0, false));
	uint16_t port = 0;
	a = v4("127.0.0.1", 8000);
	CHECK(nono_sup_is_loopback(&a, sizeof(struct sockaddr_in), &port) && port == 8000);

	/* The grant test the supervisor uses for unix sockets and writable directories. */
	CHECK(nono_path_within("/run/x.sock", "/run/x.sock", false));
	CHECK(!nono_path_within("/run/x.sock2", "/run/x.sock", false));
	CHECK(!nono_path_within("/run/x.sock/y", "/run/x.sock", false));
	CHECK(nono_path_within("/run/d/x.sock", "/run/d", true));
	CHECK(nono_path_within("/run/d", "/run/d", true));
	CHECK(!nono_path_within("/run/dd/x.sock", "/run/d", true));
	CHECK(nono_path_within("/anything", "/", true));
}

/* ---- a sandboxed child with the supervisor in the parent ---- */

struct sandbox {
	pid_t pid;
	struct nono_supervisor *sup;
	int res; /* read end: the child's int results */
};

typedef void (*child_fn)(int out, void *arg);

static void put(int fd, int v) { (void)!write(fd, &v, sizeof v); }

static int get(int fd)
{
	int v = -999;
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 20000) != 1 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
		return -999;
	return v;
}

/* Start `fn` in a child under the caps' filter; the parent supervises with `cfg`. */
static int sandbox_start_cfg(const nono_caps *caps, const struct nono_sup_config *cfg, child_fn fn,
			     void *arg, struct sandbox *sb)
{
	struct nono_plan p;
	memset(&p, 0, sizeof p);
	p.ruleset_fd = -1;
	nono_error e;
	if (nono_plan_prepare(caps, 0, &p, &e) < 0) {
		fprintf(stderr, "prepare: %s\n", e.message);
		return -1;
	}
	int hand[2], ack[2], res[2];
	if (pipe2(hand, O_CLOEXEC) || pipe2(ack, O_CLOEXEC) || pipe2(res, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		unsigned fl = p.seccomp_flags | (p.notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
		long lfd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, fl, &p.prog);
		int n = (int)lfd;
		(void)!write(hand[1], &n, sizeof n);
		char c;
		if (read(ack[0], &c, 1) != 1)
			_exit(3);
		if (lfd >= 0)
			close((int)lfd);
		fn(res[1], arg);
		_exit(0);
	}
	free(p.prog.filter);
	close(hand[1]);
	close(ack[0]);
	close(res[1]);
	int n = -1;
	if (read(hand[0], &n, sizeof n) != (ssize_t)sizeof n || n < 0)
		return -1;
	int pidfd = (int)syscall(__NR_pidfd_open, pid, 0);
	int lfd = (int)syscall(__NR_pidfd_getfd, pidfd, n, 0);
	close(pidfd);
	if (nono_supervisor_start(lfd, caps, cfg, &sb->sup, &e) < 0) {
		fprintf(stderr, "start: %s\n", e.message);
		return -1;
	}
	(void)!write(ack[1], "k", 1);
	close(ack[1]);
	close(hand[0]);
	sb->pid = pid;
	sb->res = res[0];
	return 0;
}

/* The same, supervised with the caps' own network mode and the ring `audit` (may be NULL). */
static int sandbox_start(const nono_caps *caps, nono_audit *audit, child_fn fn, void *arg,
			 struct sandbox *sb)
{
	struct nono_sup_config sc = {.ring = audit, .audit_fd = -1};
	sc.net = nono_caps_network(caps, &sc.proxy_port);
	sc.proxy_v6 = !strcmp(nono_caps_proxy_address(caps), "::1");
	return sandbox_start_cfg(caps, &sc, fn, arg, sb);
}

/* Connects the supervisor has handed to worker threads (still waiting). */
static int sup_workers(struct nono_supervisor *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->workers;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Wait (at most 20 s) until `n` connects wait in workers. */
static bool wait_workers(struct nono_supervisor *s, int n)
{
	for (int i = 0; i < 2000 && sup_workers(s) != n; i++)
		usleep(10000);
	return sup_workers(s) == n;
}

/* Wait (at most 20 s) until `fd` polls `events`. */
static bool wait_ready(int fd, short events)
{
	struct pollfd p = {fd, events, 0};
	return poll(&p, 1, 20000) == 1 && (p.revents & events);
}

static int sandbox_finish(struct sandbox *sb)
{
	int st = 0;
	waitpid(sb->pid, &st, 0);
	nono_supervisor_stop(sb->sup);
	close(sb->res);
	return st;
}

static int listener_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &l);
	return ntohs(a.sin_port);
}

static int tcp_listener(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&a, sizeof a);
	listen(s, 4096);
	return s;
}

static int err_of(int r) { return r < 0 ? errno : 0; }

static int try_connect(int family, const char *ip, int port, int flags)
{
	int s = socket(family, SOCK_STREAM | flags, 0);
	if (s < 0)
		return errno;
	struct sockaddr_storage a = family == AF_INET ? v4(ip, (uint16_t)port) : v6(ip, (uint16_t)port);
	int r = err_of(connect(s, (struct sockaddr *)&a,
			       family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6)));
	close(s);
	return r;
}

static int ports[2]; /* [0] the proxy, [1] another loopback listener */

static void proxy_child(int out, void *arg)
{
	(void)arg;
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0));
	put(out, try_connect(AF_INET6, "::1", ports[0], 0));
	put(out, try_connect(AF_INET6, "::ffff:127.0.0.1", ports[0], 0));
	int r = try_connect(AF_INET, "127.0.0.1", ports[0], SOCK_NONBLOCK);
	put(out, r == 0 || r == EINPROGRESS ? 0 : r);
	put(out, try_connect(AF_INET, "127.0.0.1", ports[1], 0));
	put(out, try_connect(AF_INET, "127.0.0.2", ports[0], 0));
	put(out, try_connect(AF_INET, "0.0.0.0", ports[0], 0));
	/* bind: no port granted; listen on an unbound socket would auto-bind INADDR_ANY. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage a = v4("127.0.0.1", 0);
	put(out, err_of(bind(s, (struct sockaddr *)&a, sizeof(struct sockaddr_in))));
	put(out, err_of(listen(s, 1)));
	close(s);
	/* connect on a bad fd and a non-socket: the kernel's own answers. */
	a = v4("127.0.0.1", (uint16_t)ports[0]);
	put(out, err_of(connect(9999, (struct sockaddr *)&a, sizeof(struct sockaddr_in))));
	put(out, err_of(connect(0, (struct sockaddr *)&a, sizeof(struct sockaddr_in))));
	/* a bad address pointer */
	s = socket(AF_INET, SOCK_STREAM, 0);
	put(out, err_of(connect(s, (struct sockaddr *)8, sizeof(struct sockaddr_in))));
	close(s);
	/* getaddrinfo/getifaddrs use netlink (bind + sendto to the kernel): must work. */
	struct ifaddrs *ifa = NULL;
	put(out, err_of(getifaddrs(&ifa)));
	if (ifa)
		freeifaddrs(ifa);
}

/* Sockets made BEFORE the filter (as under nono_apply) carrying options the filter would now
 * refuse: the supervisor reads them back and refuses the proxy connect (review F10/F11). */
static void inherited_child(int out, void *arg)
{
	const int *fds = arg;
	struct sockaddr_storage a4 = v4("127.0.0.1", (uint16_t)ports[0]);
	struct sockaddr_storage a6 = v6("::ffff:127.0.0.1", (uint16_t)ports[0]);
	put(out, err_of(connect(fds[0], (struct sockaddr *)&a4, sizeof(struct sockaddr_in))));
	put(out, err_of(connect(fds[1], (struct sockaddr *)&a6, sizeof(struct sockaddr_in6))));
	put(out, err_of(connect(fds[2], (struct sockaddr *)&a6, sizeof(struct sockaddr_in6))));
	/* …and the filter refuses setting the option now: EPERM, then the connect goes through. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	put(out, err_of(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3)));
	put(out, err_of(connect(s, (struct sockaddr *)&a4, sizeof(struct sockaddr_in))));
	close(s);
}

static void test_inherited_options(void)
{
	static const unsigned char srh[8 + 32] = {
		0, 4, 4, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
	};
	int l0 = tcp_listener();
	ports[0] = listener_port(l0);
	int fds[3];
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ_INT(setsockopt(fds[0], SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), 0);
	fds[1] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ_INT(setsockopt(fds[1], IPPROTO_IPV6, 57 /* IPV6_RTHDR */, srh, sizeof srh), 0);
	fds[2] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0); /* control: no options */
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, inherited_child, fds, &sb), 0);
	CHECK_EQ_INT(get(sb.res), EACCES); /* bound to a device */
	CHECK_EQ_INT(get(sb.res), EACCES); /* routing header */
	CHECK_EQ_INT(get(sb.res), 0);      /* plain socket, same address */
	CHECK_EQ_INT(get(sb.res), EPERM);  /* setsockopt under the filter */
	CHECK_EQ_INT(get(sb.res), 0);
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	nono_caps_free(c);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(l0);
}

/* Another program's IPv6-only listener on [::1] at the proxy's port (review 2026-12-04 F2). */
static int v6_listener(int port)
{
	int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	a.sin6_addr = in6addr_loopback;
	if (s < 0 || setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static void test_proxy_only(void)
{
	int l0 = tcp_listener(), l1 = tcp_listener();
	ports[0] = listener_port(l0);
	ports[1] = listener_port(l1);
	int l6 = v6_listener(ports[0]);
	CHECK(l6 >= 0);
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	nono_audit *au = nono_audit_new(64);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, au, proxy_child, NULL, &sb), 0);
	CHECK_EQ_INT(get(sb.res), 0);            /* 127.0.0.1:proxy */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* [::1]:proxy: another program's listener */
	CHECK_EQ_INT(get(sb.res), 0);            /* [::ffff:127.0.0.1]:proxy */
	CHECK_EQ_INT(get(sb.res), 0);            /* nonblocking */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* another loopback port */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* 127.0.0.2 */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* 0.0.0.0 */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* bind */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* listen, unbound */
	CHECK_EQ_INT(get(sb.res), EBADF);
	CHECK_EQ_INT(get(sb.res), ENOTSOCK);
	CHECK_EQ_INT(get(sb.res), EFAULT);
	CHECK_EQ_INT(get(sb.res), 0);            /* getifaddrs */
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Audit: the first denial is the other port. */
	nono_audit_event ev[64];
	size_t n = nono_audit_drain(au, ev, 64);
	CHECK(n >= 5);
	bool saw = false;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].port == ports[1]) {
			saw = true;
			CHECK_STR(ev[i].source, "supervisor");
			CHECK_STR(ev[i].mode, "connect");
			CHECK_STR(ev[i].decision, "deny");
			CHECK_STR(ev[i].family, "inet");
			CHECK_STR(ev[i].target, "127.0.0.1");
			CHECK_EQ_INT(ev[i].status, EACCES);
			CHECK(ev[i].timestamp_unix_ms > 0);
			CHECK(ev[i].reason[0] != '\0');
		}
	}
	CHECK(saw);
	nono_audit_free(au);
	nono_caps_free(c);
	close(l0);
	close(l1);
	close(l6);
}

static void proxy_v6_child(int out, void *arg)
{
	(void)arg;
	put(out, try_connect(AF_INET6, "::1", ports[0], 0));
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0));
	put(out, try_connect(AF_INET6, "::ffff:127.0.0.1", ports[0], 0));
}

/* A proxy on [::1]: that address alone is reachable, not 127.0.0.1 on the same port. */
static void test_proxy_only_v6(void)
{
	int l0 = tcp_listener();
	ports[0] = listener_port(l0);
	int l6 = v6_listener(ports[0]);
	CHECK(l6 >= 0);
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	CHECK_EQ_INT(nono_caps_set_proxy_address(c, "::1", NULL), 0);
	CHECK_EQ_INT(nono_caps_set_proxy_address(c, "127.0.0.2", NULL), -EINVAL);
	CHECK_STR(nono_caps_proxy_address(c), "::1");
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, proxy_v6_child, NULL, &sb), 0);
	CHECK_EQ_INT(get(sb.res), 0);      /* [::1]:proxy */
	CHECK_EQ_INT(get(sb.res), EACCES); /* 127.0.0.1:proxy: another program's */
	CHECK_EQ_INT(get(sb.res), EACCES); /* its v4-mapped form */
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	nono_caps_free(c);
	close(l0);
	close(l6);
}

/* ---- unix sockets and bind under blocked ---- */

static char dir_granted[64], dir_other[64], dir_write[64];
static char abstract_name[64]; /* per test process: the abstract namespace is shared */

static int unix_listener(const char *path, bool abstract)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t l;
	if (abstract) {
		a.sun_path[0] = '\0';
		snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s", path);
		l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
	} else {
		snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
		l = sizeof a;
	}
	if (bind(s, (struct sockaddr *)&a, l) < 0 || listen(s, 16) < 0)
		return -1;
	return s;
}

static int unix_connect(const char *path, bool abstract)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		return errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t l;
	if (abstract) {
		snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s", path);
		l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
	} else {
		snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
		l = sizeof a;
	}
	int r = err_of(connect(s, (struct sockaddr *)&a, l));
	close(s);
	return r;
}

static void unix_child(int out, void *arg)
{
	(void)arg;
	char p[128];
	snprintf(p, sizeof p, "%s/ok.sock", dir_granted);
	put(out, unix_connect(p, false));
	snprintf(p, sizeof p, "%s/no.sock", dir_other);
	put(out, unix_connect(p, false));
	/* a symlink inside the granted dir pointing outside: resolved, so denied */
	snprintf(p, sizeof p, "%s/link.sock", dir_granted);
	put(out, unix_connect(p, false));
	put(out, unix_connect(abstract_name, true));
	/* relative to the cwd */
	put(out, chdir(dir_granted) == 0 ? unix_connect("ok.sock", false) : -1);
	put(out, unix_connect("../nothing/there.sock", false));
	/* bind a pathname socket in the writable grant, listen on it; abstract bind refused */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s/mine.sock", dir_write);
	umask(0177);
	put(out, err_of(bind(s, (struct sockaddr *)&a, sizeof a)));
	put(out, err_of(listen(s, 4)));
	close(s);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof a.sun_path, "%s/theirs.sock", dir_other);
	put(out, err_of(bind(s, (struct sockaddr *)&a, sizeof a)));
	close(s);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(a.sun_path, 0, sizeof a.sun_path);
	snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "nono-abs-bind");
	put(out, err_of(bind(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 14))));
	/* listen on an unbound unix socket would autobind an abstract name */
	put(out, err_of(listen(s, 1)));
	close(s);
	/* loopback TCP: no IP sockets at all under blocked */
	put(out, try_connect(AF_INET, "127.0.0.1", 9, 0));
	/* an over-long, unterminated unix address: EINVAL, like the kernel (and no overflow) */
	struct sockaddr_storage big;
	memset(&big, 'A', sizeof big);
	big.ss_family = AF_UNIX;
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	put(out, err_of(connect(s, (struct sockaddr *)&big, sizeof big)));
	put(out, err_of(bind(s, (struct sockaddr *)&big, sizeof big)));
	put(out, err_of(connect(s, (struct sockaddr *)&big, sizeof(struct sockaddr_un))));
	close(s);
}

static void test_unix_blocked(void)
{
	snprintf(dir_granted, sizeof dir_granted, "/tmp/nono-ut-g-%d", getpid());
	snprintf(dir_other, sizeof dir_other, "/tmp/nono-ut-o-%d", getpid());
	snprintf(dir_write, sizeof dir_write, "/tmp/nono-ut-w-%d", getpid());
	snprintf(abstract_name, sizeof abstract_name, "nono-test-abstract-%d", getpid());
	mkdir(dir_granted, 0700);
	mkdir(dir_other, 0700);
	mkdir(dir_write, 0700);
	char p[128], q[128];
	snprintf(p, sizeof p, "%s/ok.sock", dir_granted);
	int l1 = unix_listener(p, false);
	snprintf(q, sizeof q, "%s/no.sock", dir_other);
	int l2 = unix_listener(q, false);
	char lk[128];
	snprintf(lk, sizeof lk, "%s/link.sock", dir_granted);
	CHECK_EQ_INT(symlink(q, lk), 0);
	int l3 = unix_listener(abstract_name, true);
	CHECK(l1 >= 0 && l2 >= 0 && l3 >= 0);
	/* Unsandboxed, every one of these connects. */
	CHECK_EQ_INT(unix_connect(q, false), 0);
	CHECK_EQ_INT(unix_connect(lk, false), 0);
	CHECK_EQ_INT(unix_connect(abstract_name, true), 0);

	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, dir_granted, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, dir_write, NONO_ACCESS_READ_WRITE, &e), 0);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, unix_child, NULL, &sb), 0);
	CHECK_EQ_INT(get(sb.res), 0);            /* granted dir */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* not granted */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* symlink out of the grant */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* abstract */
	CHECK_EQ_INT(get(sb.res), 0);            /* relative, granted */
	CHECK_EQ_INT(get(sb.res), ENOENT);       /* relative, missing */
	CHECK_EQ_INT(get(sb.res), 0);            /* bind in writable grant */
	CHECK_EQ_INT(get(sb.res), 0);            /* listen on it */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* bind outside */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* abstract bind */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* listen unbound */
	CHECK_EQ_INT(get(sb.res), EACCES);       /* TCP socket() */
	CHECK_EQ_INT(get(sb.res), EINVAL);       /* connect, addrlen 128 */
	CHECK_EQ_INT(get(sb.res), EINVAL);       /* bind, addrlen 128 */
	CHECK_EQ_INT(get(sb.res), ENOENT);       /* 108 'A's, unterminated: not granted, missing */
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct stat sst;
	snprintf(p, sizeof p, "%s/mine.sock", dir_write);
	CHECK(stat(p, &sst) == 0 && S_ISSOCK(sst.st_mode));
	CHECK_EQ_INT(sst.st_mode & 0777, 0600); /* the child's umask 0177, not ours */
	unlink(p);
	snprintf(p, sizeof p, "%s/ok.sock", dir_granted);
	unlink(p);
	unlink(q);
	unlink(lk);
	rmdir(dir_granted);
	rmdir(dir_other);
	rmdir(dir_write);
	close(l1);
	close(l2);
	close(l3);
	nono_caps_free(c);
}

/* ---- supervisor death: ENOSYS ---- */

static int death_gate[2];

static void death_child(int out, void *arg)
{
	(void)arg;
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0));
	char c;
	(void)!read(death_gate[0], &c, 1); /* parent stops the supervisor */
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0));
}

static void test_death(void)
{
	int l0 = tcp_listener();
	ports[0] = listener_port(l0);
	CHECK_EQ_INT(pipe(death_gate), 0);
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, death_child, NULL, &sb), 0);
	CHECK_EQ_INT(get(sb.res), 0);
	nono_supervisor_stop(sb.sup);
	sb.sup = NULL;
	(void)!write(death_gate[1], "g", 1);
	CHECK_EQ_INT(get(sb.res), ENOSYS);
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st));
	close(death_gate[0]);
	close(death_gate[1]);
	close(l0);
	nono_caps_free(c);
}

/* ---- in-process apply path: helper process ---- */

static void test_helper(void)
{
	int l0 = tcp_listener(), l1 = tcp_listener();
	ports[0] = listener_port(l0);
	ports[1] = listener_port(l1);
	int res[2];
	CHECK_EQ_INT(pipe(res), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		nono_caps *c = nono_caps_new();
		nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL);
		struct nono_plan p;
		memset(&p, 0, sizeof p);
		nono_error e;
		if (nono_plan_prepare(c, 0, &p, &e) < 0)
			_exit(10);
		struct nono_sup_helper handle;
		struct nono_sup_config sc = {.net = NONO_NET_PROXY_ONLY, .proxy_port = (uint16_t)ports[0],
					     .audit_fd = -1};
		if (nono_supervisor_helper_fork(c, &sc, &handle, &e) < 0)
			_exit(11);
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		long lfd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
				   p.seccomp_flags | SECCOMP_FILTER_FLAG_NEW_LISTENER, &p.prog);
		if (lfd < 0)
			_exit(12);
		if (nono_supervisor_helper_handoff(&handle, (int)lfd, &e) < 0)
			_exit(13);
		/* Our copies are gone: only the helper holds the listener. */
		put(res[1], fcntl((int)lfd, F_GETFD) < 0 ? 0 : -1);
		put(res[1], try_connect(AF_INET, "127.0.0.1", ports[0], 0));
		put(res[1], try_connect(AF_INET, "127.0.0.1", ports[1], 0));
		_exit(0);
	}
	close(res[1]);
	CHECK_EQ_INT(get(res[0]), 0);
	CHECK_EQ_INT(get(res[0]), 0);
	CHECK_EQ_INT(get(res[0]), EACCES);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(res[0]);
	close(l0);
	close(l1);
}

/* ---- the slow path: a blocking connect that must wait (full backlog) goes to a worker ---- */

static char slow_path[64];
static int slow_gate[2]; /* the parent lets slow_child's main thread go */

static void *slow_connect(void *arg)
{
	put(*(int *)arg, unix_connect(slow_path, false)); /* finds the backlog full: waits */
	return NULL;
}

static void slow_child(int out, void *arg)
{
	(void)arg;
	pthread_t t;
	if (pthread_create(&t, NULL, slow_connect, &out) != 0)
		_exit(4);
	char c;
	if (read(slow_gate[0], &c, 1) != 1)
		_exit(5);
	/* The other thread's connect waits in a supervisor worker: this one is answered anyway. */
	put(out, unix_connect("nono-slow-abstract", true));
	pthread_join(t, NULL);
	/* a nonblocking connect to the same full backlog: EAGAIN at once, as the kernel says */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", slow_path);
	put(out, err_of(connect(s, (struct sockaddr *)&a, sizeof a)));
	close(s);
}

static void test_slow_path(void)
{
	snprintf(slow_path, sizeof slow_path, "/tmp/nono-ut-slow-%d.sock", getpid());
	unlink(slow_path);
	CHECK_EQ_INT(pipe(slow_gate), 0);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", slow_path);
	CHECK_EQ_INT(bind(l, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ_INT(listen(l, 0), 0);
	/* Fill the backlog: with backlog 0 one connection fits, the next would wait. */
	int f1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int f2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_EQ_INT(err_of(connect(f1, (struct sockaddr *)&a, sizeof a)), 0);
	CHECK_EQ_INT(err_of(connect(f2, (struct sockaddr *)&a, sizeof a)), EAGAIN);
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, NULL), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, slow_path, &e), 0);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, slow_child, NULL, &sb), 0);
	/* The child's blocking connect is handed to a worker… */
	CHECK(wait_workers(sb.sup, 1));
	/* …and while it waits, the supervisor answers the child's other requests. */
	CHECK_EQ_INT(write(slow_gate[1], "g", 1), 1);
	CHECK_EQ_INT(get(sb.res), EACCES);
	CHECK_EQ_INT(sup_workers(sb.sup), 1); /* nothing made room yet */
	/* Room in the backlog: the waiting connect completes. */
	int x = accept(l, NULL, NULL);
	CHECK(x >= 0);
	if (x >= 0)
		close(x);
	CHECK_EQ_INT(get(sb.res), 0);
	CHECK_EQ_INT(get(sb.res), EAGAIN); /* the child's own connection fills the backlog now */
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(f1);
	close(f2);

	/* A child killed while its connect waits in a worker: stop() still returns. */
	while ((x = accept(l, NULL, NULL)) >= 0)
		close(x);
	f1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_EQ_INT(err_of(connect(f1, (struct sockaddr *)&a, sizeof a)), 0);
	CHECK_EQ_INT(sandbox_start(c, NULL, slow_child, NULL, &sb), 0);
	CHECK(wait_workers(sb.sup, 1));
	kill(sb.pid, SIGKILL);
	st = sandbox_finish(&sb);
	CHECK(WIFSIGNALED(st));
	close(f1);
	close(l);
	close(slow_gate[0]);
	close(slow_gate[1]);
	unlink(slow_path);
	nono_caps_free(c);
}

/* ---- the TCP slow path: a SYN dropped by a full accept queue (retransmitted after ~1 s) ---- */

static void tcp_slow_child(int out, void *arg)
{
	(void)arg;
	put(out, 1);
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0));
	/* With the child's own send timeout, a blocking connect gives up like the kernel's:
	 * EINPROGRESS after the timeout. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {0, 150000};
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_storage a = v4("127.0.0.1", (uint16_t)ports[0]);
	put(out, err_of(connect(s, (struct sockaddr *)&a, sizeof(struct sockaddr_in))));
	close(s);
}

static void test_tcp_slow_path(void)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 0);
	ports[0] = listener_port(l);
	struct sockaddr_storage t = v4("127.0.0.1", (uint16_t)ports[0]);
	int f1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(f1, (struct sockaddr *)&t, sizeof(struct sockaddr_in));
	CHECK(wait_ready(l, POLLIN)); /* f1 sits in the accept queue: it is full */
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	struct sandbox sb;
	CHECK_EQ_INT(sandbox_start(c, NULL, tcp_slow_child, NULL, &sb), 0);
	CHECK_EQ_INT(get(sb.res), 1);
	CHECK(wait_workers(sb.sup, 1)); /* the child's SYN was dropped: a worker waits for it */
	int x = accept(l, NULL, NULL); /* room again: the retransmitted SYN completes */
	CHECK(x >= 0);
	CHECK_EQ_INT(get(sb.res), 0);
	/* queue full again (the child's own connection sits in it) */
	CHECK_EQ_INT(get(sb.res), EINPROGRESS);
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (x >= 0)
		close(x);
	close(f1);
	close(l);
	nono_caps_free(c);
}

/* ---- a request outside the table is denied (EPERM), and allows are audited on request ---- */

static void test_unknown_request(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(getppid), 0);
	seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);
	int fds[2], res[2], go[2];
	CHECK_EQ_INT(pipe(fds), 0);
	CHECK_EQ_INT(pipe(go), 0);
	CHECK_EQ_INT(pipe(res), 0);
	int l0 = tcp_listener();
	ports[0] = listener_port(l0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		int lfd = seccomp_notify_fd(ctx);
		(void)lfd;
		if (seccomp_load(ctx) < 0)
			_exit(3);
		lfd = seccomp_notify_fd(ctx);
		(void)!write(fds[1], &lfd, sizeof lfd);
		char c;
		(void)!read(go[0], &c, 1);
		put(res[1], err_of((int)syscall(SYS_getppid)));
		put(res[1], try_connect(AF_INET, "127.0.0.1", ports[0], 0));
		_exit(0);
	}
	int n = -1;
	CHECK_EQ_INT(read(fds[0], &n, sizeof n), (int)sizeof n);
	int pidfd = (int)syscall(__NR_pidfd_open, pid, 0);
	int lfd = (int)syscall(__NR_pidfd_getfd, pidfd, n, 0);
	close(pidfd);
	nono_caps *c = nono_caps_new();
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL);
	nono_audit *au = nono_audit_new(16);
	struct nono_supervisor *sup;
	nono_error e;
	struct nono_sup_config sc = {.net = NONO_NET_PROXY_ONLY, .proxy_port = (uint16_t)ports[0],
				     .ring = au, .audit_fd = -1, .audit_allowed = true};
	CHECK_EQ_INT(nono_supervisor_start(lfd, c, &sc, &sup, &e), 0);
	(void)!write(go[1], "g", 1);
	CHECK_EQ_INT(get(res[0]), EPERM);
	CHECK_EQ_INT(get(res[0]), 0);
	int st;
	waitpid(pid, &st, 0);
	nono_supervisor_stop(sup);
	nono_audit_event ev[16];
	size_t k = nono_audit_drain(au, ev, 16);
	CHECK_EQ_INT(k, 2);
	if (k == 2) {
		CHECK_STR(ev[0].decision, "deny");
		CHECK_STR(ev[0].mode, "unknown");
		CHECK_EQ_INT(ev[0].status, EPERM);
		CHECK_STR(ev[1].decision, "allow");
		CHECK_STR(ev[1].mode, "connect");
		CHECK_EQ_INT(ev[1].port, ports[0]);
	}
	nono_audit_free(au);
	nono_caps_free(c);
	seccomp_release(ctx);
	close(l0);
	close(fds[0]);
	close(fds[1]);
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
}

/* ---- the audit fd: one JSON line per denial; allowed calls only when asked ---- */

static void audit_child(int out, void *arg)
{
	(void)arg;
	put(out, try_connect(AF_INET, "127.0.0.1", ports[0], 0)); /* the proxy: allowed */
	put(out, try_connect(AF_INET, "127.0.0.1", ports[1], 0));
	put(out, try_connect(AF_INET, "127.0.0.2", ports[0], 0));
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage a = v4("127.0.0.1", 0);
	put(out, err_of(bind(s, (struct sockaddr *)&a, sizeof(struct sockaddr_in))));
	close(s);
}

/* Run audit_child supervised with `audit_fd`; returns the supervisor's failed-write count. */
static uint64_t run_audited(const nono_caps *c, int audit_fd, bool allowed, nono_audit *ring)
{
	struct nono_sup_config sc = {.net = NONO_NET_PROXY_ONLY, .proxy_port = (uint16_t)ports[0],
				     .ring = ring, .audit_fd = audit_fd, .audit_allowed = allowed};
	struct sandbox sb;
	if (sandbox_start_cfg(c, &sc, audit_child, NULL, &sb) < 0) {
		CHECK(!"sandbox_start");
		return UINT64_MAX;
	}
	CHECK_EQ_INT(get(sb.res), 0);
	CHECK_EQ_INT(get(sb.res), EACCES);
	CHECK_EQ_INT(get(sb.res), EACCES);
	CHECK_EQ_INT(get(sb.res), EACCES);
	/* Every answer above was sent after its line was written. */
	uint64_t errors = nono_supervisor_audit_write_errors(sb.sup);
	int st = sandbox_finish(&sb);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return errors;
}

static void check_audit_lines(const char *buf, size_t len, bool allowed, nono_audit *ring)
{
	nono_audit_event ev[16];
	size_t k = nono_audit_drain(ring, ev, 16);
	CHECK_EQ_INT(k, allowed ? 4 : 3);
	CHECK(len > 0 && buf[len - 1] == '\n'); /* no partial last line */
	size_t i = 0;
	for (const char *line = buf; line < buf + len; i++) {
		const char *nl = memchr(line, '\n', (size_t)(buf + len - line));
		size_t n = nl ? (size_t)(nl - line) + 1 : (size_t)(buf + len - line);
		json_error_t jerr;
		json_t *j = json_loadb(line, n, 0, &jerr);
		CHECK(j != NULL); /* one valid JSON object a line */
		const char *src = "", *decision = "", *mode = "";
		int port = -1, status = -1;
		CHECK(j && json_unpack(j, "{s:s, s:s, s:s, s:i, s:i}", "source", &src, "decision",
				       &decision, "mode", &mode, "port", &port, "status", &status) == 0);
		CHECK_STR(src, "supervisor");
		size_t call = allowed ? i : i + 1; /* audit_child's calls: connect ×3, bind */
		bool allow = call == 0;
		CHECK_STR(decision, allow ? "allow" : "deny");
		CHECK_STR(mode, call == 3 ? "bind" : "connect");
		CHECK_EQ_INT(status, allow ? 0 : EACCES);
		if (i < k) { /* the very line nono_audit_event_format gives the ring's event */
			char want[NONO_AUDIT_LINE_MAX];
			int w = nono_audit_event_format(&ev[i], want, sizeof want);
			CHECK(w > 0 && (size_t)w == n && memcmp(want, line, n) == 0);
			CHECK_EQ_INT(port, ev[i].port);
		}
		json_decref(j);
		line += n;
	}
	CHECK_EQ_INT(i, k);
}

static void test_audit_fd(void)
{
	int l0 = tcp_listener(), l1 = tcp_listener();
	ports[0] = listener_port(l0);
	ports[1] = listener_port(l1);
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)ports[0], NULL), 0);
	for (int allowed = 0; allowed < 2; allowed++) {
		char path[] = "/tmp/nono-ut-audit-XXXXXX";
		int fd = mkstemp(path);
		CHECK(fd >= 0);
		unlink(path);
		CHECK_EQ_INT(fcntl(fd, F_SETFL, O_APPEND), 0); /* as nono_exec_opts.audit_fd asks */
		nono_audit *ring = nono_audit_new(16);
		CHECK_EQ_INT(run_audited(c, fd, allowed, ring), 0);
		char buf[8192];
		ssize_t n = pread(fd, buf, sizeof buf, 0);
		CHECK(n > 0 && n < (ssize_t)sizeof buf);
		check_audit_lines(buf, n > 0 ? (size_t)n : 0, allowed, ring);
		nono_audit_free(ring);
		close(fd);
	}
	/* A log that cannot be written (read-only fd): each lost line is counted. */
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_EQ_INT(run_audited(c, ro, false, NULL), 3);
	close(ro);
	nono_caps_free(c);
	close(l0);
	close(l1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	policy_tests();
	test_proxy_only();
	test_proxy_only_v6();
	test_inherited_options();
	test_unix_blocked();
	test_death();
	test_helper();
	test_slow_path();
	test_tcp_slow_path();
	test_unknown_request();
	test_audit_fd();
	UNIT_DONE();
}
