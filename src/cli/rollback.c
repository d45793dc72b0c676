/* rollback.c — `nono rollback list | show | diff | restore | verify | cleanup`: the sessions that
 * `nono run --rollback` kept (rollback_run.c) under $XDG_STATE_HOME/nono/rollback. */
#include "commands.h"
#include "help.h"
#include "rollback.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char sub[] = "rollback ";

/* A session id names one directory below the store: no '/', no "." or "..". */
static bool id_ok(const char *id)
{
	if (!*id || id[0] == '.')
		return false; /* also ".objects", the shared store */
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

struct session {
	char dir[PATH_MAX + 320];
	json_t *meta;
	nono_snap *snap;
};

static void session_close(struct session *s)
{
	json_decref(s->meta);
	nono_snap_free(s->snap);
}

static json_t *meta_load(const char *dir)
{
	char path[PATH_MAX + 400];
	snprintf(path, sizeof path, "%s/session.json", dir);
	return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

/* Open session `id`. With `create_roots`, tracked trees that no longer exist are created (a
 * restore brings back a tree the command removed whole). Returns -1 or an exit status. */
static int session_open(const char *id, bool create_roots, struct session *s)
{
	char base[PATH_MAX];
	if (!id_ok(id))
		return cli_usage_error(sub, "'%s' is not a session id (see 'nono rollback list')", id);
	if (rb_state_dir("rollback", base, sizeof base) < 0)
		return EXIT_INTERNAL;
	snprintf(s->dir, sizeof s->dir, "%s/%s", base, id);
	if (!(s->meta = meta_load(s->dir))) {
		cli_err("rollback: no session %s (%s/session.json unreadable)", id, s->dir);
		return EXIT_USAGE;
	}
	json_t *t = json_object_get(s->meta, "tracked_paths");
	size_t n = json_array_size(t);
	const char **roots = calloc(n + 1, sizeof *roots);
	if (!roots)
		return EXIT_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		roots[i] = json_string_value(json_array_get(t, i));
		if (create_roots && roots[i] && roots[i][0] == '/' && access(roots[i], F_OK) < 0)
			mkdir(roots[i], 0700);
	}
	const char **keep[3] = {NULL, NULL, NULL};
	nono_snap_options o;
	char objects[PATH_MAX + 16];
	rb_options_from_json(json_object_get(s->meta, "exclusion"), &o, keep);
	rb_objects_dir(base, objects, sizeof objects);
	o.objects_dir = objects;
	nono_error err = {0};
	int rc = nono_snap_open(s->dir, roots, n, &o, &s->snap, &err);
	for (int k = 0; k < 3; k++)
		free(keep[k]);
	free(roots);
	if (rc < 0) {
		cli_err("rollback: session %s: %s", id, err.message);
		return EXIT_INTERNAL;
	}
	return -1;
}

static int parse_number(const char *arg, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v >= UINT32_MAX || arg[0] == '-')
		return cli_usage_error(sub, "'%s' is not a snapshot number", arg);
	*out = (uint32_t)v;
	return -1;
}

static int cmd_list(void)
{
	char base[PATH_MAX];
	if (rb_state_dir("rollback", base, sizeof base) < 0)
		return EXIT_INTERNAL;
	struct dirent **names;
	int n = scandir(base, &names, NULL, alphasort);
	if (n < 0) {
		cli_err("rollback: %s: %s", base, strerror(errno));
		return EXIT_INTERNAL;
	}
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX + 320];
		snprintf(dir, sizeof dir, "%s/%s", base, names[i]->d_name);
		json_t *m = id_ok(names[i]->d_name) ? meta_load(dir) : NULL;
		if (m) {
			json_t *cmd = json_object_get(m, "command"), *ec = json_object_get(m, "exit_code");
			char line[256] = "";
			for (size_t k = 0; k < json_array_size(cmd); k++)
				snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", k ? " " : "",
					 json_is_string(json_array_get(cmd, k))
						 ? json_string_value(json_array_get(cmd, k))
						 : "?");
			char exit_s[24] = "-";
			if (json_is_integer(ec))
				snprintf(exit_s, sizeof exit_s, "%" JSON_INTEGER_FORMAT, json_integer_value(ec));
			const char *started = json_string_value(json_object_get(m, "started"));
			printf("%-26s %-20s snapshots=%-3" JSON_INTEGER_FORMAT " exit=%-4s %s\n",
			       names[i]->d_name, started ? started : "-",
			       json_integer_value(json_object_get(m, "snapshot_count")), exit_s, line);
			json_decref(m);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

static int cmd_show(const char *id)
{
	struct session s = {0};
	int status = session_open(id, false, &s);
	if (status >= 0) {
		session_close(&s);
		return status;
	}
	char *text = json_dumps(s.meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("session %s (%s)\n%s\n", id, s.dir, text ? text : "");
	free(text);
	long pending = nono_snap_restore_pending(s.snap);
	if (pending >= 0)
		printf("an interrupted restore to snapshot %ld: run 'nono rollback restore %s %ld'\n",
		       pending, id, pending);
	for (uint32_t i = 0; i < nono_snap_count(s.snap); i++) {
		nono_snap_manifest *m = NULL;
		nono_error err = {0};
		char hex[65];
		if (nono_snap_load_manifest(s.snap, i, &m, &err) < 0) {
			printf("snapshot %" PRIu32 ": %s\n", i, err.message);
			status = EXIT_INTERNAL;
			continue;
		}
		nono_sha256_hex(m->merkle_root, hex);
		printf("snapshot %" PRIu32 "  %s  %zu entries  merkle %s\n", i, m->timestamp,
		       m->n_entries, hex);
		nono_snap_manifest_free(m);
	}
	session_close(&s);
	return status < 0 ? 0 : status;
}

/* diff and restore: SESSION [N] (N defaults to 0, the state before the command). */
static int cmd_diff_restore(int argc, char **argv, bool apply)
{
	if (argc < 2 || argc > 3)
		return cli_usage_error(sub, "usage: nono rollback %s SESSION [N]", argv[0]);
	uint32_t n = 0;
	int status = argc == 3 ? parse_number(argv[2], &n) : -1;
	struct session s = {0};
	if (status < 0)
		status = session_open(argv[1], apply, &s);
	nono_snap_change *c = NULL;
	size_t nc = 0;
	nono_error err = {0};
	if (status < 0) {
		long pending = nono_snap_restore_pending(s.snap);
		if (apply && pending >= 0 && pending != (long)n)
			cli_err("rollback: an interrupted restore to snapshot %ld is left unfinished; "
				"restoring to %" PRIu32 " instead", pending, n);
		int rc = apply ? nono_snap_restore(s.snap, n, &c, &nc, &err)
			       : nono_snap_restore_diff(s.snap, n, &c, &nc, &err);
		rb_progress_done();
		if (rc < 0) {
			cli_err("rollback %s: %s%s", argv[0], err.message,
				apply ? " (run the restore again to finish it)" : "");
			status = rc == -ENOENT ? EXIT_USAGE : EXIT_INTERNAL;
		} else {
			fprintf(stderr, "%s %s to snapshot %" PRIu32 ": %zu change%s%s\n",
				apply ? "restored" : "restoring", argv[1], n, nc, nc == 1 ? "" : "s",
				nc ? ":" : "");
			rb_print_changes(c, nc, SIZE_MAX);
			status = 0;
		}
	}
	nono_snap_changes_free(c, nc);
	session_close(&s);
	return status;
}

static int cmd_verify(const char *id)
{
	struct session s = {0};
	int status = session_open(id, false, &s);
	if (status < 0) {
		nono_error err = {0};
		int rc = nono_snap_verify(s.snap, &err);
		rb_progress_done();
		if (rc < 0) {
			printf("session %s: FAILED: %s\n", id, err.message);
			status = 1;
		} else {
			printf("session %s: OK (%" PRIu32 " snapshots, every manifest's Merkle root and "
			       "every object's hash checked)\n", id, nono_snap_count(s.snap));
			status = 0;
		}
	}
	session_close(&s);
	return status;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

/* "30d", "12h", "45m", "90s", "2w", or plain seconds. */
static int parse_age(const char *arg, double *secs)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	static const struct {
		char unit;
		double mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
	double mult = *end ? 0 : 1;
	for (size_t i = 0; i < N_ELEMENTS(units) && *end; i++)
		if (end[0] == units[i].unit && !end[1])
			mult = units[i].mult;
	if (errno || end == arg || mult == 0 || v < 0)
		return cli_usage_error(sub, "--older-than '%s': expected a duration (30d, 12h, 45m, 90s)",
				       arg);
	*secs = v * mult;
	return -1;
}

/* Delete the shared objects no remaining session names. */
static int gc(const char *base)
{
	struct dirent **names;
	int n = scandir(base, &names, NULL, alphasort);
	if (n < 0)
		return EXIT_INTERNAL;
	char **dirs = calloc((size_t)n + 1, sizeof *dirs);
	size_t nd = 0;
	for (int i = 0; i < n; i++) {
		if (dirs && id_ok(names[i]->d_name) &&
		    asprintf(&dirs[nd], "%s/%s", base, names[i]->d_name) >= 0)
			nd++;
		free(names[i]);
	}
	free(names);
	char objects[PATH_MAX + 16];
	rb_objects_dir(base, objects, sizeof objects);
	uint64_t removed = 0;
	nono_error err = {0};
	int rc = dirs ? nono_snap_gc(objects, (const char *const *)dirs, nd, &removed, &err) : -ENOMEM;
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	if (rc < 0) {
		cli_err("rollback cleanup: objects kept: %s", err.message[0] ? err.message : strerror(-rc));
		return EXIT_INTERNAL;
	}
	fprintf(stderr, "removed %" PRIu64 " stored object%s no session needs\n", removed,
		removed == 1 ? "" : "s");
	return 0;
}

static int cmd_cleanup(int argc, char **argv)
{
	double age = 30 * 86400.0;
	int status = -1;
	if (argc == 3 && !strcmp(argv[1], "--older-than"))
		status = parse_age(argv[2], &age);
	else if (argc != 1)
		return cli_usage_error(sub, "usage: nono rollback cleanup [--older-than DURATION]");
	char base[PATH_MAX];
	if (status >= 0 || rb_state_dir("rollback", base, sizeof base) < 0)
		return status >= 0 ? status : EXIT_INTERNAL;
	DIR *d = opendir(base);
	struct dirent *de;
	size_t removed = 0;
	status = 0;
	while (d && (de = readdir(d))) {
		char dir[PATH_MAX + 300];
		struct stat st;
		snprintf(dir, sizeof dir, "%s/%s", base, de->d_name);
		if (!id_ok(de->d_name) || lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    difftime(time(NULL), st.st_mtime) < age)
			continue;
		if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
			cli_err("rollback cleanup: %s: %s", dir, strerror(errno));
			status = EXIT_INTERNAL;
		} else {
			removed++;
		}
	}
	if (d)
		closedir(d);
	fprintf(stderr, "removed %zu session%s\n", removed, removed == 1 ? "" : "s");
	return removed && status == 0 ? gc(base) : status;
}

int cmd_rollback(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help_rollback(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	const char *what = argv[1];
	if (!strcmp(what, "list") && argc == 2)
		return cmd_list();
	if (!strcmp(what, "show") && argc == 3)
		return cmd_show(argv[2]);
	if (!strcmp(what, "verify") && argc == 3)
		return cmd_verify(argv[2]);
	if (!strcmp(what, "diff") || !strcmp(what, "restore"))
		return cmd_diff_restore(argc - 1, argv + 1, !strcmp(what, "restore"));
	if (!strcmp(what, "cleanup"))
		return cmd_cleanup(argc - 1, argv + 1);
	return cli_usage_error(sub, "unknown or incomplete 'nono rollback %s'", what);
}
