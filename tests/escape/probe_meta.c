/* probe_meta.c — metadata writes and watches on files the command was not granted (issue 11).
 * One attempt each; the driver checks the file from outside afterwards.
 *   probe_meta chmod PATH            chmod(PATH, 0666)
 *   probe_meta chmod_at PATH         fchmodat(AT_FDCWD, PATH, 0666, 0) via the raw syscall
 *   probe_meta chmod_opath PATH      open(PATH, O_PATH) (Landlock never checks it), then
 *                                    chmod("/proc/self/fd/N") — glibc's own fchmodat fallback
 *   probe_meta fchownat_opath PATH UID GID   open O_PATH, fchownat(fd, "", AT_EMPTY_PATH)
 *   probe_meta chown PATH UID GID    chown
 *   probe_meta lchown PATH UID GID   lchown
 *   probe_meta utimensat PATH        utimensat(AT_FDCWD, PATH, {1, 1}, 0)
 *   probe_meta utimes PATH           utimes(PATH, {1, 1})
 *   probe_meta setxattr PATH         setxattr(PATH, "user.nono_probe", "escaped")
 *   probe_meta removexattr PATH      removexattr(PATH, "user.nono_keep")
 *   probe_meta watch DIR             inotify on DIR: prints WATCHING, waits (<= 20 s) for a
 *                                    creation event, prints ESCAPED with the name it learned
 *   probe_meta fanotify DIR          the same with unprivileged fanotify (5.13+, DFID_NAME)
 *   probe_meta vfork_exec DIR        not an escape: whose memory the supervisor reads. DIR/a and
 *                                    DIR/b (0644); the name "DIR/a" at a fixed address; a vfork
 *                                    child fchmods DIR/a (0600) and chmods the name (0640) on the
 *                                    parent's memory, then execs `vfork_child`, whose own memory
 *                                    holds "DIR/b" at that address and which chmods it (0604).
 *                                    Prints "a=MODE b=MODE": 640 and 604 when each call acted on
 *                                    the name its caller gave (review of 2026-12-05 d, #1). */
#include "probe.h"

#include <stdbool.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>

static int verdict(const char *what, long r)
{
	if (r < 0)
		return probe_denied(what, errno);
	return probe_escaped(what);
}

static int wait_event(int fd, const char *kind)
{
	printf("WATCHING %s\n", kind);
	fflush(stdout);
	struct pollfd p = {fd, POLLIN, 0};
	int n = poll(&p, 1, 20000);
	if (n <= 0)
		return probe_denied("no event", n == 0 ? ETIMEDOUT : errno);
	char buf[4096] __attribute__((aligned(8)));
	ssize_t got = read(fd, buf, sizeof buf);
	if (got <= 0)
		return probe_denied("read event", errno);
	if (!strcmp(kind, "inotify")) {
		struct inotify_event *ev = (void *)buf;
		char d[300];
		snprintf(d, sizeof d, "inotify event: new file named %.200s", ev->len ? ev->name : "?");
		return probe_escaped(d);
	}
	return probe_escaped("fanotify event");
}

static int watch(const char *dir, bool fan)
{
	if (!fan) {
		int fd = inotify_init1(IN_CLOEXEC);
		if (fd < 0)
			return probe_denied("inotify_init1", errno);
		if (inotify_add_watch(fd, dir, IN_CREATE | IN_OPEN | IN_MODIFY) < 0)
			return probe_denied("inotify_add_watch", errno);
		return wait_event(fd, "inotify");
	}
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC, O_RDONLY);
	if (fd < 0)
		return probe_denied("fanotify_init", errno);
	if (fanotify_mark(fd, FAN_MARK_ADD, FAN_CREATE | FAN_EVENT_ON_CHILD, AT_FDCWD, dir) < 0)
		return probe_denied("fanotify_mark", errno);
	return wait_event(fd, "fanotify");
}

#include <sys/mman.h>
#include <sys/wait.h>

#define NAME_AT ((void *)0x300000000000UL)

static char *name_at(const char *dir, const char *leaf)
{
	char *p = mmap(NAME_AT, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != NAME_AT)
		return NULL;
	snprintf(p, 4096, "%s/%s", dir, leaf);
	return p;
}

static int vfork_exec(const char *self, const char *dir)
{
	char p[4096];
	volatile int fd = -1; /* read by the vfork child */
	for (const char *leaf = "a"; leaf; leaf = *leaf == 'a' ? "b" : NULL) {
		snprintf(p, sizeof p, "%s/%s", dir, leaf);
		int f = open(p, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
		if (f < 0 || fchmod(f, 0644) < 0)
			return probe_denied("create", errno);
		if (*leaf == 'a')
			fd = f;
		else
			close(f);
	}
	char *name = name_at(dir, "a");
	if (!name)
		return probe_denied("mmap", errno);
	pid_t c = vfork();
	if (c == 0) {
		(void)fchmod(fd, 0600);
		(void)chmod(name, 0640);
		execl(self, self, "vfork_child", dir, (char *)NULL);
		_exit(127);
	}
	int st;
	if (c < 0 || waitpid(c, &st, 0) != c)
		return probe_denied("vfork", errno);
	struct stat a, b;
	snprintf(p, sizeof p, "%s/a", dir);
	int ra = stat(p, &a);
	snprintf(p, sizeof p, "%s/b", dir);
	if (ra < 0 || stat(p, &b) < 0)
		return probe_denied("stat", errno);
	printf("a=%o b=%o\n", (unsigned)a.st_mode & 07777, (unsigned)b.st_mode & 07777);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "vfork_exec"))
		return vfork_exec(argv[0], argv[2]);
	if (argc == 3 && !strcmp(argv[1], "vfork_child")) {
		char *name = name_at(argv[2], "b");
		return name && chmod(name, 0604) == 0 ? 0 : 1;
	}
	if (argc < 3)
		return 2;
	const char *op = argv[1], *path = argv[2];
	uid_t u = argc > 3 ? (uid_t)atol(argv[3]) : (uid_t)-1;
	gid_t g = argc > 4 ? (gid_t)atol(argv[4]) : (gid_t)-1;
	struct timespec ts[2] = {{1, 0}, {1, 0}};
	struct timeval tv[2] = {{1, 0}, {1, 0}};
	if (!strcmp(op, "chmod"))
		return verdict("chmod", chmod(path, 0666));
	if (!strcmp(op, "chmod_at"))
		return verdict("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, path, 0666));
	if (!strcmp(op, "chmod_opath") || !strcmp(op, "fchownat_opath")) {
		int fd = open(path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return probe_denied("open O_PATH", errno);
		char p[64];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		if (!strcmp(op, "chmod_opath"))
			return verdict("chmod /proc/self/fd/N", chmod(p, 0666));
		return verdict("fchownat AT_EMPTY_PATH", fchownat(fd, "", u, g, AT_EMPTY_PATH));
	}
	if (!strcmp(op, "chown"))
		return verdict("chown", chown(path, u, g));
	if (!strcmp(op, "lchown"))
		return verdict("lchown", lchown(path, u, g));
	if (!strcmp(op, "utimensat"))
		return verdict("utimensat", utimensat(AT_FDCWD, path, ts, 0));
	if (!strcmp(op, "utimes"))
		return verdict("utimes", utimes(path, tv));
	if (!strcmp(op, "setxattr"))
		return verdict("setxattr", setxattr(path, "user.nono_probe", "escaped", 7, 0));
	if (!strcmp(op, "removexattr"))
		return verdict("removexattr", removexattr(path, "user.nono_keep"));
	if (!strcmp(op, "watch") || !strcmp(op, "fanotify"))
		return watch(path, !strcmp(op, "fanotify"));
	return 2;
}
