/* profile.h — `nono run --profile NAME|FILE` (and `nono why --profile`, `nono profile`): JSON
 * profiles, built in (profiles.json, compiled in) or from the user's profile directory
 * ($XDG_CONFIG_HOME/nono/profiles, default ~/.config/nono/profiles), with "extends", groups of the
 * embedded policy, filesystem grants and denials, network, environment and the working directory's
 * access. profile.c loads and merges them; profile_apply.c turns one into grants, each with where it
 * came from; profile_cmd.c is `nono profile list|show`. */
#ifndef NONO_CLI_PROFILE_H
#define NONO_CLI_PROFILE_H

#include "nono.h"
#include "util.h"

#include <jansson.h>

/* A grant or denial a profile names (expanded when applied). */
struct prof_path {
	const char *raw;    /* as written ("~/.claude", "$WORKDIR/x"; borrowed from the document) */
	nono_access access; /* 0 for a denial */
	bool file;          /* a *_file key: a single file */
	const char *from;   /* the profile that named it (borrowed from the profile's chain) */
};

/* Where one grant or denial of the final policy came from. */
struct prof_origin {
	char *path;         /* expanded path (owned) */
	nono_access access; /* 0: a denial */
	bool file, skipped; /* skipped: the path does not exist, nothing was granted */
	char *from;         /* "group NAME", "profile NAME", "profile NAME (workdir)" (owned) */
};

#define PROFILE_DEPTH_MAX 8 /* "extends" chain length */

struct profile {
	char *name;             /* as asked for */
	char *origin;           /* "built-in", or the file it was read from */
	const char *description;
	nono_policy *policy;    /* the embedded policy: a profile's groups are its groups */
	json_t *docs[PROFILE_DEPTH_MAX]; /* the documents of the chain (strings borrowed from them) */
	size_t ndocs;
	struct strvec chain;    /* profile names, base first */
	struct strvec groups;   /* deduplicated, in order */
	struct prof_path *paths;
	size_t npaths;
	int net_block;          /* -1: not said; 0/1 */
	struct strvec domains;  /* the profiles' own network.allow_domain */
	char **env;             /* "NAME=VALUE", owned, NULL-terminated (nono_strv_free) */
	size_t nenv;
	int inherit_env;        /* -1: not said */
	nono_access workdir_access; /* 0: no grant for the working directory */
	/* filled by profile_apply */
	struct prof_origin *origins;
	size_t norigins;
	nono_policy_proxy *proxy;    /* the groups' proxy settings (owned; NULL: none) */
	nono_policy_resolved *resolved;
	/* network.custom_credentials / intercept / intercept_ca_dir (profile_net.c) */
	json_t *routes;               /* merged NAME → route (owned; NULL: none) */
	int intercept;                /* 1: on (the last profile of the chain that says wins) */
	const char *intercept_ca_dir; /* NULL: a per-session directory (borrowed from a document) */
	const char *intercept_from;   /* the profile that said it */
	char **net_args;              /* "NAME=VALUE" the route options borrow (owned) */
	size_t nnet_args;
};

/* Load profile `arg` (a name: the user's directory first, then the built-ins; a path when it
 * contains '/' or ends in ".json") with its "extends" chain into *p (zeroed by the caller).
 * Returns -1 on success, else an exit status (after printing why). */
int profile_load(const char *arg, struct profile *p);
void profile_free(struct profile *p);

/* Add the profile's groups (with the embedded policy's required groups), its filesystem grants,
 * the working directory `workdir` (NULL: the current one) with the profile's access, and its deny
 * paths (nono_caps_deny_path) to `caps`, recording where each came from. Returns -1 or an exit
 * status (after printing why). */
int profile_apply(struct profile *p, nono_caps *caps, const char *workdir);

/* Where `resolved` (a grant's resolved path) came from, or NULL. */
const char *profile_origin_of(const struct profile *p, const char *resolved);

/* The built-in profiles' JSON object text (profiles.json). */
const char *profile_builtin_json(void);
/* The user's profile directory into buf ("" when neither XDG_CONFIG_HOME nor HOME is set). */
void profile_user_dir(char *buf, size_t len);

#endif
