/* keyring.h — keyring:// credential sources: a route's secret read from the freedesktop Secret
 * Service (gnome-keyring, KeePassXC, KWallet's bridge) over the session D-Bus (keyring.c). */
#ifndef NONO_PROXY_KEYRING_H
#define NONO_PROXY_KEYRING_H

#include "internal.h"

#include <stddef.h>

/* The service name of items stored by nono (and by always-further/nono, whose `keyring` crate stores
 * items with the attributes service=nono, username=NAME). */
#define NP_KEYRING_SERVICE "nono"

/* True when `source` names the secret service: "keyring://NAME", "keyring://SERVICE/ACCOUNT" or a
 * bare NAME (no "scheme://"). */
bool np_keyring_is_source(const char *source);

/* Read the secret named by `source` (see np_keyring_is_source) into *secret (malloc'd, NUL-added,
 * at most `max` bytes; the caller wipes and frees it) and *len. The lookup runs in a short-lived
 * forked helper that loads libsecret; this process never loads GLib, opens no D-Bus connection and
 * starts no thread. Messages begin with "route PREFIX: credential SOURCE: " and never contain the
 * secret. Errors: -EINVAL (malformed source, secret over `max`), -ENOTSUP (no session bus, no secret
 * service running, libsecret not installed), -ENOENT (no such item), -EACCES (the item's collection
 * is locked), -ENOTUNIQ (several items match), -ETIMEDOUT (no answer in 30 s), -EIO (other D-Bus
 * errors), -ENOMEM, or a fork/pipe errno. */
int np_keyring_read(const char *prefix, const char *source, size_t max, unsigned char **secret,
		    size_t *len, nono_error *err);

/* Check a keyring source's form without looking it up (when a route is added): the name, and
 * the query of keyring://…?QUERY, where only decode=go-keyring is accepted (an unknown parameter or
 * value, a parameter without a value, or a fragment '#' is an error). 0 or -EINVAL. */
int np_keyring_check(const char *prefix, const char *source, nono_error *err);
/* The length of a keyring name without its query ("alice?decode=go-keyring" → 5), for the
 * placeholder variable's default name. */
size_t np_keyring_name_len(const char *name);
/* decode=go-keyring on a value read (keyring_decode.c): buf[0..*len) must be "go-keyring-base64:"
 * and standard base64 (padded or not) of non-empty UTF-8; decoded in place (the rest of the old
 * value wiped, *len updated, NUL-terminated). Errors (-EINVAL) name the source, never the value. */
int np_go_keyring_decode(const char *prefix, const char *source, unsigned char *buf, size_t *len,
			 nono_error *err);

#endif
