/* exec_resolve.c — find the program nono_exec runs, before the fork, as execvp would in the
 * child: in PATH of the child's environment (else the default path), relative to the child's
 * working directory. Done in the parent so that "not found" and "not executable" are reported as
 * such (-ENOENT / -EACCES), not as a failure of the sandboxed child. */
#include "exec_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* 1: executable regular file; 0: missing; -EACCES: exists but is not an executable file. */
static int probe_program(int dirfd, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, 0) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -EACCES;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (faccessat(dirfd, path, X_OK, AT_EACCESS) < 0)
		return -EACCES;
	return 1;
}

/* A path with a slash is taken as it is (relative to the child's cwd). */
static char *resolve_literal(const char *argv0, int dirfd, int *rc, nono_error *err)
{
	int p = probe_program(dirfd, argv0);
	if (p == 0) {
		*rc = nono_fail(err, -ENOENT, "program not found: %s", argv0);
		return NULL;
	}
	if (p < 0) {
		*rc = nono_fail(err, -EACCES, "not an executable file: %s", argv0);
		return NULL;
	}
	char *s = strdup(argv0);
	if (!s)
		*rc = nono_fail(err, -ENOMEM, "out of memory");
	return s;
}

char *nono_exec_resolve_program(const char *argv0, char *const *envp, int cwd_fd, int *rc,
				nono_error *err)
{
	int dirfd = cwd_fd >= 0 ? cwd_fd : AT_FDCWD;
	if (strchr(argv0, '/'))
		return resolve_literal(argv0, dirfd, rc, err);
	const char *path = env_get(envp, "PATH");
	if (!path)
		path = NONO_DEFAULT_PATH;
	bool saw_eacces = false;
	size_t alen = strlen(argv0);
	for (const char *p = path;;) {
		const char *colon = strchrnul(p, ':');
		size_t dlen = (size_t)(colon - p);
		char *cand = malloc(dlen + alen + 3);
		if (!cand) {
			*rc = nono_fail(err, -ENOMEM, "out of memory");
			return NULL;
		}
		if (dlen == 0) /* an empty PATH element means the current directory */
			snprintf(cand, dlen + alen + 3, "./%s", argv0);
		else
			snprintf(cand, dlen + alen + 3, "%.*s/%s", (int)dlen, p, argv0);
		int r = probe_program(dirfd, cand);
		if (r == 1)
			return cand;
		free(cand);
		if (r < 0)
			saw_eacces = true;
		if (!*colon)
			break;
		p = colon + 1;
	}
	if (saw_eacces)
		*rc = nono_fail(err, -EACCES,
				"not executable: %s (found in PATH, but not an executable file)", argv0);
	else
		*rc = nono_fail(err, -ENOENT, "program not found in PATH: %s (PATH=%s)", argv0, path);
	return NULL;
}
