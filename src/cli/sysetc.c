/* sysetc.c — see sysetc.h: /etc in the default system set, entry by entry, without its secrets.
 *
 * Why entry by entry: a Landlock rule on a directory covers everything below it, and nothing can
 * take a file back out of it (Landlock has no deny rule, through ABI 7), so granting /etc made
 * /etc/shadow readable to any command nono ran as root. Each entry of /etc is granted on its own
 * instead, and the directories that hold a secret are descended into the same way; the secret
 * itself is simply never granted. Symlinks are skipped: Landlock checks the file a link leads to,
 * so a link into /usr works through /usr's grant and a link elsewhere (/etc/mtab, resolv.conf into
 * /run) was never readable through the /etc grant either. The cost: /etc itself cannot be listed.
 */
#include "sysetc.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What is withheld: entries of the directory `dir` (relative to /etc, "" = /etc itself) whose name
 * matches `glob`. Reviewable; docs/cli.md "System paths" lists the same. */
static const struct secret {
	const char *dir, *glob, *why;
} secrets[] = {
	{"", "shadow", "password hashes"},
	{"", "shadow-", "password hashes (backup)"},
	{"", "gshadow", "group password hashes"},
	{"", "gshadow-", "group password hashes (backup)"},
	{"", "sudoers*", "sudo rules (sudoers, sudoers.d)"},
	{"", "krb5.keytab", "Kerberos host keys"},
	{"", "ipsec.secrets", "IPsec keys"},
	{"", "wireguard", "WireGuard private keys"},
	{"", "letsencrypt", "TLS private keys"},
	{"", "credstore*", "systemd credentials"},
	{"", "openvpn", "VPN keys"},
	{"ssh", "*_key", "SSH host private keys"},
	{"ssl", "private", "TLS private keys"},
	{"pki/tls", "private", "TLS private keys (Fedora layout)"},
	{"security", "opasswd", "old password hashes"},
	{"ppp", "*-secrets", "PPP passwords"},
	{"NetworkManager", "system-connections", "Wi-Fi and VPN passwords"},
	{"wpa_supplicant", "*.conf", "Wi-Fi passwords"},
	{"mysql", "debian.cnf", "MySQL maintenance password"},
};

/* Can `name` match `glob` at all, judging by the glob's literal start? fnmatch(3) costs ~0.3 us a
 * call and /etc has ~150 entries against 11 globs at its top level: this skips nearly all of them
 * (issue 10's startup target). False only when fnmatch would say no match. */
static bool may_match(const char *glob, const char *name)
{
	for (; *glob && !strchr("*?[\\", *glob); glob++, name++)
		if (*glob != *name)
			return false;
	return true;
}

static bool withheld(const char *dir, const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(secrets); i++)
		if (!strcmp(secrets[i].dir, dir) && may_match(secrets[i].glob, name) &&
		    !fnmatch(secrets[i].glob, name, 0))
			return true;
	return false;
}

/* Does a secret lie below `rel` (so it must be descended into rather than granted whole)? */
static bool holds_secret(const char *rel)
{
	size_t n = strlen(rel);
	for (size_t i = 0; i < N_ELEMENTS(secrets); i++) {
		const char *d = secrets[i].dir;
		if (!strncmp(d, rel, n) && (d[n] == '\0' || d[n] == '/'))
			return true;
	}
	return false;
}

/* Grant the entries of /etc/`rel` (rel "" = /etc). Returns 0 or -1 (out of memory or a grant
 * error, after printing why). */
static int grant_dir(nono_caps *caps, const char *rel, sysetc_cb withheld_cb, void *ctx,
		     int depth)
{
	char dpath[4096];
	snprintf(dpath, sizeof dpath, "/etc%s%s", *rel ? "/" : "", rel);
	struct dirent **ents;
	int n = scandir(dpath, &ents, NULL, alphasort); /* sorted: --dry-run lists a stable order */
	if (n < 0)
		return 0; /* "when present"; an unreadable directory stays ungranted */
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const struct dirent *e = ents[i];
		if (rc)
			continue;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[4096], sub[4096];
		int pl = snprintf(path, sizeof path, "%s/%s", dpath, e->d_name);
		int sl = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (pl < 0 || sl < 0 || (size_t)pl >= sizeof path || (size_t)sl >= sizeof sub)
			continue; /* no such path fits PATH_MAX: nothing to grant */
		if (withheld(rel, e->d_name)) {
			if (withheld_cb)
				withheld_cb(path, ctx);
			continue;
		}
		/* d_type saves an lstat per entry (startup cost); filesystems without it say
		 * DT_UNKNOWN. */
		unsigned char type = e->d_type;
		struct stat st;
		if (type == DT_UNKNOWN) {
			if (lstat(path, &st) < 0)
				continue;
			type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (type == DT_LNK)
			continue;
		bool dir = type == DT_DIR;
		if (dir && holds_secret(sub) && depth < 8) {
			rc = grant_dir(caps, sub, withheld_cb, ctx, depth + 1);
			continue;
		}
		nono_error err = {0};
		int r = dir ? nono_caps_allow_path(caps, path, NONO_ACCESS_READ, &err)
					    : nono_caps_allow_file(caps, path, NONO_ACCESS_READ, &err);
		/* Vanished or unreadable meanwhile: not granted, as "when present" says. */
		if (r < 0 && r != -ENOENT && r != -EACCES && r != -ELOOP) {
			cli_err("system path %s: %s (use --no-system-paths and grant what you need)",
				path, err.message);
			rc = -1;
		}
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

int sysetc_grant(nono_caps *caps, sysetc_cb withheld_cb, void *ctx)
{
	return grant_dir(caps, "", withheld_cb, ctx, 0);
}
