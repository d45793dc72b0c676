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
	char **denies; /* denied paths (caps_deny.c): canonical when they existed, unique */
	size_t ndenies;
};

/* caps_deny.c: the deny path covering canonical absolute `p` (equal or below), or NULL. */
NONO_HIDDEN const char *nono_caps_denied_by(const nono_caps *caps, const char *p);

/* "read", "write", "read-write", or "?" for a value that is not one (messages only). */
NONO_HIDDEN const char *nono_caps_access_label(nono_access a);
#endif
