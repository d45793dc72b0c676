/* probe_meta_race.c — the time-of-check/time-of-use attack on a supervisor that checks a path
 * and then lets the kernel (or itself) resolve it again. A flipper thread swaps, as fast as it
 * can, either
 *   symlink: the symlink GRANTED_DIR/link between a granted target and an ungranted one (two
 *            prepared symlinks renamed over it in turn: every swap is atomic), or
 *   path:    the bytes of ONE path buffer between "GRANTED_DIR/link" and a same-length path
 *            through a symlink to the ungranted file (volatile stores, as probe_race.c),
 * while the main thread calls chmod (alternating the mode bits 0600/0640 on even attempts),
 * utimensat (times {2, 2}) and chown (to the file's owner: a no-op that still counts) on the path.
 *   probe_meta_race symlink|path GRANTED_DIR UNGRANTED_FILE N
 * prints  COUNT ok=A denied=D deny_errno=E  (bounded by N and by 150 s); the driver checks from
 * outside that the ungranted file's mode and times did not change. */
#include "probe.h"

#include <stdbool.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

static atomic_int stop;
static char good_tmp[4096], bad_tmp[4096], link_path[4096], bad_link[4096];
static char shared[4096];
static char s_good[4096], s_bad[4096];
static bool by_path;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *flipper(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (by_path) {
			volatile char *p = shared;
			for (size_t i = 0; s_good[i]; i++)
				p[i] = s_good[i];
			for (size_t i = 0; s_bad[i]; i++)
				p[i] = s_bad[i];
			continue;
		}
		/* link -> granted; link -> ungranted: each rename replaces it atomically */
		(void)!symlink("target", good_tmp);
		(void)!rename(good_tmp, link_path);
		(void)!symlink(bad_link, bad_tmp);
		(void)!rename(bad_tmp, link_path);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	by_path = !strcmp(argv[1], "path");
	const char *gdir = argv[2], *ungranted = argv[3];
	long n = atol(argv[4]);
	snprintf(link_path, sizeof link_path, "%s/link", gdir);
	snprintf(good_tmp, sizeof good_tmp, "%s/.good", gdir);
	snprintf(bad_tmp, sizeof bad_tmp, "%s/.bad", gdir);
	snprintf(bad_link, sizeof bad_link, "%s", ungranted);
	char target[4096];
	snprintf(target, sizeof target, "%s/target", gdir);
	int t = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (t < 0)
		return probe_denied("create the granted target", errno);
	close(t);
	/* path mode: "GDIR/link" and "GDIR/bad!" (a symlink to the ungranted file), same length */
	char badsym[4096];
	snprintf(badsym, sizeof badsym, "%s/bad!", gdir);
	unlink(badsym);
	if (symlink(ungranted, badsym) < 0)
		return probe_denied("symlink to the ungranted file", errno);
	snprintf(s_good, sizeof s_good, "%s", link_path);
	snprintf(s_bad, sizeof s_bad, "%s", badsym);
	unlink(link_path);
	if (symlink("target", link_path) < 0)
		return probe_denied("symlink", errno);
	memcpy(shared, s_good, strlen(s_good) + 1);
	struct stat st;
	if (stat(target, &st) < 0)
		return probe_denied("stat target", errno);
	pthread_t th;
	pthread_create(&th, NULL, flipper, NULL);
	long ok = 0, denied = 0;
	int first_err = 0;
	uint64_t deadline = now_ns() + 150ull * 1000000000u;
	struct timespec ts[2] = {{2, 0}, {2, 0}};
	for (long i = 0; i < n && now_ns() < deadline; i++) {
		const char *p = by_path ? shared : link_path;
		int r;
		switch (i % 3) {
		case 0:
			r = chmod(p, (i / 3) % 2 ? 0600 : 0640);
			break;
		case 1:
			r = utimensat(AT_FDCWD, p, ts, 0);
			break;
		default:
			r = chown(p, st.st_uid, st.st_gid);
		}
		if (r == 0) {
			ok++;
		} else {
			if (!first_err)
				first_err = errno;
			denied++;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	printf("COUNT ok=%ld denied=%ld deny_errno=%s\n", ok, denied,
	       first_err ? probe_errname(first_err) : "none");
	return 0;
}
