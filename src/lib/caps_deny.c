/* caps_deny.c — deny paths in a capability set (nono_caps_deny_path): paths taken back out of the
 * grants around them. Enforced by nono_exec in a private mount namespace (mounts.c). */
#include "caps_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int nono_caps_deny_path(nono_caps *caps, const char *path, nono_error *err)
{
	nono_error_clear(err);
	if (!caps || !path || path[0] != '/')
		return nono_fail(err, -EINVAL, "deny path \"%.200s\": not an absolute path",
				 path ? path : "(null)");
	if (strlen(path) >= PATH_MAX)
		return nono_fail(err, -ENAMETOOLONG, "deny path too long");
	char real[PATH_MAX];
	const char *p = realpath(path, real) ? real : path;
	for (size_t i = 0; i < caps->ndenies; i++)
		if (!strcmp(caps->denies[i], p))
			return 0;
	char **nv = realloc(caps->denies, (caps->ndenies + 1) * sizeof *nv);
	if (!nv)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->denies = nv;
	if (!(nv[caps->ndenies] = strdup(p)))
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->ndenies++;
	return 0;
}

size_t nono_caps_deny_count(const nono_caps *caps)
{
	return caps ? caps->ndenies : 0;
}

const char *nono_caps_deny(const nono_caps *caps, size_t i)
{
	return caps && i < caps->ndenies ? caps->denies[i] : NULL;
}

/* `p` is `d` or below it (nono_path_within's rule for a directory; not called, so caps_query.c,
 * which asks us, is not asked back: no link-level cycle). */
static bool below(const char *p, const char *d)
{
	size_t n = strlen(d);
	return !strncmp(d, p, n) && (p[n] == '\0' || p[n] == '/' || (n == 1 && d[0] == '/'));
}

const char *nono_caps_denied_by(const nono_caps *caps, const char *p)
{
	for (size_t i = 0; caps && i < caps->ndenies; i++)
		if (below(p, caps->denies[i]))
			return caps->denies[i];
	return NULL;
}
