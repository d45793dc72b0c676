/* ledger_identity.c — the identity of the program a session runs (nono_exec_identity): resolved
 * as nono_exec resolves it (exec_resolve.c), canonicalised, and hashed, before launch. */
#include "exec_int.h"
#include "snapshot_int.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>

/* The cache entry for the open file fd: "<dev>-<ino>" in cache_dir, holding
 * "size mtime_s mtime_ns ctime_s ctime_ns <sha256 hex>". A hit needs every field to match: the
 * ctime changes with any write to the file and cannot be set back. */
static bool cache_get(int dirfd, const struct stat *st, const char *name, uint8_t out[32])
{
	cleanup_fd int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[256], hex[65];
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	long long f[5];
	if (sscanf(buf, "%lld %lld %lld %lld %lld %64s", &f[0], &f[1], &f[2], &f[3], &f[4], hex) != 6)
		return false;
	return f[0] == (long long)st->st_size && f[1] == (long long)st->st_mtim.tv_sec &&
	       f[2] == (long long)st->st_mtim.tv_nsec && f[3] == (long long)st->st_ctim.tv_sec &&
	       f[4] == (long long)st->st_ctim.tv_nsec && snap_hex_parse(hex, out) == 0;
}

static void cache_put(int dirfd, const struct stat *st, const char *name, const uint8_t h[32])
{
	char tmp[96], hex[65], buf[256];
	nono_sha256_hex(h, hex);
	snprintf(tmp, sizeof tmp, ".%s.%d", name, (int)getpid());
	int n = snprintf(buf, sizeof buf, "%lld %lld %lld %lld %lld %s\n", (long long)st->st_size,
			 (long long)st->st_mtim.tv_sec, (long long)st->st_mtim.tv_nsec,
			 (long long)st->st_ctim.tv_sec, (long long)st->st_ctim.tv_nsec, hex);
	cleanup_fd int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && write(fd, buf, (size_t)n) == n && renameat(dirfd, tmp, dirfd, name) == 0)
		return;
	if (fd >= 0)
		unlinkat(dirfd, tmp, 0);
}

/* SHA-256 of the open program, through the cache when there is one. */
static int identity_hash(int fd, const char *cache_dir, uint8_t out[32])
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	char name[64];
	snprintf(name, sizeof name, "%llx-%llx", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	cleanup_fd int dirfd = cache_dir ? open(cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dirfd >= 0 && cache_get(dirfd, &st, name, out))
		return 0;
	int rc = snap_sha256_fd(fd, out);
	struct stat after;
	/* Cached only when the file did not change while it was read. */
	if (rc == 0 && dirfd >= 0 && fstat(fd, &after) == 0 && after.st_ctim.tv_sec == st.st_ctim.tv_sec &&
	    after.st_ctim.tv_nsec == st.st_ctim.tv_nsec)
		cache_put(dirfd, &st, name, out);
	return rc;
}

int nono_exec_identity(const char *argv0, const char *const *env, bool inherit_env,
		       const char *cwd, char **path, uint8_t sha256[32], nono_error *err)
{
	return nono_exec_identity_cached(argv0, env, inherit_env, cwd, NULL, path, sha256, err);
}

int nono_exec_identity_cached(const char *argv0, const char *const *env, bool inherit_env,
			      const char *cwd, const char *cache_dir, char **path, uint8_t sha256[32],
			      nono_error *err)
{
	nono_error_clear(err);
	*path = NULL;
	char **envp = NULL;
	int rc = nono_env_build(inherit_env, env, NULL, &envp, err);
	if (rc < 0)
		return rc;
	cleanup_fd int cwd_fd = cwd ? open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (cwd && cwd_fd < 0) {
		nono_strv_free(envp);
		return nono_fail(err, -errno, "%s: %s", cwd, strerror(errno));
	}
	cleanup_free char *found = nono_exec_resolve_program(argv0, envp, cwd_fd, &rc, err);
	nono_strv_free(envp);
	if (!found)
		return rc;
	char full[PATH_MAX];
	cleanup_fd int fd = openat(cwd_fd >= 0 ? cwd_fd : AT_FDCWD, found, O_RDONLY | O_CLOEXEC);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t n = fd < 0 ? -1 : readlink(proc, full, sizeof full - 1);
	if (fd < 0 || n < 0)
		return nono_fail(err, -errno, "%s: %s", found, strerror(errno));
	full[n] = '\0';
	if ((rc = identity_hash(fd, cache_dir, sha256)) < 0)
		return nono_fail(err, rc, "%s: cannot hash: %s", full, strerror(-rc));
	if (!(*path = strdup(full)))
		return nono_fail(err, -ENOMEM, "out of memory");
	return 0;
}
