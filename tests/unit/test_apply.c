/* test_apply.c — nono_apply / nono_plan_* for real: each case forks a child that sandboxes itself
 * and asserts the errno the kernel returns. The capped-ABI cases re-execute this binary with
 * NONO_MAX_LANDLOCK_ABI set, so the environment path of the knob is what is tested. */
#include "internal.h"
#include "uapi.h"
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRUNC_BIT (1ULL << 14)
#define IOCTL_DEV_BIT (1ULL << 15)

static char base[256];
static char self_exe[4096];

/* ---- child-side checks (run after nono_apply; report through stderr and the exit code) ---- */
static int child_fail;
#define CCHECK(cond)                                                                          \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			child_fail++;                                                         \
			fprintf(stderr, "child %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                       \
		}                                                                             \
	} while (0)

static bool prctl_nnp_set(void)
{
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
}

static void pathf(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", base, rel);
}

/* 0 or errno of open(base/rel, flags). */
static int try_open(const char *rel, int flags)
{
	char p[512];
	pathf(p, sizeof p, rel);
	int fd = open(p, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int try_truncate(const char *rel)
{
	char p[512];
	pathf(p, sizeof p, rel);
	return truncate(p, 0) == 0 ? 0 : errno;
}

/* 0 or errno of ftruncate(2) on an fd of base/rel opened O_WRONLY. */
static int try_ftruncate(const char *rel)
{
	char p[512];
	pathf(p, sizeof p, rel);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int r = ftruncate(fd, 0) == 0 ? 0 : errno;
	close(fd);
	return r;
}

/* Size of base/rel, -errno if it cannot be stat'ed. */
static long long file_size(const char *rel)
{
	char p[512];
	pathf(p, sizeof p, rel);
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_size : -(long long)errno;
}

/* The Landlock ABI this kernel offers (0 without Landlock). */
static int kernel_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v > 0 ? (int)v : 0;
}

static int try_rename(const char *from, const char *to)
{
	char a[512], b[512];
	pathf(a, sizeof a, from);
	pathf(b, sizeof b, to);
	return rename(a, b) == 0 ? 0 : errno;
}

static void write_file(const char *rel, const char *content)
{
	char p[512];
	pathf(p, sizeof p, rel);
	FILE *f = fopen(p, "we");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static void mkd(const char *rel)
{
	char p[512];
	pathf(p, sizeof p, rel);
	mkdir(p, 0755);
}

/* Standard policy: ro/ read, rw/ read-write, files/a alone (read). */
static nono_caps *standard_caps(void)
{
	nono_caps *c = nono_caps_new();
	char p[512];
	nono_error e;
	pathf(p, sizeof p, "ro");
	if (nono_caps_allow_path(c, p, NONO_ACCESS_READ, &e) < 0)
		fprintf(stderr, "allow ro: %s\n", e.message);
	pathf(p, sizeof p, "rw");
	if (nono_caps_allow_path(c, p, NONO_ACCESS_READ_WRITE, &e) < 0)
		fprintf(stderr, "allow rw: %s\n", e.message);
	pathf(p, sizeof p, "files/a");
	if (nono_caps_allow_file(c, p, NONO_ACCESS_READ, &e) < 0)
		fprintf(stderr, "allow file: %s\n", e.message);
	return c;
}

static void setup_tree(void)
{
	snprintf(base, sizeof base, "/tmp/nono-test-apply-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		exit(2);
	}
	mkd("ro");
	mkd("rw");
	mkd("rw/sub");
	mkd("files");
	mkd("outside");
	write_file("ro/r.txt", "read-only data\n");
	write_file("rw/w.txt", "writable data\n");
	write_file("rw/mv.txt", "move me\n");
	write_file("files/a", "file a\n");
	write_file("files/b", "file b\n");
	write_file("outside/secret", "secret\n");
}

/* Run fn in a forked child; returns its exit status (or 128+signal). */
static int in_child(int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		child_fail = 0;
		int r = fn();
		fflush(NULL);
		_exit(r); /* no atexit handlers (LeakSanitizer would walk /proc, now denied) */
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Apply and check the filesystem behaviour every ABI shares. Returns failure count. */
static int apply_and_check_common(nono_report *rep)
{
	nono_caps *c = standard_caps();
	nono_error e = { 0 };
	int r = nono_apply(c, 0, rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: nono_apply: %d %s\n", r, e.message);
		return 100;
	}
	CCHECK(try_open("outside/secret", O_RDONLY) == EACCES);
	CCHECK(try_open("outside/new", O_WRONLY | O_CREAT) == EACCES);
	CCHECK(try_open("ro/r.txt", O_RDONLY) == 0);
	CCHECK(try_open("ro", O_RDONLY | O_DIRECTORY) == 0);
	CCHECK(try_open("ro/r.txt", O_WRONLY) == EACCES);
	CCHECK(try_open("ro/new.txt", O_WRONLY | O_CREAT) == EACCES);
	CCHECK(try_open("rw/w.txt", O_RDWR) == 0);
	CCHECK(try_open("rw/created.txt", O_WRONLY | O_CREAT) == 0);
	/* single-file grant: the file yes, its sibling and its directory no */
	CCHECK(try_open("files/a", O_RDONLY) == 0);
	CCHECK(try_open("files/b", O_RDONLY) == EACCES);
	CCHECK(try_open("files", O_RDONLY | O_DIRECTORY) == EACCES);
	CCHECK(try_open("files/a", O_WRONLY) == EACCES);
	/* the parent of every grant is denied too */
	CCHECK(try_open("", O_RDONLY | O_DIRECTORY) == EACCES);
	CCHECK(rep->no_new_privs);
	CCHECK(prctl_nnp_set());
	return child_fail;
}

/* Truncation after apply at effective ABI `abi` (main rewrites ro/r.txt before each case).
 * - ABI >= 3: Landlock handles TRUNCATE: a read-only grant refuses truncate(2); a read-write
 *   grant allows it.
 * - ABI < 3 with the filter: seccomp.c refuses truncate(2) everywhere, read-write grants included
 *   (EACCES before any lookup), and open(O_RDONLY|O_TRUNC), which Landlock checks as a plain
 *   read (review F2): TRUNCATE is enforced; without the filter nothing can close it: unenforced.
 * - every ABI: a read-write grant allows ftruncate on a write fd and open(O_WRONLY|O_TRUNC).
 * - the report tells the truth both ways: TRUNCATE absent from fs_unenforced means no
 *   truncation path is open on a read-only grant; present means one is. */
static void check_truncation(const nono_report *rep, int abi)
{
	const long long ro_size = (long long)strlen("read-only data\n");
	bool unenforced = rep->fs_unenforced & TRUNC_BIT;
	CCHECK(file_size("ro/r.txt") == ro_size);
	if (abi >= 3) {
		CCHECK(!unenforced);
		CCHECK(try_truncate("ro/r.txt") == EACCES);
		CCHECK(try_truncate("rw/w.txt") == 0);
	} else if (rep->seccomp) {
		CCHECK(!unenforced);
		CCHECK(try_truncate("ro/r.txt") == EACCES);
		CCHECK(try_truncate("rw/w.txt") == EACCES);
		CCHECK(file_size("rw/w.txt") > 0);
	} else {
		CCHECK(unenforced);
	}
	CCHECK(file_size("ro/r.txt") == ro_size);
	int t = try_open("ro/r.txt", O_RDONLY | O_TRUNC);
	if (unenforced) {
		CCHECK(t == 0);
		CCHECK(file_size("ro/r.txt") == 0);
	} else {
		CCHECK(t == EACCES);
		CCHECK(file_size("ro/r.txt") == ro_size);
	}
	write_file("rw/w.txt", "writable data\n");
	CCHECK(try_ftruncate("rw/w.txt") == 0);
	CCHECK(file_size("rw/w.txt") == 0);
	write_file("rw/w.txt", "writable data\n");
	CCHECK(try_open("rw/w.txt", O_WRONLY | O_TRUNC) == 0);
	CCHECK(file_size("rw/w.txt") == 0);
	write_file("rw/w.txt", "writable data\n");
}

/* ---- cases ---- */

static int case_native(void)
{
	nono_report rep;
	int f = apply_and_check_common(&rep);
	if (f >= 100)
		return f;
	int kabi = kernel_abi();
	int want = kabi > 7 ? 7 : kabi;
	CCHECK(rep.landlock_abi == want);
	CCHECK(rep.seccomp);
	CCHECK(rep.fs_handled == 0xffff || want < 5);
	CCHECK(rep.fs_unenforced == 0 || want < 5);
	CCHECK(!!(rep.fs_unenforced & IOCTL_DEV_BIT) == (want < 5));
	CCHECK(rep.landlock_scopes == (want >= 6));
	check_truncation(&rep, want);
	/* ABI >= 2: renaming into another directory inside a rw grant works (REFER granted);
	 * ABI 1 refuses every reparenting rename */
	CCHECK(try_rename("rw/mv.txt", "rw/sub/mv.txt") == (want >= 2 ? 0 : EXDEV));
	CCHECK(rep.net_requested == NONO_NET_ALLOWED && rep.net_enforced == NONO_NET_ALLOWED);
	CCHECK(!rep.downgraded);
	CCHECK(rep.landlock_abi_kernel == kabi);
	CCHECK(rep.landlock_cap[0] == '\0'); /* no cap */
	return child_fail;
}

/* Run under NONO_MAX_LANDLOCK_ABI (re-exec'd): check what that ABI can and cannot do. The
 * effective ABI is min(cap, kernel's); the report names the cap only where it lowered the ABI. */
static int case_capped(int cap)
{
	nono_report rep;
	int f = apply_and_check_common(&rep);
	if (f >= 100)
		return f;
	int kabi = kernel_abi();
	int abi = cap < kabi ? cap : kabi;
	CCHECK(rep.landlock_abi == abi);
	CCHECK(rep.seccomp);
	CCHECK(rep.landlock_abi_kernel == kabi);
	if (kabi > cap) {
		char want[48];
		snprintf(want, sizeof want, "NONO_MAX_LANDLOCK_ABI=%d", cap);
		CCHECK(strcmp(rep.landlock_cap, want) == 0);
	} else {
		CCHECK(rep.landlock_cap[0] == '\0'); /* a cap that does not lower the ABI */
	}
	CCHECK(rep.landlock_tcp == false); /* allowed network: no port rules at any ABI */
	CCHECK(rep.landlock_scopes == (abi >= 6));
	check_truncation(&rep, abi);
	CCHECK(!!(rep.fs_unenforced & IOCTL_DEV_BIT) == (abi < 5));
	if (abi < 2) {
		/* ABI 1 denies every rename into another directory (no REFER right exists) */
		CCHECK(try_rename("rw/mv.txt", "rw/sub/mv.txt") == EXDEV);
		CCHECK(rep.fs_handled == 0x1fff);
	} else {
		CCHECK(try_rename("rw/mv.txt", "rw/sub/mv.txt") == 0);
	}
	return child_fail;
}

static int case_invalid_env(void)
{
	nono_caps *c = standard_caps();
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_apply(c, 0, &rep, &e);
	nono_caps_free(c);
	CCHECK(r == -EINVAL);
	CCHECK(strstr(e.message, "NONO_MAX_LANDLOCK_ABI") != NULL);
	/* still unsandboxed: nothing was applied */
	CCHECK(try_open("outside/secret", O_RDONLY) == 0);
	CCHECK(!prctl_nnp_set());
	return child_fail;
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static int case_threads(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, sleeper, NULL) != 0)
		return 100;
	nono_caps *c = standard_caps();
	nono_error e = { 0 };
	int r = nono_apply(c, 0, NULL, &e);
	nono_caps_free(c);
	CCHECK(r == -EBUSY);
	CCHECK(e.code == -EBUSY);
	CCHECK(strstr(e.message, "threads") != NULL);
	CCHECK(try_open("outside/secret", O_RDONLY) == 0); /* nothing applied */
	return child_fail;
}

/* An empty capability set is "no filesystem access", not "unrestricted". */
static int case_empty(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_apply(c, 0, &rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: %s\n", e.message);
		return 100;
	}
	CCHECK(try_open("ro/r.txt", O_RDONLY) == EACCES);
	CCHECK(open("/etc/passwd", O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES);
	CCHECK(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) < 0 && errno == EACCES);
	CCHECK(rep.landlock_abi > 0);
	return child_fail;
}

static int case_write_only(void)
{
	/* write-only grant: may create and write, may not read back */
	nono_caps *c = nono_caps_new();
	char p[512];
	pathf(p, sizeof p, "rw");
	nono_error e = { 0 };
	nono_caps_allow_path(c, p, NONO_ACCESS_WRITE, &e);
	int r = nono_apply(c, 0, NULL, &e);
	nono_caps_free(c);
	if (r != 0)
		return 100;
	CCHECK(try_open("rw/w.txt", O_WRONLY) == 0);
	CCHECK(try_open("rw/w.txt", O_RDONLY) == EACCES);
	CCHECK(try_open("rw/wo-new.txt", O_WRONLY | O_CREAT) == 0);
	return child_fail;
}

/* ---- network modes (loopback only) ---- */

static uint16_t port_a, port_b; /* loopback listeners made by the parent */

static int listen_loopback(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &l) < 0)
		return -1;
	*port = ntohs(a.sin_port);
	return s;
}

static int tcp_connect(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
	close(s);
	return r;
}

static int udp_socket(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	close(s);
	return 0;
}

static nono_caps *net_caps(nono_net_mode mode, uint16_t port)
{
	nono_caps *c = standard_caps();
	nono_error e = { 0 };
	if (nono_caps_set_network(c, mode, port, &e) < 0)
		fprintf(stderr, "set_network: %s\n", e.message);
	return c;
}

static int case_blocked(void)
{
	nono_caps *c = net_caps(NONO_NET_BLOCKED, 0);
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_apply(c, 0, &rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: nono_apply(blocked): %d %s\n", r, e.message);
		return 100;
	}
	CCHECK(rep.net_enforced == NONO_NET_BLOCKED && !rep.downgraded);
	CCHECK(rep.seccomp);
	CCHECK(rep.landlock_tcp == (rep.landlock_abi >= 4));
	CCHECK(rep.landlock_scopes == (rep.landlock_abi >= 6));
	CCHECK(rep.net_requested == NONO_NET_BLOCKED && rep.supervisor);
	CCHECK(tcp_connect(port_a) == EACCES);
	CCHECK(udp_socket() == EACCES);
	CCHECK(try_open("outside/secret", O_RDONLY) == EACCES);
	return child_fail;
}

static int case_proxy_only(void)
{
	nono_caps *c = net_caps(NONO_NET_PROXY_ONLY, port_a);
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_apply(c, 0, &rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: nono_apply(proxy-only): %d %s\n", r, e.message);
		return 100;
	}
	CCHECK(rep.net_enforced == NONO_NET_PROXY_ONLY && !rep.downgraded);
	CCHECK(rep.seccomp && rep.supervisor);
	CCHECK(rep.landlock_tcp == (rep.landlock_abi >= 4));
	CCHECK(rep.proxy_port == port_a);
	for (int i = 0; i < 20; i++)
		CCHECK(tcp_connect(port_a) == 0);
	int other = tcp_connect(port_b);
	CCHECK(other == EACCES || other == ECONNREFUSED || other == EPERM);
	CCHECK(other != 0);
	CCHECK(udp_socket() == EACCES);
	return child_fail;
}

/* Under another supervisor (a listener already installed on this process), proxy-only is refused;
 * with best effort the network is BLOCKED — never open — and the report says so. */
static int case_busy_listener(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	int lfd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			       SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0)
		return 100;
	nono_caps *c = net_caps(NONO_NET_PROXY_ONLY, port_a);
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_plan_report(c, 0, &rep, &e);
	CCHECK(r == -EOPNOTSUPP);
	CCHECK(strstr(e.message, "EBUSY") != NULL);
	r = nono_apply(c, 0, &rep, &e);
	CCHECK(r == -EOPNOTSUPP);
	CCHECK(tcp_connect(port_a) == 0); /* refused means nothing was applied */
	CCHECK(try_open("outside/secret", O_RDONLY) == 0);
	r = nono_apply(c, NONO_FLAG_BEST_EFFORT, &rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: best effort apply: %d %s\n", r, e.message);
		return 101;
	}
	CCHECK(rep.downgraded);
	CCHECK(rep.net_requested == NONO_NET_PROXY_ONLY);
	CCHECK(rep.net_enforced == NONO_NET_BLOCKED);
	CCHECK(!rep.supervisor);
	/* proxy-only became blocked, and metadata writes are refused outright (issue 11) */
	CCHECK(rep.n_downgrades == 2 && strstr(rep.downgrades[0], "EBUSY") != NULL);
	CCHECK(strstr(rep.downgrades[1], "chmod") != NULL && strstr(rep.downgrades[1], "EBUSY"));
	CCHECK(tcp_connect(port_a) != 0); /* not even the proxy: blocked */
	CCHECK(tcp_connect(port_b) != 0);
	CCHECK(udp_socket() == EACCES);
	CCHECK(try_open("outside/secret", O_RDONLY) == EACCES);
	close(lfd);
	return child_fail;
}

/* blocked needs no supervisor to be whole when nothing is granted: under another supervisor
 * (EBUSY) the filter alone enforces it — every connect/bind refused — and nothing is downgraded. */
static int case_busy_blocked(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	int lfd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			       SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0)
		return 100;
	/* a pathname unix listener outside every grant */
	int us = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un ua = { .sun_family = AF_UNIX };
	char sp[512];
	pathf(sp, sizeof sp, "outside/sock");
	if (strlen(sp) >= sizeof ua.sun_path)
		return 103;
	memcpy(ua.sun_path, sp, strlen(sp) + 1);
	unlink(ua.sun_path);
	if (us < 0 || bind(us, (struct sockaddr *)&ua, sizeof ua) < 0 || listen(us, 4) < 0)
		return 101;
	nono_caps *c = net_caps(NONO_NET_BLOCKED, 0);
	nono_error e = { 0 };
	nono_report rep;
	int r = nono_apply(c, 0, &rep, &e);
	nono_caps_free(c);
	if (r != 0) {
		fprintf(stderr, "child: nono_apply(blocked, EBUSY): %d %s\n", r, e.message);
		return 102;
	}
	CCHECK(rep.net_enforced == NONO_NET_BLOCKED);
	CCHECK(!rep.supervisor && rep.seccomp);
	/* The network is whole; metadata writes, with nobody to decide, are refused everywhere
	 * (issue 11): the one downgrade line says so, and a chmod inside the grants gets EPERM. */
	CCHECK(rep.n_downgrades == 1 && strstr(rep.downgrades[0], "chmod") != NULL);
	char gp[512];
	pathf(gp, sizeof gp, "rw/meta-busy");
	int gfd = open(gp, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CCHECK(gfd >= 0);
	CCHECK(chmod(gp, 0600) < 0 && errno == EPERM);
	CCHECK(fchmod(gfd, 0600) < 0 && errno == EPERM);
	if (gfd >= 0)
		close(gfd);
	CCHECK(tcp_connect(port_a) == EACCES);
	CCHECK(udp_socket() == EACCES);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CCHECK(s >= 0);
	int cr = connect(s, (struct sockaddr *)&ua, sizeof ua) == 0 ? 0 : errno;
	CCHECK(cr == EACCES);
	close(s);
	close(lfd);
	return child_fail;
}

/* ---- parent side ---- */

static int reexec_capped(const char *envval, const char *mode)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("NONO_MAX_LANDLOCK_ABI", envval, 1);
		setenv("NONO_TEST_APPLY_BASE", base, 1);
		execl(self_exe, self_exe, mode, envval, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_plan_report(void)
{
	nono_caps *c = standard_caps();
	nono_report rep;
	nono_error e = { 0 };
	int r = nono_plan_report(c, 0, &rep, &e);
	CHECK_EQ_INT(r, 0);
	CHECK(rep.landlock_abi >= 1);
	CHECK(rep.no_new_privs);
	CHECK(rep.net_requested == NONO_NET_ALLOWED && rep.net_enforced == NONO_NET_ALLOWED);
	/* network allowed: the supervisor still decides metadata writes and watches (issue 11) */
	CHECK(rep.seccomp && rep.supervisor && !rep.downgraded && rep.n_downgrades == 0);
	/* the planning process itself is not restricted */
	CHECK_EQ_INT(try_open("outside/secret", O_RDONLY), 0);
	/* unknown flags are refused */
	r = nono_plan_report(c, 0x80, &rep, &e);
	CHECK_EQ_INT(r, -EINVAL);
	nono_caps_free(c);
}

static void test_plan_prepare_release(void)
{
	nono_caps *c = standard_caps();
	struct nono_plan plan;
	nono_error e = { 0 };
	int r = nono_plan_prepare(c, 0, &plan, &e);
	CHECK_EQ_INT(r, 0);
	CHECK(plan.ruleset_fd >= 0);
	CHECK(fcntl(plan.ruleset_fd, F_GETFD) & FD_CLOEXEC);
	int fd = plan.ruleset_fd;
	nono_plan_release(&plan);
	CHECK_EQ_INT(plan.ruleset_fd, -1);
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	nono_plan_release(&plan); /* idempotent */
	nono_caps_free(c);
}

static void rm_tree(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
}

/* Helper mode for tests/integration/test_apply.py:
 *   test_apply exec [--ro P] [--rw P] [--wo P] [--file-ro P] [--file-rw P] [--net blocked|proxy:N]
 *                   [--bind N] [--best-effort] [--report] -- PROGRAM ARGS...
 * applies the policy to itself with nono_apply, then execs PROGRAM (searched in PATH).
 * Exit 120 + message on stderr when nono_apply fails (the message starts "apply: <errno>"). */
static int exec_mode(int argc, char **argv)
{
	nono_caps *c = nono_caps_new();
	nono_error e = { 0 };
	unsigned flags = 0;
	bool report = false;
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		int r = 0;
		if (strcmp(o, "--best-effort") == 0) {
			flags |= NONO_FLAG_BEST_EFFORT;
			continue;
		}
		if (strcmp(o, "--report") == 0) {
			report = true;
			continue;
		}
		i++;
		if (strcmp(o, "--ro") == 0)
			r = nono_caps_allow_path(c, v, NONO_ACCESS_READ, &e);
		else if (strcmp(o, "--rw") == 0)
			r = nono_caps_allow_path(c, v, NONO_ACCESS_READ_WRITE, &e);
		else if (strcmp(o, "--wo") == 0)
			r = nono_caps_allow_path(c, v, NONO_ACCESS_WRITE, &e);
		else if (strcmp(o, "--file-ro") == 0)
			r = nono_caps_allow_file(c, v, NONO_ACCESS_READ, &e);
		else if (strcmp(o, "--file-rw") == 0)
			r = nono_caps_allow_file(c, v, NONO_ACCESS_READ_WRITE, &e);
		else if (strcmp(o, "--bind") == 0)
			r = nono_caps_allow_bind(c, (uint16_t)atoi(v), &e);
		else if (strcmp(o, "--net") == 0 && strcmp(v, "blocked") == 0)
			r = nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e);
		else if (strcmp(o, "--net") == 0 && strncmp(v, "proxy:", 6) == 0)
			r = nono_caps_set_network(c, NONO_NET_PROXY_ONLY, (uint16_t)atoi(v + 6), &e);
		else
			r = nono_fail(&e, -EINVAL, "unknown option %s", o);
		if (r < 0) {
			fprintf(stderr, "policy: %s\n", e.message);
			return 121;
		}
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: exec [options] -- PROGRAM ARGS...\n");
		return 122;
	}
	nono_report rep;
	int r = nono_apply(c, flags, &rep, &e);
	nono_caps_free(c);
	if (r < 0) {
		fprintf(stderr, "apply: %d %s\n", r, e.message);
		return 120;
	}
	if (report) {
		/* The structured report, on one line: tests read fields, never prose. */
		char *j = nono_report_json(&rep);
		for (char *q = j; q && *q; q++)
			if (*q == '\n')
				*q = ' ';
		fprintf(stderr, "report: %s\n", j ? j : "null");
		free(j);
	}
	fflush(NULL);
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "exec %s: %s\n", argv[i + 1], strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "exec") == 0)
		return exec_mode(argc, argv);
	if (argc == 3 && strcmp(argv[1], "capped") == 0) {
		snprintf(base, sizeof base, "%s", getenv("NONO_TEST_APPLY_BASE"));
		int cap = atoi(argv[2]);
		child_fail = 0;
		int r = case_capped(cap);
		fflush(NULL);
		_exit(r);
	}
	if (argc == 3 && strcmp(argv[1], "invalid") == 0) {
		snprintf(base, sizeof base, "%s", getenv("NONO_TEST_APPLY_BASE"));
		child_fail = 0;
		_exit(case_invalid_env());
	}
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return 2;
	self_exe[n] = '\0';
	unsetenv("NONO_MAX_LANDLOCK_ABI");

	setup_tree();
	test_plan_report();
	test_plan_prepare_release();
	write_file("ro/r.txt", "read-only data\n");
	CHECK_EQ_INT(in_child(case_native), 0);
	CHECK_EQ_INT(in_child(case_threads), 0);
	CHECK_EQ_INT(in_child(case_empty), 0);
	CHECK_EQ_INT(in_child(case_write_only), 0);
	int la = listen_loopback(&port_a), lb = listen_loopback(&port_b);
	CHECK(la >= 0 && lb >= 0);
	CHECK_EQ_INT(in_child(case_busy_listener), 0);
	CHECK_EQ_INT(in_child(case_busy_blocked), 0);
	CHECK_EQ_INT(in_child(case_blocked), 0);
	CHECK_EQ_INT(in_child(case_proxy_only), 0);
	close(lb); /* a refused connect to port_b must still not be "0" */
	close(la);
	/* each capped run gets fresh copies of the files it renames or truncates; caps at or above
	 * the kernel's ABI (7 here on 6.12+; 6, 4, 3 on 6.1) must leave the kernel's ABI in force */
	static const char *const caps_to_try[] = { "7", "6", "4", "3", "2", "1" };
	for (size_t i = 0; i < sizeof caps_to_try / sizeof caps_to_try[0]; i++) {
		write_file("rw/mv.txt", "move me\n");
		write_file("ro/r.txt", "read-only data\n");
		int r = reexec_capped(caps_to_try[i], "capped");
		if (r != 0)
			fprintf(stderr, "NONO_MAX_LANDLOCK_ABI=%s: child status %d\n", caps_to_try[i], r);
		CHECK_EQ_INT(r, 0);
	}
	CHECK_EQ_INT(reexec_capped("abc", "invalid"), 0);
	CHECK_EQ_INT(reexec_capped("65", "invalid"), 0);
	rm_tree();
	UNIT_DONE();
}
