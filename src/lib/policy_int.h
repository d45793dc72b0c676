/* policy_int.h — a parsed policy document, shared by policy.c (parsing, validating, naming) and
 * policy_resolve.c (turning groups into grants). The validated jansson tree is kept as it is:
 * policy.c has checked every field, so policy_resolve.c reads it without checking types again. */
#ifndef NONO_POLICY_INT_H
#define NONO_POLICY_INT_H
#include "internal.h"

#include <jansson.h>

struct nono_policy {
	json_t *root;     /* the validated document (owned) */
	json_t *groups;   /* root["groups"] (borrowed from root) */
	const char **names; /* group names, sorted (borrowed from root) */
	size_t nnames;
};

/* The group object, or NULL for an unknown name. */
NONO_HIDDEN json_t *nono_policy_group(const nono_policy *p, const char *name);
/* Does a group's "platform" (NULL or absent: every platform) include Linux? */
NONO_HIDDEN bool nono_policy_group_on_linux(json_t *group);
/* Expand "~", "$HOME", "$TMPDIR" and the XDG variables at the start of `path` into a new string
 * (caller frees). Errors: -EINVAL (HOME unset or relative), -ENOMEM. */
NONO_HIDDEN int nono_policy_expand(const char *path, char **out, nono_error *err);
/* Is `path` a prefix form nono_policy_expand knows (absolute, "~", a known variable)? */
NONO_HIDDEN bool nono_policy_path_form_ok(const char *path);

#endif
