/* snapshot_match.c — what a snapshot leaves out: default directory names, exact names, globs,
 * force-includes, and .gitignore files (the common subset of gitignore(5): blank lines and `#`
 * comments, `!` negation, trailing `/` for directories only, a `/` at the start or inside anchors
 * the pattern to the .gitignore's directory, `**` crosses directories). */
#include "snapshot_int.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>

struct snap_rule {
	char *pat;      /* without `!`, leading `/` or trailing `/` */
	char *base;     /* directory of the .gitignore, relative to the root ("" for the root) */
	bool negate, dir_only, anchored;
};

static const char *const default_excludes[] = {
	"node_modules", "target", ".venv", "venv", "__pycache__", "build", "dist", ".tox", ".gradle",
	".mypy_cache", ".pytest_cache", NULL,
};

const char *const *nono_snap_default_excludes(void)
{
	return default_excludes;
}

/* One bracket expression at pat ("[...]"): matched with fnmatch on the single character. Returns
 * the length of the expression, 0 when it is not a complete one (then '[' is a literal). */
static size_t class_len(const char *pat)
{
	size_t i = 1;
	if (pat[i] == '!' || pat[i] == '^')
		i++;
	if (pat[i] == ']')
		i++;
	while (pat[i] && pat[i] != ']')
		i++;
	return pat[i] == ']' ? i + 1 : 0;
}

static bool class_match(const char *pat, size_t len, char c)
{
	char p[256], s[2] = {c, 0};
	if (len >= sizeof p || c == '/')
		return false;
	memcpy(p, pat, len);
	p[len] = '\0';
	if (p[1] == '^')
		p[1] = '!';
	return fnmatch(p, s, 0) == 0;
}

static bool glob_star2(const char *pat, const char *s)
{
	while (*pat == '*')
		pat++;
	if (*pat == '/') {
		/* "**" + "/": zero or more whole directories */
		if (snap_glob(pat + 1, s))
			return true;
		for (const char *q = s; *q; q++)
			if (*q == '/' && snap_glob(pat + 1, q + 1))
				return true;
		return false;
	}
	for (const char *q = s;; q++) {
		if (snap_glob(pat, q))
			return true;
		if (!*q)
			return false;
	}
}

bool snap_glob(const char *pat, const char *s)
{
	for (;; pat++, s++) {
		switch (*pat) {
		case '\0':
			return *s == '\0';
		case '*':
			if (pat[1] == '*')
				return glob_star2(pat, s);
			for (const char *q = s;; q++) {
				if (snap_glob(pat + 1, q))
					return true;
				if (!*q || *q == '/')
					return false;
			}
		case '?':
			if (!*s || *s == '/')
				return false;
			break;
		case '[': {
			size_t n = class_len(pat);
			if (n == 0) {
				if (*s != '[')
					return false;
				break;
			}
			if (!*s || !class_match(pat, n, *s))
				return false;
			pat += n - 1;
			break;
		}
		case '\\':
			if (pat[1])
				pat++;
			/* fall through */
		default:
			if (*pat != *s)
				return false;
		}
	}
}

static int rule_add(struct snap_rules *r, char *line, const char *rel)
{
	size_t len = strlen(line);
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\r') &&
	       !(len >= 2 && line[len - 2] == '\\'))
		line[--len] = '\0';
	if (len == 0 || line[0] == '#')
		return 0;
	struct snap_rule rule = {0};
	char *p = line;
	if (*p == '!') {
		rule.negate = true;
		p++;
	} else if (*p == '\\' && (p[1] == '!' || p[1] == '#')) {
		p++;
	}
	len = strlen(p);
	if (len && p[len - 1] == '/') {
		rule.dir_only = true;
		p[--len] = '\0';
	}
	if (*p == '/') {
		rule.anchored = true;
		p++;
	}
	if (strchr(p, '/'))
		rule.anchored = true;
	if (!*p)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct snap_rule *nv = realloc(r->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = cap;
	}
	rule.pat = strdup(p);
	rule.base = strdup(rel);
	if (!rule.pat || !rule.base) {
		free(rule.pat);
		free(rule.base);
		return -ENOMEM;
	}
	r->v[r->n++] = rule;
	return 0;
}

int snap_rules_load(struct snap_rules *r, int dirfd, const char *rel)
{
	cleanup_fd int fd = openat(dirfd, ".gitignore", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0; /* none, or a symlink: not followed */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
		return 0;
	cleanup_free char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t got = read(fd, buf, (size_t)st.st_size);
	if (got < 0)
		return 0;
	buf[got] = '\0';
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int rc = rule_add(r, line, rel);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void snap_rules_truncate(struct snap_rules *r, size_t n)
{
	while (r->n > n) {
		r->n--;
		free(r->v[r->n].pat);
		free(r->v[r->n].base);
	}
}

void snap_rules_free(struct snap_rules *r)
{
	snap_rules_truncate(r, 0);
	free(r->v);
	memset(r, 0, sizeof *r);
}

/* The last matching rule decides (git's order: outer files first, later lines win). */
static bool gitignored(const struct snap_rules *r, const char *name, const char *rel, bool is_dir)
{
	for (size_t i = r->n; i-- > 0;) {
		const struct snap_rule *rule = &r->v[i];
		if (rule->dir_only && !is_dir)
			continue;
		bool hit;
		if (rule->anchored) {
			size_t bl = strlen(rule->base);
			if (bl && (strncmp(rel, rule->base, bl) != 0 || rel[bl] != '/'))
				continue;
			hit = snap_glob(rule->pat, rel + (bl ? bl + 1 : 0));
		} else {
			hit = snap_glob(rule->pat, name);
		}
		if (hit)
			return !rule->negate;
	}
	return false;
}

static bool any_glob(char *const *v, const char *name, const char *rel)
{
	for (size_t i = 0; v && v[i]; i++)
		if (snap_glob(v[i], strchr(v[i], '/') ? rel : name))
			return true;
	return false;
}

bool snap_excluded(const nono_snap *s, const struct snap_rules *r, const char *name,
		   const char *rel, bool is_dir)
{
	bool out = false;
	/* A killed restore's temporaries are always seen, so the next restore deletes them. */
	if (!strncmp(name, SNAP_RESTORE_TMP, strlen(SNAP_RESTORE_TMP)))
		return false;
	if (s->use_defaults && is_dir)
		for (size_t i = 0; default_excludes[i] && !out; i++)
			out = strcmp(name, default_excludes[i]) == 0;
	for (size_t i = 0; s->excl_names[i] && !out; i++)
		out = strcmp(name, s->excl_names[i]) == 0;
	if (!out)
		out = any_glob(s->excl_globs, name, rel);
	if (!out && s->use_gitignore)
		out = gitignored(r, name, rel, is_dir);
	return out && !any_glob(s->force, name, rel);
}
