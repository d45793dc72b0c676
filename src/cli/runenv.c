/* runenv.c — see runenv.h: what `nono run` sets up around the command besides the policy: its
 * environment (through the library's nono_env_compose), the private temp dir, and the checks that
 * keep options from silently doing nothing (--audit-log, --proxy-port, --proxy-url). */
#include "runenv.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const tmp_names[] = {"TMPDIR", "TMP", "TEMP"};

/* ---- the private temp dir ---- */

int runtmp_create(char **out)
{
	/* Under the caller's TMPDIR when it names a directory, else /tmp; mode 0700 (mkdtemp). */
	const char *base = getenv("TMPDIR");
	struct stat st;
	if (!base || base[0] != '/' || stat(base, &st) < 0 || !S_ISDIR(st.st_mode))
		base = "/tmp";
	char *t;
	if (asprintf(&t, "%s/nono-run-XXXXXX", base) < 0) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	if (!mkdtemp(t)) {
		cli_err("creating the private temp dir under %s: %s (--no-tmp runs without one)",
			base, strerror(errno));
		free(t);
		return EXIT_INTERNAL;
	}
	*out = t;
	return -1;
}

/* Remove what `dfd` holds, never following a symlink: each entry is unlinked where it is, and a
 * directory is opened O_NOFOLLOW relative to its parent, so a name swapped for a symlink meanwhile
 * (by a process the command left behind, should one have survived) cannot redirect the removal. */
static int remove_under(int dfd, int depth)
{
	/* The command may have taken write permission off a directory of its own (Landlock does not
	 * mediate chmod): give it back through the fd, which is the directory itself, never a link. */
	(void)fchmod(dfd, 0700);
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			continue;
		if ((errno != EISDIR && errno != EPERM) || depth > 256) {
			rc = -1;
			continue;
		}
		int sub = openat(dirfd(d), e->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || remove_under(sub, depth + 1) < 0 ||
		    unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int runtmp_remove(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* the reaper removed it already */
	if (fd < 0 || remove_under(fd, 0) < 0 || rmdir(path) < 0) {
		cli_err("could not remove the private temp dir %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the environment ---- */

static bool copied_or_set(const struct run_opts *o, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < o->env_copy.n; i++)
		if (!strcmp(o->env_copy.v[i], name))
			return true;
	for (size_t i = 0; i < o->env.n; i++)
		if (!strncmp(o->env.v[i], name, n) && o->env.v[i][n] == '=')
			return true;
	return false;
}

/* HOME the command cannot read: no grant covers it and none lies inside it. Shells would greet
 * the user with "Permission denied" for every rc file, and tools that keep state under HOME would
 * fail; the private temp dir stands in for it (docs/cli.md "Environment"). */
static bool home_unreadable(const nono_caps *caps, const char *home)
{
	nono_decision d;
	if (nono_caps_query_path(caps, home, NONO_ACCESS_READ, &d, NULL) < 0 || d.allowed)
		return false;
	char real[PATH_MAX];
	if (!realpath(home, real))
		return true;
	size_t n = strlen(real);
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		nono_caps_grant(caps, i, &g);
		if (!strncmp(g.resolved, real, n) && (g.resolved[n] == '/' || n == 1))
			return false;
	}
	return true;
}

/* Replace or add NAME=VALUE in a library-made vector (its strings and the array are malloc'd). */
static int env_put(char ***envp, const char *name, const char *value)
{
	char *entry;
	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -1;
	size_t n = strlen(name), i = 0;
	char **v = *envp;
	for (; v[i]; i++)
		if (!strncmp(v[i], name, n) && v[i][n] == '=') {
			free(v[i]);
			v[i] = entry;
			return 0;
		}
	char **nv = realloc(v, (i + 2) * sizeof *nv);
	if (!nv) {
		free(entry);
		return -1;
	}
	nv[i] = entry;
	nv[i + 1] = NULL;
	*envp = nv;
	return 0;
}

/* The names nono sets itself in this run (proxy and temp dir variables), NULL-terminated. */
static void reserved_names(const struct run_opts *o, bool tmp, const char **out, size_t max)
{
	size_t n = 0;
	if (o->domains.n || o->ro.routes.n || o->proxy_url)
		for (const char *const *p = nono_proxy_env_names(); *p && n + 1 < max; p++)
			out[n++] = *p;
	for (size_t i = 0; tmp && i < N_ELEMENTS(tmp_names) && n + 1 < max; i++)
		out[n++] = tmp_names[i];
	/* A route's env://VAR holds a real secret: never passed on (--inherit-env withholds it,
	 * --env VAR is an error), whatever the placeholder variable is called. */
	for (size_t i = 0; i < o->ro.creds.n && n + 1 < max; i++) {
		const char *src = strchr(o->ro.creds.v[i], '=');
		if (src && !strncmp(src + 1, "env://", 6))
			out[n++] = src + 7;
	}
	out[n] = NULL;
}

static void report_dropped(char **dropped)
{
	if (!dropped || !dropped[0])
		return;
	size_t len = 0;
	for (char **p = dropped; *p; p++)
		len += strlen(*p) + 1;
	char *line = calloc(1, len + 1);
	if (!line)
		return;
	for (char **p = dropped; *p; p++) {
		if (p != dropped)
			strcat(line, " ");
		strcat(line, *p);
	}
	cli_err("--inherit-env: not passed: %s (loader variables never pass; the others are set by "
		"nono for this run)", line);
	free(line);
}

int runenv_build(const struct run_opts *o, const nono_caps *caps, const char *tmpdir, bool quiet,
		 char ***out)
{
	const char *reserved[64];
	reserved_names(o, tmpdir != NULL, reserved, N_ELEMENTS(reserved));
	nono_env_base base = o->clear_env     ? NONO_ENV_CLEAR
			     : o->inherit_env ? NONO_ENV_INHERIT
					      : NONO_ENV_BASIC;
	char **dropped = NULL;
	nono_error err = {0};
	if (nono_env_compose(base, o->env_copy.v, o->env.v, reserved, out,
			     o->inherit_env ? &dropped : NULL, &err) < 0) {
		cli_err("--env: %s", err.message);
		return err.code == -ENOMEM ? EXIT_INTERNAL : EXIT_USAGE;
	}
	if (!quiet)
		report_dropped(dropped);
	nono_strv_free(dropped);
	for (size_t i = 0; tmpdir && i < N_ELEMENTS(tmp_names); i++)
		if (env_put(out, tmp_names[i], tmpdir) < 0)
			goto oom;
	const char *home = getenv("HOME");
	if (tmpdir && base != NONO_ENV_CLEAR && home && home[0] == '/' &&
	    !copied_or_set(o, "HOME") && home_unreadable(caps, home) &&
	    env_put(out, "HOME", tmpdir) < 0)
		goto oom;
	return -1;
oom:
	cli_err("out of memory");
	return EXIT_INTERNAL;
}

/* ---- options that must not silently do nothing ---- */

int runenv_check_audit_log(const nono_caps *caps, const char *path)
{
	/* The file may not exist yet (it is created): judge it by its directory's real path. */
	char real[2 * PATH_MAX + 2], dir[PATH_MAX], base[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	snprintf(base, sizeof base, "%s", path);
	if (!realpath(path, real)) {
		char rdir[PATH_MAX];
		if (!realpath(dirname(dir), rdir)) {
			cli_err("--audit-log %s: %s", path, strerror(errno));
			return EXIT_USAGE;
		}
		snprintf(real, sizeof real, "%s/%s", rdir, basename(base));
	}
	nono_decision d;
	if (nono_caps_query_path(caps, real, NONO_ACCESS_WRITE, &d, NULL) == 0 && d.allowed) {
		cli_err("--audit-log %s: the command may write there (grant %s), so it could forge or "
			"erase the log; put the log outside every writable grant", path,
			d.grant[0] ? d.grant : real);
		return EXIT_USAGE;
	}
	return -1;
}

int runenv_check_listening(const char *addr, uint16_t port, const char *opt)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof *s4;
	}
	/* A loopback connect is answered at once (SYN-ACK or RST) — unless the listener's accept queue
	 * is full, when the kernel drops the SYN and retries for minutes: non-blocking, and a
	 * connect still pending after 2 s means a listener exists (a busy one). */
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		return -1; /* as below: nono is sandboxed itself and cannot look */
	if (fd < 0) {
		cli_err("%s: socket: %s", opt, strerror(errno));
		return EXIT_INTERNAL;
	}
	int rc = connect(fd, (struct sockaddr *)&ss, len);
	int e = errno;
	if (rc < 0 && e == EINPROGRESS) {
		struct pollfd pf = {fd, POLLOUT, 0};
		int n = poll(&pf, 1, 2000);
		socklen_t el = sizeof e;
		if (n == 0) {
			close(fd);
			return -1; /* queued: something listens */
		}
		rc = n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e ? -1 : 0;
		if (n < 0)
			e = errno;
	}
	close(fd);
	/* nono itself inside a sandbox that refuses the connect (a nono run under another): it cannot
	 * look, and the command will find out; the check exists to catch a wrong port, not to
	 * enforce anything. */
	if (rc < 0 && (e == EACCES || e == EPERM))
		return -1;
	if (rc < 0) {
		cli_err("%s: nothing accepts connections on %s%s%s:%u (%s); start the proxy first "
			"(e.g. 'nono proxy --listen %u')", opt, strchr(addr, ':') ? "[" : "", addr,
			strchr(addr, ':') ? "]" : "", (unsigned)port, strerror(e), (unsigned)port);
		return EXIT_USAGE;
	}
	return -1;
}
