/* profile_apply.c — a loaded profile into grants (see profile.h): the embedded policy's required
 * groups and the profile's groups (through nono_policy_resolve), its filesystem grants, the
 * working directory; each grant remembers where it came from; deny paths inside a grant are
 * refused, since Landlock cannot take a path back out of a granted tree. */
#include "profile.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int add_origin(struct profile *p, const char *path, nono_access a, bool file, bool skipped,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int add_origin(struct profile *p, const char *path, nono_access a, bool file, bool skipped,
		      const char *fmt, ...)
{
	struct prof_origin *no = realloc(p->origins, (p->norigins + 1) * sizeof *no);
	if (!no)
		return -1;
	p->origins = no;
	char real[PATH_MAX];
	struct prof_origin *o = &no[p->norigins];
	*o = (struct prof_origin){strdup(realpath(path, real) ? real : path), a, file, skipped, NULL};
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&o->from, fmt, ap);
	va_end(ap);
	if (r < 0 || !o->path) {
		free(o->path);
		return -1;
	}
	p->norigins++;
	return 0;
}

const char *profile_origin_of(const struct profile *p, const char *resolved)
{
	for (size_t i = 0; p && i < p->norigins; i++)
		if (p->origins[i].access && !p->origins[i].skipped &&
		    !strcmp(p->origins[i].path, resolved))
			return p->origins[i].from;
	return NULL;
}

/* The embedded policy's required groups, then the profile's. */
static int resolve_groups(struct profile *p, nono_caps *caps)
{
	struct strvec names = {0};
	int status = -1;
	for (size_t i = 0; i < nono_policy_group_count(p->policy); i++) {
		const char *g = nono_policy_group_name(p->policy, i);
		if (nono_policy_group_required(p->policy, g) && strvec_push(&names, g) < 0)
			status = EXIT_INTERNAL;
	}
	for (size_t i = 0; i < p->groups.n && status < 0; i++)
		if (strvec_push(&names, p->groups.v[i]) < 0)
			status = EXIT_INTERNAL;
	nono_error err = {0};
	if (status < 0 &&
	    nono_policy_resolve(p->policy, names.v, names.n, caps, &p->resolved, &err) < 0) {
		cli_err("profile %s: %s", p->name, err.message);
		status = EXIT_USAGE;
	}
	strvec_free(&names);
	for (size_t i = 0; status < 0 && i < nono_policy_resolved_grant_count(p->resolved); i++) {
		nono_policy_grant g;
		nono_policy_resolved_grant(p->resolved, i, &g);
		if (add_origin(p, g.path, g.access, g.is_file, g.skipped, "group %s", g.group) < 0)
			status = EXIT_INTERNAL;
	}
	for (size_t i = 0; status < 0 && i < nono_policy_resolved_deny_count(p->resolved); i++) {
		nono_policy_deny d;
		nono_policy_resolved_deny(p->resolved, i, &d);
		if (add_origin(p, d.path, 0, false, false, "group %s", d.group) < 0)
			status = EXIT_INTERNAL;
	}
	return status;
}

/* "$WORKDIR" or "$WORKDIR/x" against the working directory; everything else by the library. */
static int expand(const char *raw, const char *workdir, char **out, nono_error *err)
{
	if (!strncmp(raw, "$WORKDIR", 8) && (raw[8] == '/' || !raw[8])) {
		*out = NULL;
		return asprintf(out, "%s%s", workdir, raw + 8) < 0 ? -ENOMEM : 0;
	}
	return nono_policy_expand_path(raw, out, err);
}

static int grant(nono_caps *caps, const char *path, nono_access a, bool file, nono_error *err)
{
	struct stat st;
	/* "allow"/"read"/"write" naming a file grants that file (profiles written for nono do so). */
	if (!file && stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		file = true;
	return file ? nono_caps_allow_file(caps, path, a, err)
		    : nono_caps_allow_path(caps, path, a, err);
}

static int apply_paths(struct profile *p, nono_caps *caps, const char *workdir)
{
	for (size_t i = 0; i < p->npaths; i++) {
		const struct prof_path *pp = &p->paths[i];
		nono_error err = {0};
		char *path = NULL;
		if (expand(pp->raw, workdir, &path, &err) < 0) {
			cli_err("profile %s: %s: %s", pp->from, pp->raw, err.message);
			return EXIT_USAGE;
		}
		int rc = pp->access ? grant(caps, path, pp->access, pp->file, &err) : 0;
		bool skipped = rc == -ENOENT;
		if (rc < 0 && !skipped) {
			cli_err("profile %s: %s: %s", pp->from, pp->raw, err.message);
			free(path);
			return EXIT_USAGE;
		}
		rc = add_origin(p, path, pp->access, pp->file, skipped, "profile %s", pp->from);
		free(path);
		if (rc < 0)
			return EXIT_INTERNAL;
	}
	return -1;
}

/* Every deny path joins the capability set (nono_caps_deny_path). One inside a grant is covered in
 * the command's private mount namespace; where none can be made the plan refuses the run (123) or,
 * with --best-effort, reports the downgrade. One outside every grant is denied by Landlock anyway. */
static int add_denies(struct profile *p, nono_caps *caps)
{
	for (size_t i = 0; i < p->norigins; i++) {
		const struct prof_origin *o = &p->origins[i];
		nono_error err = {0};
		if (!o->access && nono_caps_deny_path(caps, o->path, &err) < 0) {
			cli_err("profile %s: deny %s (%s): %s", p->name, o->path, o->from, err.message);
			return EXIT_USAGE;
		}
	}
	return -1;
}

int profile_apply(struct profile *p, nono_caps *caps, const char *workdir)
{
	char cwd[PATH_MAX];
	if (!workdir) {
		if (!getcwd(cwd, sizeof cwd)) {
			cli_err("profile %s: the working directory: %s", p->name, strerror(errno));
			return EXIT_USAGE;
		}
		workdir = cwd;
	}
	/* Built again (nono why after a dry run, tests): forget the last build's provenance. */
	for (size_t i = 0; i < p->norigins; i++) {
		free(p->origins[i].path);
		free(p->origins[i].from);
	}
	p->norigins = 0;
	nono_policy_resolved_free(p->resolved);
	p->resolved = NULL;
	int status = resolve_groups(p, caps);
	if (status < 0)
		status = apply_paths(p, caps, workdir);
	nono_error err = {0};
	if (status < 0 && p->workdir_access) {
		if (nono_caps_allow_path(caps, workdir, p->workdir_access, &err) < 0) {
			cli_err("profile %s: working directory %s: %s", p->name, workdir, err.message);
			return EXIT_USAGE;
		}
		if (add_origin(p, workdir, p->workdir_access, false, false, "profile %s (workdir)",
			       p->chain.n ? p->chain.v[p->chain.n - 1] : p->name) < 0)
			return EXIT_INTERNAL;
	}
	if (status < 0)
		nono_caps_deduplicate(caps);
	return status < 0 ? add_denies(p, caps) : status;
}
