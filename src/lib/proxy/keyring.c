/* keyring.c — keyring:// credential sources (issue 14): the secret comes from the freedesktop
 * Secret Service over the session D-Bus, looked up with libsecret.
 *
 * Why a forked helper: libsecret is GLib. Its first D-Bus call opens a socket to the bus and starts
 * GLib's worker threads ("gdbus", "gmain"), which then live as long as the process. nono_exec forks
 * the sandboxed command after the proxy has started and sets it up in the child (Landlock, seccomp,
 * allocations) — a fork of a process with threads that may hold locks, and a D-Bus socket the
 * command would hold until its exec. So this process never loads GLib: a short-lived child dlopen()s
 * libsecret, looks the item up, writes one status byte and the secret (or a message) into a
 * close-on-exec pipe and _exits; its threads and bus connection die with it. dlopen() also keeps
 * libsecret out of the link: nono runs, and says so clearly, where it is not installed.
 *
 * Naming (compatible with always-further/nono, whose Rust `keyring` crate stores items with the
 * attributes service and username and searches every collection on those two): keyring://NAME and a
 * bare NAME are service=nono, username=NAME; keyring://SERVICE/ACCOUNT names both. Store one with
 *   secret-tool store --label='nono: NAME' service nono username NAME */
#include "keyring.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef NONO_HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

#define KR_NAME_MAX 255
#define KR_TIMEOUT_MS 30000 /* above D-Bus's 25 s method-call default: its own error comes first */

enum kr_status { KR_OK, KR_NOLIB, KR_NOSERVICE, KR_NOTFOUND, KR_LOCKED, KR_AMBIGUOUS, KR_ERROR };

bool np_keyring_is_source(const char *source)
{
	return source && (strncmp(source, "keyring://", 10) == 0 || !strstr(source, "://"));
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > KR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '?' || s[i] == '#')
			return false;
	return true;
}

/* The query of a keyring:// URI (after its '?', up to `end`), as the Rust nono reads it: only
 * `decode=go-keyring`. Anything else is an error, never ignored: a misspelt decode would hand the
 * upstream the stored value still encoded. 0 or -EINVAL. */
static int parse_query(const char *prefix, const char *source, const char *q, bool *decode,
		       nono_error *err)
{
	*decode = false;
	for (;;) { /* every parameter, empty ones too ("?", "a&"): each is an error */
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		if (!eq)
			return nono_fail(err, -EINVAL, "route %s: credential %.300s: query parameter "
					 "'%.*s' has no value (supported: decode=go-keyring)", prefix, source,
					 (int)(n > 100 ? 100 : n), q);
		size_t kl = (size_t)(eq - q), vl = n - kl - 1;
		if (kl != 6 || memcmp(q, "decode", 6) != 0)
			return nono_fail(err, -EINVAL, "route %s: credential %.300s: unknown query parameter "
					 "'%.*s' (supported: decode)", prefix, source, (int)(kl > 100 ? 100 : kl), q);
		if (vl != 10 || memcmp(eq + 1, "go-keyring", 10) != 0)
			return nono_fail(err, -EINVAL, "route %s: credential %.300s: unknown decode value "
					 "'%.*s' (supported: go-keyring)", prefix, source,
					 (int)(vl > 100 ? 100 : vl), eq + 1);
		*decode = true;
		if (!q[n])
			return 0;
		q += n + 1;
	}
}

/* service and account from the source (and keyring://…?decode=go-keyring into *decode); 0 or
 * -EINVAL. */
static int parse_source(const char *prefix, const char *source, char *service, char *account,
			bool *decode, nono_error *err)
{
	bool uri = strncmp(source, "keyring://", 10) == 0;
	const char *full = uri ? source + 10 : source;
	const char *qm = uri ? strchr(full, '?') : NULL;
	*decode = false;
	if (uri && strchr(full, '#'))
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: a keyring:// URI has no fragment "
					       "('#')", prefix, source);
	if (qm && parse_query(prefix, source, qm + 1, decode, err) < 0)
		return -EINVAL;
	char path[2 * KR_NAME_MAX + 2];
	size_t plen = qm ? (size_t)(qm - full) : strlen(full);
	if (plen >= sizeof path)
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the name is too long", prefix,
				 source);
	memcpy(path, full, plen);
	path[plen] = '\0';
	const char *name = path;
	const char *slash = strchr(name, '/');
	size_t nlen = strlen(name);
	if (slash && (!name_ok(name, (size_t)(slash - name)) || !name_ok(slash + 1, strlen(slash + 1)) ||
		      strchr(slash + 1, '/')))
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: give keyring://NAME (service "
					       "\"%s\") or keyring://SERVICE/ACCOUNT", prefix, source,
				 NP_KEYRING_SERVICE);
	if (!slash && !name_ok(name, nlen))
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the name must be 1 to %d "
					       "characters without control characters, '?' or '#'",
				 prefix, source, KR_NAME_MAX);
	if (slash) {
		snprintf(service, KR_NAME_MAX + 1, "%.*s", (int)(slash - name), name);
		snprintf(account, KR_NAME_MAX + 1, "%.*s", KR_NAME_MAX, slash + 1); /* name_ok: fits */
	} else {
		snprintf(service, KR_NAME_MAX + 1, "%s", NP_KEYRING_SERVICE);
		snprintf(account, KR_NAME_MAX + 1, "%.*s", KR_NAME_MAX, name);
	}
	return 0;
}

/* The session bus's address: DBUS_SESSION_BUS_ADDRESS, else the systemd user bus socket
 * ($XDG_RUNTIME_DIR/bus), as GLib finds it. NULL when there is none: GLib would then try to
 * autolaunch a bus through X11, which is never what a sandbox's credential lookup wants. */
static char *bus_address(void)
{
	const char *a = getenv("DBUS_SESSION_BUS_ADDRESS");
	if (a && *a)
		return strdup(a);
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char path[4096];
	struct stat st;
	if (!rt || !*rt || snprintf(path, sizeof path, "%s/bus", rt) >= (int)sizeof path ||
	    stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return NULL;
	char *out = NULL;
	return asprintf(&out, "unix:path=%s", path) < 0 ? NULL : out;
}

/* ---- the helper child: never returns ---- */

__attribute__((noreturn)) static void child_write(int fd, enum kr_status st, const void *data, size_t len)
{
	unsigned char b = (unsigned char)st;
	const unsigned char *p = data;
	if (write(fd, &b, 1) != 1)
		_exit(1);
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		p += n;
		len -= (size_t)n;
	}
	_exit(0);
}

/* The message "what: detail" (GLib's error text: it never holds the secret). */
__attribute__((noreturn)) static void child_say(int fd, enum kr_status st, const char *what, const char *detail)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s%s%.300s", what, detail ? ": " : "", detail ? detail : "");
	child_write(fd, st, msg, strlen(msg));
}

#ifdef NONO_HAVE_LIBSECRET
#define KR_SYM(h, name) ((__typeof__(&name))dlsym(h, #name))

/* A D-Bus error that means nobody owns or can start org.freedesktop.secrets. */
static bool no_service_error(void *lib, const GError *e)
{
	__typeof__(&g_dbus_error_get_remote_error) remote = KR_SYM(lib, g_dbus_error_get_remote_error);
	const char *r = remote ? remote(e) : NULL; /* leaked: the helper exits */
	return r && (strcmp(r, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
		     strcmp(r, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0 ||
		     strncmp(r, "org.freedesktop.DBus.Error.Spawn.", 33) == 0);
}

__attribute__((noreturn)) static void child_found(int fd, void *lib, GList *items)
{
	__typeof__(&secret_item_get_locked) locked = KR_SYM(lib, secret_item_get_locked);
	__typeof__(&secret_item_get_secret) get = KR_SYM(lib, secret_item_get_secret);
	__typeof__(&secret_value_get) value = KR_SYM(lib, secret_value_get);
	if (!locked || !get || !value)
		child_say(fd, KR_NOLIB, "this libsecret lacks secret_item_get_secret", NULL);
	if (!items)
		child_say(fd, KR_NOTFOUND, "", NULL);
	if (items->next)
		child_say(fd, KR_AMBIGUOUS, "", NULL);
	if (locked(items->data))
		child_say(fd, KR_LOCKED, "", NULL);
	SecretValue *v = get(items->data);
	gsize len = 0;
	const gchar *s = v ? value(v, &len) : NULL;
	if (!s)
		child_say(fd, KR_ERROR, "the service returned no secret for the item", NULL);
	child_write(fd, KR_OK, s, len);
}

__attribute__((noreturn)) static void child_lookup(int fd, const char *bus, const char *service, const char *account)
{
	/* Quiet (the library never prints: GLib's warnings go to stderr), no core dump of the secret,
	 * gone with nono, and no autolaunched bus. */
	if (fd <= 2 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) /* nono started with stdio closed */
		_exit(1);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0 && (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0))
		_exit(1);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!getenv("DBUS_SESSION_BUS_ADDRESS") && setenv("DBUS_SESSION_BUS_ADDRESS", bus, 1) < 0)
		_exit(1);
	void *lib = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		child_say(fd, KR_NOLIB, "", NULL);
	__typeof__(&secret_service_get_sync) get_service = KR_SYM(lib, secret_service_get_sync);
	__typeof__(&secret_service_search_sync) search = KR_SYM(lib, secret_service_search_sync);
	__typeof__(&g_hash_table_new) table_new = KR_SYM(lib, g_hash_table_new);
	__typeof__(&g_hash_table_insert) insert = KR_SYM(lib, g_hash_table_insert);
	__typeof__(&g_str_hash) str_hash = KR_SYM(lib, g_str_hash);
	__typeof__(&g_str_equal) str_equal = KR_SYM(lib, g_str_equal);
	if (!get_service || !search || !table_new || !insert || !str_hash || !str_equal)
		child_say(fd, KR_NOLIB, "this libsecret lacks secret_service_search_sync", NULL);
	GError *e = NULL;
	SecretService *ss = get_service(SECRET_SERVICE_NONE, NULL, &e);
	if (!ss && e && no_service_error(lib, e))
		child_say(fd, KR_NOSERVICE, "", NULL);
	if (!ss)
		child_say(fd, KR_ERROR, "cannot connect to the D-Bus session bus", e ? e->message : NULL);
	GHashTable *attrs = table_new(str_hash, str_equal);
	insert(attrs, (gpointer) "service", (gpointer)service);
	insert(attrs, (gpointer) "username", (gpointer)account);
	/* Every collection, unlocked or not (a locked one gives its own error: no unlock prompt, which
	 * would wait on a desktop that may not be looking); secrets come with the answer. */
	GList *items = search(ss, NULL, attrs, SECRET_SEARCH_ALL | SECRET_SEARCH_LOAD_SECRETS, NULL, &e);
	if (!items && e && no_service_error(lib, e))
		child_say(fd, KR_NOSERVICE, "", NULL);
	if (!items && e)
		child_say(fd, KR_ERROR, "the secret service failed", e->message);
	child_found(fd, lib, items);
}
#else
__attribute__((noreturn)) static void child_lookup(int fd, const char *bus, const char *service, const char *account)
{
	(void)bus;
	(void)service;
	(void)account;
	child_say(fd, KR_NOLIB, "this build of nono has no libsecret support (built without its headers)", NULL);
}
#endif

/* ---- the parent ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the helper's whole answer into buf (cap bytes); the count, -ETIMEDOUT or -errno. */
static ssize_t read_answer(int fd, unsigned char *buf, size_t cap)
{
	size_t got = 0;
	int64_t deadline = now_ms() + KR_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			return -ETIMEDOUT;
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 || (got += (size_t)n) == cap)
			return (ssize_t)got;
	}
}

static int answer_error(const char *prefix, const char *source, const char *service, const char *account,
			const unsigned char *buf, size_t n, nono_error *err)
{
	const char *msg = n > 1 ? (const char *)buf + 1 : "";
	switch (n ? buf[0] : KR_ERROR) {
	case KR_NOLIB:
		return nono_fail(err, -ENOTSUP, "route %s: credential %.300s: %.*s; use env://VAR or file://PATH",
				 prefix, source, n > 1 ? (int)(n - 1) : 100,
				 n > 1 ? msg : "libsecret is not installed (Debian: libsecret-1-0)");
	case KR_NOSERVICE:
		return nono_fail(err, -ENOTSUP, "route %s: credential %.300s: no secret service runs on the "
						"session bus (start gnome-keyring or another org.freedesktop.secrets "
						"provider, or use env://VAR or file://PATH)", prefix, source);
	case KR_NOTFOUND:
		return nono_fail(err, -ENOENT, "route %s: credential %.300s: no item with service=%s "
					       "username=%s in the secret service (store one with: secret-tool "
					       "store --label=... service %s username %s)",
				 prefix, source, service, account, service, account);
	case KR_LOCKED:
		return nono_fail(err, -EACCES, "route %s: credential %.300s: the item's keyring collection is "
					       "locked; unlock it (log in to the desktop, or use seahorse or "
					       "gnome-keyring-daemon --unlock) and try again", prefix, source);
	case KR_AMBIGUOUS:
		return nono_fail(err, -ENOTUNIQ, "route %s: credential %.300s: several items have service=%s "
						 "username=%s; remove all but one", prefix, source, service, account);
	default:
		return nono_fail(err, -EIO, "route %s: credential %.300s: %.*s", prefix, source, (int)(n > 1 ? n - 1 : 0),
				 n > 1 ? msg : "the secret service lookup failed");
	}
}

/* Fork the helper; its pid, with *rfd the answer's read end, or -errno. */
static pid_t start_helper(const char *bus, const char *service, const char *account, int *rfd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		child_lookup(p[1], bus, service, account);
		_exit(1); /* not reached */
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* Killed first in every case: after a timeout, and after an answer over the cap, where the helper
 * may still be blocked writing the rest (an unreaped child cannot be a reused pid). */
static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int np_keyring_check(const char *prefix, const char *source, nono_error *err)
{
	char service[KR_NAME_MAX + 1], account[KR_NAME_MAX + 1];
	bool decode;
	return parse_source(prefix, source, service, account, &decode, err);
}

size_t np_keyring_name_len(const char *name)
{
	return strcspn(name, "?#");
}

int np_keyring_read(const char *prefix, const char *source, size_t max, unsigned char **secret,
		    size_t *len, nono_error *err)
{
	char service[KR_NAME_MAX + 1], account[KR_NAME_MAX + 1];
	bool decode;
	int rc = parse_source(prefix, source, service, account, &decode, err);
	if (rc < 0)
		return rc;
	cleanup_free char *bus = bus_address();
	if (!bus)
		return nono_fail(err, -ENOTSUP, "route %s: credential %.300s: no desktop secret service here: "
						"no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is "
						"no $XDG_RUNTIME_DIR/bus); use env://VAR or file://PATH", prefix, source);
	cleanup_fd int fd = -1;
	pid_t pid = start_helper(bus, service, account, &fd);
	if (pid < 0)
		return nono_fail(err, (int)pid, "route %s: credential %.300s: cannot start the lookup: %s", prefix,
				 source, strerror((int)-pid));
	size_t cap = max + 2; /* status byte, and one more to see a secret over max */
	unsigned char *buf = malloc(cap);
	ssize_t n = buf ? read_answer(fd, buf, cap) : -ENOMEM;
	reap(pid);
	if (n < 0)
		rc = nono_fail(err, (int)n, "route %s: credential %.300s: the secret service lookup %s", prefix, source,
			       n == -ETIMEDOUT ? "did not answer within 30 s" : strerror((int)-n));
	else if (n == 0 || buf[0] != KR_OK)
		rc = answer_error(prefix, source, service, account, buf, (size_t)n, err);
	else if ((size_t)n - 1 > max)
		rc = nono_fail(err, -EINVAL, "route %s: credential %.300s is larger than %zu bytes", prefix, source,
			       max);
	if (rc < 0 || !buf) {
		if (buf)
			explicit_bzero(buf, cap);
		free(buf);
		return rc;
	}
	/* The secret moves to the front and gets its NUL; the status byte's slot is wiped. */
	*len = (size_t)n - 1;
	memmove(buf, buf + 1, *len);
	explicit_bzero(buf + *len, cap - *len);
	if (decode && (rc = np_go_keyring_decode(prefix, source, buf, len, err)) < 0) {
		explicit_bzero(buf, cap);
		free(buf);
		return rc;
	}
	*secret = buf;
	return 0;
}
