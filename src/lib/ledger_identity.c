/* ledger_identity.c — the identity of the program a session runs (nono_exec_identity): resolved
 * as nono_exec resolves it (exec_resolve.c), canonicalised, and hashed, before launch. */
#include "exec_int.h"
#include "snapshot_int.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int nono_exec_identity(const char *argv0, const char *const *env, bool inherit_env,
		       const char *cwd, char **path, uint8_t sha256[32], nono_error *err)
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
	if ((rc = snap_sha256_fd(fd, sha256)) < 0)
		return nono_fail(err, rc, "%s: cannot hash: %s", full, strerror(-rc));
	if (!(*path = strdup(full)))
		return nono_fail(err, -ENOMEM, "out of memory");
	return 0;
}
