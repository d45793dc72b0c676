/* caps_int.h — the capability set's representation, shared by caps.c (building it) and
 * caps_query.c (asking it); nothing else looks inside. */
#ifndef NONO_CAPS_INT_H
#define NONO_CAPS_INT_H
#include "internal.h"

struct grant {
	char *original;
	char *resolved;
	nono_access access;
	bool is_file;
	nono_source source;
	char *group; /* NONO_SOURCE_GROUP: the group's name (owned), else NULL */
	dev_t dev;   /* what `resolved` named when the grant was made: landlock.c refuses a grant */
	ino_t ino;   /* whose path names another object by the time it applies */
};

struct nono_caps {
	struct grant *grants;
	size_t ngrants, grants_cap;
	nono_net_mode net;
	uint16_t proxy_port;
	bool proxy_v6; /* the proxy listens on ::1, not 127.0.0.1 */
	char **socks; /* canonical unix socket paths (socket files or directories) */
	size_t nsocks;
	uint16_t *ports; /* loopback bind ports, unique, in insertion order */
	size_t nports;
	bool userns; /* user namespaces allowed inside (nono_caps_set_user_namespaces) */
	struct nono_direct *direct; /* internal destinations reached directly (caps_net.c) */
	size_t ndirect;
	char **prules; /* platform (Seatbelt) rules, recorded; caps_meta.c */
	size_t nprules;
	char **denies; /* denied paths (caps_deny.c): canonical when they existed, unique */
	size_t ndenies;
	/* caps.c's parent-directory cache for canonicalising runs of grants in one directory (the
	 * /etc entries): not copied by clone, freed with the set. */
	char *pc_seen, *pc_orig, *pc_resolved;
	dev_t pc_dev; /* the resolved directory pc_orig named when cached */
	ino_t pc_ino;
	bool pc_canonical; /* pc_orig is its own resolution (no symlink, "." or "..") */
};

/* One address of a nono_caps_allow_internal entry: `host` as the caller wrote it (each address
 * owns its copy), the resolved address and the port. */
struct nono_direct {
	char *host;
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	char text[46]; /* canonical text of addr */
	uint16_t port;
};
/* caps_net.c: free / deep-copy the direct list (caps.c's free and clone call them). */
NONO_HIDDEN void nono_caps_direct_free(nono_caps *caps);
NONO_HIDDEN int nono_caps_direct_copy(nono_caps *dst, const nono_caps *src);


/* "read", "write", "read-write", or "?" for a value that is not one (messages only). */
NONO_HIDDEN const char *nono_caps_access_label(nono_access a);
/* caps_meta.c: the parts of a grant and a set that never decide access (source, platform rules).
 * meta_free releases them; meta_clone copies them into `dst` (grants already copied one to one). */
NONO_HIDDEN void nono_caps_meta_free(nono_caps *caps);
NONO_HIDDEN int nono_caps_meta_clone(nono_caps *dst, const nono_caps *src);
#endif
