/* snapshot_store.c — the store on disk.
 *
 *   objects/ab/<62 hex>     file contents, named by SHA-256, mode 0600 (the objects directory
 *                           may be shared by several sessions: nono_snap_options.objects_dir)
 *   objects/tmp/            objects being written (renamed into place when complete)
 *   snapshots/<n>.manifest  one per snapshot, written to a temporary name and renamed
 *
 * A manifest is binary (version 2, snapshot_bin.c); manifests of version 1, text, are still read
 * (snapshot_parse.c describes them).
 * Objects are always written before the manifest that names them, so a reader never sees a
 * manifest whose objects are missing, whatever point a snapshot is killed at. */
#include "snapshot_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define SMALL_FILE (64u << 10)

static void object_name(const uint8_t hash[32], char out[80])
{
	char hex[65];
	nono_sha256_hex(hash, hex);
	snprintf(out, 80, "%.2s/%s", hex, hex + 2);
}

static int tmp_open(const nono_snap *s, char name[64])
{
	static _Atomic unsigned long counter;
	snprintf(name, 64, "tmp/%d.%lu", (int)getpid(), ++counter);
	int fd = openat(s->objfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Copy all of src into dst: a reflink where the filesystem shares extents, else copy_file_range
 * (in-kernel), else read/write (copy_file_range across filesystems before 5.3: EXDEV). */
static int copy_fd(int src, int dst)
{
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	loff_t off_in = 0, off_out = 0;
	for (;;) {
		ssize_t n = copy_file_range(src, &off_in, dst, &off_out, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
	}
	if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
	size_t bufsz = 1 << 16;
	cleanup_free char *buf = malloc(bufsz); /* heap: see snap_sha256_fd */
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pread(src, buf, bufsz, off_in);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = pwrite(dst, buf + w, (size_t)(n - w), off_out);
			if (k < 0 && errno != EINTR)
				return -errno;
			if (k > 0) {
				w += k;
				off_out += k;
			}
		}
		off_in += n;
	}
}

static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t w = 0; w < len;) {
		ssize_t k = write(fd, (const char *)buf + w, len - w);
		if (k < 0 && errno != EINTR)
			return -errno;
		if (k > 0)
			w += (size_t)k;
	}
	return 0;
}

/* Small files: one read, hashed from memory, written only when the object is new. */
static int store_small(const nono_snap *s, int src, size_t size, nono_snap_entry *e)
{
	size_t bufsz = SMALL_FILE + 1;
	cleanup_free char *buf = malloc(bufsz); /* heap: see snap_sha256_fd */
	size_t got = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(src, buf + got, bufsz - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 || (got += (size_t)n) == bufsz)
			break;
	}
	if (got > SMALL_FILE || got != size)
		return -EAGAIN; /* grew or shrank under us: the caller takes the copying path */
	int rc = snap_sha256(buf, got, e->hash);
	char obj[80], tmp[64];
	object_name(e->hash, obj);
	struct stat st;
	if (rc < 0 || fstatat(s->objfd, obj, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return rc;
	cleanup_fd int fd = tmp_open(s, tmp);
	if (fd < 0)
		return fd;
	if ((rc = write_all(fd, buf, got)) == 0 && renameat(s->objfd, tmp, s->objfd, obj) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(s->objfd, tmp, 0);
	return rc;
}

/* Larger files: copied first, then the private copy is hashed, so the object always matches its
 * name even when the source changes while it is read. */
static int store_large(const nono_snap *s, int src, nono_snap_entry *e)
{
	char tmp[64], obj[80];
	cleanup_fd int fd = tmp_open(s, tmp);
	if (fd < 0)
		return fd;
	int rc = copy_fd(src, fd);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc == 0)
		rc = snap_sha256_fd(fd, e->hash);
	if (rc == 0) {
		object_name(e->hash, obj);
		if (renameat(s->objfd, tmp, s->objfd, obj) < 0)
			rc = -errno;
	}
	if (rc < 0)
		unlinkat(s->objfd, tmp, 0);
	return rc;
}

int snap_store_file(const nono_snap *s, int dirfd, const char *name, nono_snap_entry *e,
		    nono_error *err)
{
	/* O_NONBLOCK: a fifo swapped in after the walk must not hang us; O_NOFOLLOW: nor a symlink
	 * take us out of the tree. */
	cleanup_fd int src = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(src, &st) < 0)
		return nono_fail(err, -errno, "%s: %s", e->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nono_fail(err, -EAGAIN, "%s: changed type during the snapshot", e->path);
	/* Record what was copied: a change after this fstat shows up as a new mtime/ctime next time. */
	e->size = (uint64_t)st.st_size;
	e->mode = st.st_mode & 07777;
	e->mtime_sec = st.st_mtim.tv_sec;
	e->mtime_nsec = st.st_mtim.tv_nsec;
	e->ctime_sec = st.st_ctim.tv_sec;
	e->ctime_nsec = st.st_ctim.tv_nsec;
	e->ino = st.st_ino;
	e->dev = st.st_dev;
	int rc = -EAGAIN;
	if (st.st_size <= SMALL_FILE)
		rc = store_small(s, src, (size_t)st.st_size, e);
	if (rc == -EAGAIN) {
		if (lseek(src, 0, SEEK_SET) < 0)
			return nono_fail(err, -errno, "%s: %s", e->path, strerror(errno));
		rc = store_large(s, src, e);
		struct stat st2;
		if (rc == 0 && fstat(src, &st2) == 0)
			e->size = (uint64_t)st2.st_size; /* the copy holds what was there at the end */
	}
	if (rc < 0)
		return nono_fail(err, rc, "%s: cannot store: %s", e->path, strerror(-rc));
	return 0;
}

int snap_object_open(const nono_snap *s, const uint8_t hash[32])
{
	char obj[80];
	object_name(hash, obj);
	int fd = openat(s->objfd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int snap_object_copy(const nono_snap *s, const uint8_t hash[32], int dst)
{
	cleanup_fd int fd = snap_object_open(s, hash);
	if (fd < 0)
		return fd;
	return copy_fd(fd, dst);
}

int snap_manifest_write(const nono_snap *s, const nono_snap_manifest *m, nono_error *err)
{
	char tmp[64], name[64];
	snprintf(tmp, sizeof tmp, "snapshots/.%" PRIu32 ".manifest.tmp", m->number);
	snprintf(name, sizeof name, "snapshots/%" PRIu32 ".manifest", m->number);
	int fd = openat(s->dirfd, tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return nono_fail(err, -errno, "%s/%s: %s", s->dir, tmp, strerror(errno));
	/* 64 KiB: from the heap (1 MiB was an mmap, 256 page faults each time), ~35 write(2) for a
	 * 20,000-file manifest. */
	enum { MANIFEST_BUF = 64 << 10 };
	struct snap_out o = {.fd = fd, .buf = malloc(MANIFEST_BUF), .cap = MANIFEST_BUF};
	int rc = o.buf ? snap_manifest_bin(&o, m) : -ENOMEM;
	if (rc == 0)
		rc = snap_out_flush(&o);
	free(o.buf);
	/* No fsync: the store is consistent against a killed process (rename is atomic, objects come
	 * first), not against power loss, like git's working tree; an fdatasync here cost more than
	 * the whole incremental snapshot on a busy disk. */
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(s->dirfd, tmp, s->dirfd, name) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(s->dirfd, tmp, 0);
		return nono_fail(err, rc, "%s/%s: %s", s->dir, name, strerror(-rc));
	}
	return 0;
}

long snap_manifest_latest(const nono_snap *s)
{
	int fd = openat(s->dirfd, "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	long best = -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long n = strtoul(de->d_name, &end, 10);
		if (end != de->d_name && !strcmp(end, ".manifest") && n < UINT32_MAX && (long)n > best)
			best = (long)n;
	}
	closedir(d);
	return best;
}
