/* exec_rmtree.c — the reaper's last act for nono_exec_opts.remove_dir: remove a directory tree the
 * command used (the CLI's private temp dir), once the command and every process it started are
 * gone — the one moment no sandboxed process can still write there, and one the reaper reaches
 * also when its caller was SIGKILLed (PR_SET_PDEATHSIG).
 *
 * Async-signal-safe (the reaper is a fork of a possibly multi-threaded caller): raw syscalls only,
 * getdents64 into stack buffers, no malloc. Never follows a symlink: every entry is unlinked where
 * it is, and a directory is entered by openat(O_NOFOLLOW) relative to its parent, so a name the
 * command replaced by a link is removed, not followed. A directory the command made unwritable
 * (Landlock does not mediate chmod) gets its owner's rights back through its own fd first. */
#include "exec_int.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RMTREE_MAX_DEPTH 64 /* 4 KiB of stack a level; deeper trees are left to the caller */

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Empty the directory open at `fd` (closed here). Returns 0 when all went. */
static int rmtree_fd(int fd, int depth)
{
	char buf[4096] __attribute__((aligned(8)));
	int rc = 0;
	(void)fchmod(fd, 0700);
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (n <= 0) {
			rc |= n < 0 ? -1 : 0;
			break;
		}
		for (long off = 0; off < n;) {
			struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
			off += e->d_reclen;
			if (dot_or_dotdot(e->d_name) || unlinkat(fd, e->d_name, 0) == 0)
				continue;
			int sub = depth < RMTREE_MAX_DEPTH
					  ? openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
					  : -1;
			if (sub < 0 || rmtree_fd(sub, depth + 1) < 0 ||
			    unlinkat(fd, e->d_name, AT_REMOVEDIR) < 0)
				rc = -1;
		}
	}
	close(fd);
	return rc;
}

int nono_exec_rmtree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (rmtree_fd(fd, 0) < 0)
		return -1;
	return rmdir(path);
}
