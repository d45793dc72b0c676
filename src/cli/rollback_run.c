/* rollback_run.c — `nono run --rollback`: the writable directory grants are snapshotted before the
 * command (the baseline) and after it, what changed is printed, and the session is kept under
 * $XDG_STATE_HOME/nono/rollback/ID for `nono rollback` (rollback.c). Also the helpers both share:
 * the state directory, progress on a terminal, session.json. */
#include "rollback.h"
#include "jsonstr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int mkdir_p(char *path)
{
	/* The whole path first: after the first run it exists, and one mkdir (EEXIST) replaces one
	 * per component on every `nono run` (issue 10's startup target). */
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int rb_state_dir(const char *sub, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char raw[PATH_MAX];
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(raw, sizeof raw, "%s/nono/%s", xdg, sub);
	else if (home && home[0] == '/')
		n = snprintf(raw, sizeof raw, "%s/.local/state/nono/%s", home, sub);
	else {
		cli_err("neither XDG_STATE_HOME nor HOME is an absolute path: no place for nono's state");
		return -1;
	}
	if (n < 0 || (size_t)n >= sizeof raw || mkdir_p(raw) < 0 || !realpath(raw, buf) ||
	    strlen(buf) >= len) {
		cli_err("state directory %s: %s", raw, strerror(errno ? errno : ENAMETOOLONG));
		return -1;
	}
	return 0;
}

/* ---- progress on a terminal ---- */

static struct {
	struct timespec start, last;
	bool started, shown;
} prog;

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void rb_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	(void)ctx;
	if (!isatty(STDERR_FILENO))
		return;
	if (!prog.started) {
		clock_gettime(CLOCK_MONOTONIC, &prog.start);
		prog.started = true;
	}
	if (since(&prog.start) < 0.5 || (prog.shown && since(&prog.last) < 0.1))
		return;
	clock_gettime(CLOCK_MONOTONIC, &prog.last);
	prog.shown = true;
	if (total)
		fprintf(stderr, "\r\033[Knono: %s %" PRIu64 "/%" PRIu64 " entries", phase, done, total);
	else
		fprintf(stderr, "\r\033[Knono: %s %" PRIu64 " entries", phase, done);
}

void rb_progress_done(void)
{
	if (prog.shown)
		fprintf(stderr, "\r\033[K");
	prog.started = prog.shown = false;
}

/* ---- session.json ---- */

/* Write all of buf; 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int rb_meta_save(const char *dir, json_t *meta)
{
	char tmp[PATH_MAX + 400], path[PATH_MAX + 400];
	snprintf(tmp, sizeof tmp, "%s/.session.json.tmp", dir);
	snprintf(path, sizeof path, "%s/session.json", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Dumped to memory and written at once: json_dumpfd writes every token with its own
	 * write(2) (~190 a session.json), and every `nono run` saves one (issue 10's startup). */
	char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc = text ? write_all(fd, text, strlen(text)) : -ENOMEM;
	free(text);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* -1, or EXIT_USAGE for a pattern session.json (JSON) could not keep: it would be left out. */
static int patterns_utf8(const struct strvec *v, const char *opt)
{
	for (size_t i = 0; i < v->n; i++) {
		json_t *j = json_string(v->v[i]);
		json_decref(j);
		if (!j) {
			cli_err("%s %s: not valid UTF-8", opt, v->v[i]);
			return EXIT_USAGE;
		}
	}
	return -1;
}

/* The command as session.json lists it: an argument that is not UTF-8 as {"hex": …}. */
static json_t *cmd_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, cli_json_str(v[i]));
	return a;
}

void rb_options_from_json(json_t *excl, nono_snap_options *o, const char **keep[3])
{
	nono_snap_options_init(o);
	static const char *const keys[3] = {"exclude_patterns", "exclude_globs", "force_include"};
	const char *const **slots[3] = {&o->exclusion.exclude_patterns, &o->exclusion.exclude_globs,
					&o->exclusion.force_include};
	for (int k = 0; k < 3; k++) {
		json_t *a = json_object_get(excl, keys[k]);
		size_t n = json_array_size(a);
		keep[k] = calloc(n + 1, sizeof *keep[k]);
		for (size_t i = 0; keep[k] && i < n; i++)
			keep[k][i] = json_string_value(json_array_get(a, i));
		*slots[k] = keep[k];
	}
	if (excl) {
		o->exclusion.use_defaults = json_is_true(json_object_get(excl, "use_defaults"));
		o->exclusion.use_gitignore = json_is_true(json_object_get(excl, "use_gitignore"));
	}
	o->progress = rb_progress;
}

static json_t *exclusion_json(const struct run_opts *o)
{
	return json_pack("{s:b, s:b, s:[], s:o, s:o}", "use_defaults", !o->rb_no_defaults,
			 "use_gitignore", o->rb_gitignore, "exclude_patterns", "exclude_globs",
			 strv_json(o->rb_exclude.v, o->rb_exclude.n), "force_include",
			 strv_json(o->rb_include.v, o->rb_include.n));
}

static void iso_now(char buf[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rb_objects_dir(const char *base, char *buf, size_t len)
{
	snprintf(buf, len, "%s/.objects", base);
}

/* ---- nono run --rollback ---- */

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1)
		return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Whether a writable file grant is tracked: a regular file (a device, fifo or socket has no
 * contents to restore; one that does not exist yet has nothing to snapshot), said when not. */
static bool file_trackable(const nono_grant *g)
{
	struct stat st;
	if (!strncmp(g->resolved, "/dev/", 5))
		return false;
	int r = lstat(g->resolved, &st);
	if (r == 0 && S_ISREG(st.st_mode))
		return true;
	cli_err("--rollback: %s is not tracked (%s)", g->original,
		r == 0 ? "not a regular file" : errno == ENOENT ? "it does not exist yet" : strerror(errno));
	return false;
}

/* The writable grants, minus those inside another (one tree each, or one file); a file grant that
 * is not a regular file is named as untracked. Refuses a writable grant that reaches `store`. */
static int tracked_grants(const nono_caps *caps, const char *store, const char *skip,
			  struct strvec *out)
{
	size_t n = nono_caps_grant_count(caps);
	for (size_t i = 0; i < n; i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0 || !(g.access & NONO_ACCESS_WRITE))
			continue;
		if (skip && !strcmp(g.resolved, skip))
			continue; /* the run's private temp dir: removed with the command, nothing to undo */
		if (g.is_file ? under(g.resolved, store) : under(store, g.resolved)) {
			cli_err("--rollback: the command could write the rollback store %s through the "
				"grant %s: refused (set XDG_STATE_HOME to a directory outside every "
				"writable grant)", store, g.original);
			return EXIT_USAGE;
		}
		if (g.is_file && !file_trackable(&g))
			continue;
		bool inside = false;
		for (size_t j = 0; j < n && !inside; j++) {
			nono_grant h;
			inside = j != i && nono_caps_grant(caps, j, &h) == 0 &&
				 (h.access & NONO_ACCESS_WRITE) &&
				 (h.is_file ? g.is_file && j < i && !strcmp(g.resolved, h.resolved)
					    : under(g.resolved, h.resolved) &&
						      (strcmp(g.resolved, h.resolved) != 0 || j < i));
		}
		if (inside)
			continue;
		/* The session keeps its roots in session.json: a root JSON cannot hold as a string
		 * would be left out of the restore, so it is refused here instead. */
		json_t *utf8 = json_string(g.resolved);
		json_decref(utf8);
		if (!utf8) {
			cli_err("--rollback: cannot track %s: its path is not valid UTF-8", g.original);
			return EXIT_USAGE;
		}
		if (strvec_push(out, g.resolved) < 0)
			return EXIT_INTERNAL;
	}
	if (out->n == 0) {
		cli_err("--rollback: no writable grant to snapshot");
		return EXIT_USAGE;
	}
	return -1;
}

static int new_session(struct rb_run *rb, const char *base)
{
	char id[64], dir[PATH_MAX + 80];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	size_t k = strftime(id, sizeof id, "%Y%m%d-%H%M%S", &tm);
	snprintf(id + k, sizeof id - k, "-%d", (int)getpid());
	snprintf(dir, sizeof dir, "%s/%s", base, id);
	if (mkdir(dir, 0700) < 0) {
		cli_err("--rollback: %s: %s", dir, strerror(errno));
		return EXIT_INTERNAL;
	}
	rb->id = strdup(id);
	rb->dir = strdup(dir);
	return rb->id && rb->dir ? -1 : EXIT_INTERNAL;
}

static json_t *meta_new(const struct run_opts *o, const struct rb_run *rb, const struct strvec *t)
{
	char now[32];
	iso_now(now);
	json_t *m = json_pack("{s:s, s:s, s:n, s:o, s:n, s:o, s:i, s:n, s:[], s:[], s:i, s:n, s:n, "
			      "s:o}",
			      "session_id", rb->id, "started", now, "ended", "command",
			      cmd_json((const char *const *)o->cmd, (size_t)o->ncmd),
			      "executable_identity", "tracked_paths", strv_json(t->v, t->n),
			      "snapshot_count", 0, "exit_code", "merkle_roots", "network_events",
			      "audit_event_count", 0, "audit_integrity", "audit_attestation",
			      "exclusion", exclusion_json(o));
	return m;
}

/* The latest snapshot's root, taken from the store: the snapshot calls pass no manifest out (a
 * copy of 20,000 entries, twice a run, for one hash). */
static void add_root(struct rb_run *rb)
{
	char hex[65];
	uint8_t root[32];
	int64_t number = nono_snap_latest_root(rb->snap, root);
	if (number < 0)
		return;
	nono_sha256_hex(root, hex);
	json_array_append_new(json_object_get(rb->meta, "merkle_roots"), json_string(hex));
	json_object_set_new(rb->meta, "snapshot_count", json_integer(number + 1));
}

/* The newest earlier session with the same trees and exclusions seeds the baseline: files
 * unchanged since its last snapshot are neither read nor copied again. */
static int seed(struct rb_run *rb, const char *base, nono_error *err)
{
	struct dirent **names;
	int n = scandir(base, &names, NULL, alphasort), rc = 0;
	bool done = false;
	for (int i = n - 1; i >= 0; i--) {
		char dir[PATH_MAX + 320], path[PATH_MAX + 400];
		snprintf(dir, sizeof dir, "%s/%s", base, names[i]->d_name);
		snprintf(path, sizeof path, "%s/session.json", dir);
		json_t *m = done || names[i]->d_name[0] == '.' || !strcmp(names[i]->d_name, rb->id)
				    ? NULL
				    : json_load_file(path, 0, NULL);
		if (m && json_equal(json_object_get(m, "tracked_paths"),
				    json_object_get(rb->meta, "tracked_paths")) &&
		    json_equal(json_object_get(m, "exclusion"), json_object_get(rb->meta, "exclusion"))) {
			done = true;
			rc = nono_snap_seed(rb->snap, dir, err);
		}
		json_decref(m);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return rc;
}

int rb_run_begin(const struct run_opts *o, const nono_caps *caps, const char *tmpdir,
		 struct rb_run *rb)
{
	char base[PATH_MAX];
	struct strvec t = {0};
	if (rb_state_dir("rollback", base, sizeof base) < 0)
		return EXIT_INTERNAL;
	int status = tracked_grants(caps, base, tmpdir, &t);
	if (status < 0)
		status = patterns_utf8(&o->rb_exclude, "--rollback-exclude");
	if (status < 0)
		status = patterns_utf8(&o->rb_include, "--rollback-include");
	if (status < 0)
		status = new_session(rb, base);
	if (status < 0 && !(rb->meta = meta_new(o, rb, &t)))
		status = EXIT_INTERNAL;
	const char **keep[3] = {NULL, NULL, NULL};
	nono_snap_options so;
	char objects[PATH_MAX + 16];
	rb_options_from_json(json_object_get(rb->meta, "exclusion"), &so, keep);
	rb_objects_dir(base, objects, sizeof objects);
	so.objects_dir = objects;
	nono_error err = {0};
	bool taken = false;
	if (status < 0 && nono_snap_open(rb->dir, t.v, t.n, &so, &rb->snap, &err) == 0 &&
	    seed(rb, base, &err) == 0 && nono_snap_baseline(rb->snap, NULL, &err) == 0)
		taken = true;
	else if (status < 0) {
		rb_progress_done();
		cli_err("--rollback: %s (nothing was run)", err.message);
		status = err.code == -EFBIG || err.code == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
	}
	rb_progress_done();
	if (taken) {
		add_root(rb);
		if (rb_meta_save(rb->dir, rb->meta) < 0)
			cli_err("--rollback: cannot write %s/session.json", rb->dir);
	}
	for (int k = 0; k < 3; k++)
		free(keep[k]);
	strvec_free(&t);
	return status;
}

void rb_print_changes(const nono_snap_change *c, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++) {
		const char *name = c[i].type == NONO_SNAP_PERMISSIONS ? "mode" :
				   nono_snap_change_name(c[i].type);
		const char *slash = c[i].entry_type == NONO_SNAP_DIR ? "/" : "";
		if (c[i].has_size_delta && c[i].type == NONO_SNAP_MODIFIED)
			fprintf(stderr, "  %-9s %s%s (%+" PRId64 " bytes)\n", name, c[i].path, slash,
				c[i].size_delta);
		else
			fprintf(stderr, "  %-9s %s%s\n", name, c[i].path, slash);
	}
	if (n > max)
		fprintf(stderr, "  ... and %zu more\n", n - max);
}

void rb_run_end(struct rb_run *rb, int status)
{
	if (!rb->snap)
		return;
	nono_snap_change *c = NULL;
	size_t n = 0;
	nono_error err = {0};
	int rc = nono_snap_incremental(rb->snap, NULL, &c, &n, &err);
	rb_progress_done();
	char now[32];
	iso_now(now);
	json_object_set_new(rb->meta, "ended", json_string(now));
	json_object_set_new(rb->meta, "exit_code", json_integer(status));
	if (rc < 0) {
		cli_err("rollback: the after-snapshot failed: %s; the baseline is intact ('nono "
			"rollback restore %s' brings the trees back)", err.message, rb->id);
	} else if (n == 0) {
		cli_err("rollback session %s: no changes", rb->id);
	} else {
		cli_err("rollback session %s: %zu change%s (undo: nono rollback restore %s)", rb->id, n,
			n == 1 ? "" : "s", rb->id);
		rb_print_changes(c, n, 50);
	}
	if (rc == 0)
		add_root(rb);
	if (rb_meta_save(rb->dir, rb->meta) < 0)
		cli_err("rollback: cannot write %s/session.json", rb->dir);
	nono_snap_changes_free(c, n);
}

void rb_run_free(struct rb_run *rb)
{
	nono_snap_free(rb->snap);
	json_decref(rb->meta);
	free(rb->id);
	free(rb->dir);
	memset(rb, 0, sizeof *rb);
}
