/* rollback.h — `nono run --rollback` (rollback_run.c) and `nono rollback …` (rollback.c), over the
 * library's snapshot store (nono_snap_*). Sessions live in $XDG_STATE_HOME/nono/rollback/ID
 * (default ~/.local/state/nono/rollback/ID): objects/, snapshots/, session.json. */
#ifndef NONO_CLI_ROLLBACK_H
#define NONO_CLI_ROLLBACK_H

#include "nono.h"
#include "options.h"

#include <jansson.h>

/* One `nono run --rollback` session. */
struct rb_run {
	nono_snap *snap;
	char *id;          /* "20261204-203000-12345" */
	char *dir;         /* its directory */
	json_t *meta;      /* session.json as written so far */
};

/* "$XDG_STATE_HOME/nono/<sub>" (or ~/.local/state/nono/<sub>), created 0700, canonical, into buf.
 * Returns 0 or -1 (after printing why). */
int rb_state_dir(const char *sub, char *buf, size_t len);
/* The library's progress callback: on a terminal, after the first half second, one line on
 * stderr, redrawn at most ten times a second; rb_progress_done clears it. */
void rb_progress(void *ctx, const char *phase, uint64_t done, uint64_t total);
void rb_progress_done(void);
/* Snapshot options from a session's "exclusion" object (NULL: defaults). Strings borrowed from
 * `excl`; the vectors are malloc'd into *keep (free each with free()). */
void rb_options_from_json(json_t *excl, nono_snap_options *o, const char **keep[3]);

/* The objects directory every session shares: "<base>/.objects" into buf. */
void rb_objects_dir(const char *base, char *buf, size_t len);

/* Before the command: check that no writable grant reaches the store, take the baseline of the
 * writable directory grants. Returns -1 to go on, else an exit status (nothing was run). */
/* `tmpdir` (optional): the run's private temp dir, a writable grant that is not tracked. */
int rb_run_begin(const struct run_opts *o, const nono_caps *caps, const char *tmpdir,
		 struct rb_run *rb);
/* After it: take the after-snapshot, print what changed, finish session.json. */
void rb_run_end(struct rb_run *rb, int status);
void rb_run_free(struct rb_run *rb);
/* Write rb->meta to DIR/session.json (temporary name, then rename). 0 or -errno. */
int rb_meta_save(const char *dir, json_t *meta);
/* Print changes (at most `max` lines, then a count). */
void rb_print_changes(const nono_snap_change *c, size_t n, size_t max);

#endif
