/* Unit tests for caps.c on a real temporary tree: grants, canonicalisation, every error code,
 * deduplication, coverage, network mode, unix sockets, bind ports, summary and queries. */
#include "internal.h"
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char root[PATH_MAX]; /* canonical temp dir */
static char buf[PATH_MAX * 2];

static const char *P(const char *rel)
{
	snprintf(buf, sizeof buf, "%s/%s", root, rel);
	return buf;
}

/* a + b + c into a static buffer (no printf: -Wformat-truncation=2 is an error here). */
static const char *cat3(const char *a, const char *b, const char *c)
{
	static char out[PATH_MAX * 3];
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	if (la + lb + lc >= sizeof out)
		abort();
	memcpy(out, a, la);
	memcpy(out + la, b, lb);
	memcpy(out + la + lb, c, lc + 1);
	return out;
}

static char *Pdup(const char *rel)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", root, rel) < 0)
		abort();
	return s;
}

static void touch(const char *rel)
{
	FILE *f = fopen(P(rel), "w");
	if (!f)
		abort();
	fclose(f);
}

static void make_tree(void)
{
	char tmpl[] = "/tmp/nono-caps-XXXXXX";
	if (!mkdtemp(tmpl) || !realpath(tmpl, root))
		abort();
	if (mkdir(P("d"), 0755) || mkdir(P("d/sub"), 0755) || mkdir(P("ab"), 0755) ||
	    mkdir(P("abc"), 0755))
		abort();
	touch("d/f");
	touch("d/g");
	touch("abc/x");
	char *t = Pdup("d");
	if (symlink(t, P("link")))
		abort();
	free(t);
	if (symlink("d/sub", P("sublink")) || symlink("d/f", P("flink")) || symlink("loop2", P("loop1")) ||
	    symlink("loop1", P("loop2")) || symlink("nowhere", P("dangling")))
		abort();
	/* A real pathname unix socket. */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *sp = P("sock");
	if (strlen(sp) >= sizeof a.sun_path)
		abort();
	memcpy(a.sun_path, sp, strlen(sp) + 1);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a))
		abort();
	close(s);
}

static void test_new_and_errors(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e = { 0 };
	CHECK(c != NULL);
	CHECK_EQ_INT(nono_caps_grant_count(c), 0);
	uint16_t port = 99;
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_ALLOWED);
	CHECK_EQ_INT(port, 0);

	CHECK_EQ_INT(nono_caps_allow_path(c, P("d"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(e.code, 0);
	nono_grant g;
	CHECK_EQ_INT(nono_caps_grant(c, 0, &g), 0);
	CHECK_STR(g.original, P("d"));
	CHECK_STR(g.resolved, P("d"));
	CHECK_EQ_INT(g.access, NONO_ACCESS_READ);
	CHECK(!g.is_file);
	CHECK_EQ_INT(nono_caps_grant(c, 1, &g), -ERANGE);
	CHECK_EQ_INT(nono_caps_grant(c, 0, NULL), -EINVAL);

	/* A file where a directory is wanted, and the reverse. */
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/f"), NONO_ACCESS_READ, &e), -ENOTDIR);
	CHECK_EQ_INT(e.code, -ENOTDIR);
	CHECK(strstr(e.message, P("d/f")) != NULL);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d"), NONO_ACCESS_READ, &e), -EISDIR);
	CHECK(strstr(e.message, P("d")) != NULL);
	/* The unix socket is a non-directory: a file grant accepts it. */
	CHECK_EQ_INT(nono_caps_allow_file(c, P("sock"), NONO_ACCESS_READ, &e), 0);
	/* Missing paths name the path. */
	CHECK_EQ_INT(nono_caps_allow_path(c, P("missing"), NONO_ACCESS_READ, &e), -ENOENT);
	CHECK(strstr(e.message, P("missing")) != NULL);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("missing"), NONO_ACCESS_READ, &e), -ENOENT);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("dangling"), NONO_ACCESS_READ, &e), -ENOENT);
	/* A component that is a file. */
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/f/x"), NONO_ACCESS_READ, &e), -ENOTDIR);
	/* Symlink loop. */
	CHECK_EQ_INT(nono_caps_allow_path(c, P("loop1"), NONO_ACCESS_READ, &e), -ELOOP);
	/* Empty / NULL path, bad modes. */
	CHECK_EQ_INT(nono_caps_allow_path(c, "", NONO_ACCESS_READ, &e), -EINVAL);
	CHECK(strstr(e.message, "empty") != NULL);
	CHECK_EQ_INT(nono_caps_allow_file(c, NULL, NONO_ACCESS_READ, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d"), (nono_access)0, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d"), (nono_access)4, &e), -EINVAL);
	CHECK(strstr(e.message, "access") != NULL);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/f"), (nono_access)-1, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_allow_path(NULL, P("d"), NONO_ACCESS_READ, &e), -EINVAL);
	/* Too long. */
	char *longp = malloc(PATH_MAX + 10);
	memset(longp, 'a', PATH_MAX + 9);
	longp[0] = '/';
	longp[PATH_MAX + 9] = '\0';
	CHECK_EQ_INT(nono_caps_allow_path(c, longp, NONO_ACCESS_READ, &e), -ENAMETOOLONG);
	free(longp);
	/* Failed calls added nothing. */
	CHECK_EQ_INT(nono_caps_grant_count(c), 2);
	/* Works with err == NULL too. */
	CHECK_EQ_INT(nono_caps_allow_path(c, P("missing"), NONO_ACCESS_READ, NULL), -ENOENT);
	nono_caps_free(c);
	nono_caps_free(NULL);
}

static void test_symlinks_and_relative(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	char *link = Pdup("link"), *flink = Pdup("flink");
	CHECK_EQ_INT(nono_caps_allow_path(c, link, NONO_ACCESS_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, flink, NONO_ACCESS_READ, &e), 0);
	nono_grant g;
	nono_caps_grant(c, 0, &g);
	CHECK_STR(g.original, link);
	CHECK_STR(g.resolved, P("d"));
	nono_caps_grant(c, 1, &g);
	CHECK_STR(g.original, flink);
	CHECK_STR(g.resolved, P("d/f"));
	CHECK(g.is_file);
	/* Relative paths resolve against the cwd at grant time. */
	char old[PATH_MAX];
	if (!getcwd(old, sizeof old) || chdir(root))
		abort();
	CHECK_EQ_INT(nono_caps_allow_path(c, "d/sub/../sub", NONO_ACCESS_READ, &e), 0);
	nono_caps_grant(c, 2, &g);
	CHECK_STR(g.original, "d/sub/../sub");
	CHECK_STR(g.resolved, P("d/sub"));
	CHECK(nono_caps_path_covered(c, "d/sub/newfile"));
	CHECK(nono_caps_path_covered(c, "./d/sub"));
	CHECK(!nono_caps_path_covered(c, "abc"));
	if (chdir(old))
		abort();
	free(link);
	free(flink);
	nono_caps_free(c);
}

static void test_dedupe(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/f"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("link"), NONO_ACCESS_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/sub"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("flink"), NONO_ACCESS_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/./"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_grant_count(c), 6);
	nono_caps_deduplicate(c);
	CHECK_EQ_INT(nono_caps_grant_count(c), 3);
	nono_grant g;
	nono_caps_grant(c, 0, &g);
	CHECK_STR(g.original, P("d")); /* the first original is kept */
	CHECK_EQ_INT(g.access, NONO_ACCESS_READ_WRITE);
	CHECK(!g.is_file);
	nono_caps_grant(c, 1, &g);
	CHECK_STR(g.resolved, P("d/f"));
	CHECK_EQ_INT(g.access, NONO_ACCESS_READ_WRITE);
	CHECK(g.is_file);
	nono_caps_grant(c, 2, &g);
	CHECK_STR(g.resolved, P("d/sub"));
	CHECK_EQ_INT(g.access, NONO_ACCESS_READ);
	nono_caps_deduplicate(c); /* idempotent */
	CHECK_EQ_INT(nono_caps_grant_count(c), 3);
	nono_caps_deduplicate(NULL);
	nono_caps_free(c);
}

static void test_covered(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK(!nono_caps_path_covered(c, P("d")));
	CHECK_EQ_INT(nono_caps_allow_path(c, P("ab"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/f"), NONO_ACCESS_READ, &e), 0);
	CHECK(nono_caps_path_covered(c, P("ab")));
	CHECK(nono_caps_path_covered(c, P("ab/")));
	CHECK(nono_caps_path_covered(c, P("ab/new/deeper")));
	CHECK(!nono_caps_path_covered(c, P("abc")));      /* "/a/bc" is not under "/a/b" */
	CHECK(!nono_caps_path_covered(c, P("abc/x")));
	CHECK(!nono_caps_path_covered(c, P("ab/../abc/x"))); /* lexical escape, path exists */
	CHECK(!nono_caps_path_covered(c, P("ab/../abc/nope"))); /* and does not */
	CHECK(nono_caps_path_covered(c, P("d/f")));
	CHECK(nono_caps_path_covered(c, P("flink")));     /* symlink to the granted file */
	CHECK(nono_caps_path_covered(c, P("d/sub/../f")));
	CHECK(!nono_caps_path_covered(c, P("d/g")));      /* sibling of a file grant */
	CHECK(!nono_caps_path_covered(c, P("d")));        /* parent of a file grant */
	CHECK(!nono_caps_path_covered(c, P("d/f/x")));    /* a file grant covers only itself */
	CHECK(!nono_caps_path_covered(c, ""));
	CHECK(!nono_caps_path_covered(c, NULL));
	CHECK(!nono_caps_path_covered(NULL, P("ab")));
	nono_caps_free(c);

	/* A missing file below a symlinked granted directory is judged where it would be created. */
	c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/sub"), NONO_ACCESS_READ, &e), 0);
	CHECK(nono_caps_path_covered(c, P("link/sub/new")));
	CHECK(nono_caps_path_covered(c, P("link/sub")));
	CHECK(!nono_caps_path_covered(c, P("link/new")));
	CHECK(!nono_caps_path_covered(c, P("dangling")));
	/* ".." after a symlink is the symlink target's parent, as the kernel walks it. */
	CHECK(nono_caps_path_covered(c, P("link/sub/../sub/new")));
	CHECK(nono_caps_path_covered(c, P("sublink/../sub/new")));
	CHECK(!nono_caps_path_covered(c, P("sublink/../new")));
	nono_caps_free(c);

	/* The root directory covers everything. */
	c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, "/", NONO_ACCESS_READ, &e), 0);
	CHECK(nono_caps_path_covered(c, "/etc/passwd"));
	CHECK(nono_caps_path_covered(c, "/no/such/thing"));
	CHECK(nono_caps_path_covered(c, "/../.."));
	nono_caps_free(c);
}

static void test_network(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	uint16_t port;
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 80, &e), -EINVAL);
	CHECK(strstr(e.message, "port") != NULL);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_ALLOWED, 1, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_set_network(c, (nono_net_mode)7, 0, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_ALLOWED); /* failures changed nothing */
	/* Port 0: "chosen when the proxy starts" (plans accept it; apply and exec refuse it). */
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 0, &e), 0);
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_PROXY_ONLY);
	CHECK_EQ_INT(port, 0);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e), 0);
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_PROXY_ONLY);
	CHECK_EQ_INT(port, 3128);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 65535, &e), 0);
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_PROXY_ONLY);
	CHECK_EQ_INT(port, 65535);
	CHECK_EQ_INT(nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e), 0);
	CHECK_EQ_INT(nono_caps_network(c, &port), NONO_NET_BLOCKED);
	CHECK_EQ_INT(port, 0); /* last call wins, port cleared */
	CHECK_EQ_INT(nono_caps_network(c, NULL), NONO_NET_BLOCKED);
	nono_decision d;
	nono_caps_query_network(c, &d);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, "network blocked");
	CHECK_STR(d.grant, "");
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e);
	nono_caps_query_network(c, &d);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, "only the proxy on 127.0.0.1:3128");
	nono_caps_set_network(c, NONO_NET_ALLOWED, 0, &e);
	nono_caps_query_network(c, &d);
	CHECK(d.allowed);
	CHECK_STR(d.reason, "network allowed");
	nono_caps_free(c);
}

static void test_sockets_and_bind(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, P("sock"), &e), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, P("d"), &e), 0);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, P("link"), &e), 0); /* same dir: deduplicated */
	CHECK_EQ_INT(nono_caps_unix_socket_count(c), 2);
	CHECK_STR(nono_caps_unix_socket(c, 0), P("sock"));
	CHECK_STR(nono_caps_unix_socket(c, 1), P("d"));
	CHECK(nono_caps_unix_socket(c, 2) == NULL);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, P("d/f"), &e), -EINVAL); /* regular file */
	CHECK(strstr(e.message, P("d/f")) != NULL);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, P("nosock"), &e), -ENOENT);
	CHECK(strstr(e.message, P("nosock")) != NULL);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, "", &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_allow_unix_socket(c, NULL, &e), -EINVAL);

	CHECK_EQ_INT(nono_caps_allow_bind(c, 0, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 8080, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 8080, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_bind(c, 65535, &e), 0);
	CHECK_EQ_INT(nono_caps_bind_port_count(c), 2);
	CHECK_EQ_INT(nono_caps_bind_port(c, 0), 8080);
	CHECK_EQ_INT(nono_caps_bind_port(c, 1), 65535);
	CHECK_EQ_INT(nono_caps_bind_port(c, 2), 0);
	nono_caps_free(c);
}

static void test_summary_and_clone(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	char *s = nono_caps_summary(c);
	CHECK_STR(s, "0 paths, network: allowed");
	free(s);
	nono_caps_allow_path(c, P("d"), NONO_ACCESS_READ, &e);
	s = nono_caps_summary(c);
	CHECK_STR(s, "1 path (1 read), network: allowed");
	free(s);
	nono_caps_allow_file(c, P("d/f"), NONO_ACCESS_READ, &e);
	nono_caps_allow_path(c, P("ab"), NONO_ACCESS_READ_WRITE, &e);
	nono_caps_set_network(c, NONO_NET_PROXY_ONLY, 3128, &e);
	nono_caps_allow_unix_socket(c, P("sock"), &e);
	nono_caps_allow_bind(c, 8080, &e);
	s = nono_caps_summary(c);
	CHECK_STR(s, "3 paths (2 read, 1 read-write), network: proxy-only(3128), 1 unix socket, "
		     "bind: 8080");
	free(s);

	nono_caps *k = nono_caps_clone(c);
	CHECK(k != NULL);
	nono_caps_allow_path(c, P("abc"), NONO_ACCESS_WRITE, &e);
	nono_caps_allow_bind(c, 9090, &e);
	nono_caps_set_network(c, NONO_NET_BLOCKED, 0, &e);
	nono_caps_allow_unix_socket(c, P("d"), &e);
	s = nono_caps_summary(c);
	CHECK_STR(s, "4 paths (2 read, 1 write, 1 read-write), network: blocked, 2 unix sockets, "
		     "bind: 8080,9090");
	free(s);
	nono_caps_free(c); /* the clone must not share storage */
	s = nono_caps_summary(k);
	CHECK_STR(s, "3 paths (2 read, 1 read-write), network: proxy-only(3128), 1 unix socket, "
		     "bind: 8080");
	free(s);
	nono_grant g;
	CHECK_EQ_INT(nono_caps_grant(k, 1, &g), 0);
	CHECK_STR(g.resolved, P("d/f"));
	CHECK(g.is_file);
	CHECK_STR(nono_caps_unix_socket(k, 0), P("sock"));
	nono_caps_free(k);
	CHECK(nono_caps_clone(NULL) == NULL);
	nono_caps *empty = nono_caps_new();
	k = nono_caps_clone(empty);
	CHECK(k != NULL && nono_caps_grant_count(k) == 0);
	nono_caps_free(k);
	nono_caps_free(empty);
}

static void test_query(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	nono_decision d;
	nono_caps_allow_path(c, P("d"), NONO_ACCESS_READ_WRITE, &e);
	nono_caps_allow_path(c, P("d/sub"), NONO_ACCESS_READ, &e);
	nono_caps_allow_file(c, P("abc/x"), NONO_ACCESS_READ, &e);
	nono_caps_allow_path(c, P("ab"), NONO_ACCESS_WRITE, &e);

	CHECK_EQ_INT(nono_caps_query_path(c, P("d/g"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_STR(d.reason, cat3("granted read-write by ", P("d"), ""));
	CHECK_STR(d.grant, P("d"));

	/* Read in d/sub: the most specific grant (d/sub, read) decides and is named. */
	CHECK_EQ_INT(nono_caps_query_path(c, P("d/sub/new"), NONO_ACCESS_READ, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_STR(d.reason, cat3("granted read by ", P("d/sub"), ""));
	CHECK_STR(d.grant, P("d/sub"));
	/* Write in d/sub: Landlock alone would unite rights along the hierarchy (d's read-write
	 * allows it), but nono_exec binds d/sub read-only in the command's mount namespace (mounts.c),
	 * and the query says what is enforced. */
	CHECK_EQ_INT(nono_caps_query_path(c, P("d/sub/new"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK(strstr(d.reason, "bound read-only") != NULL);

	CHECK_EQ_INT(nono_caps_query_path(c, P("abc/x"), NONO_ACCESS_WRITE, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, cat3("", P("abc/x"), " is granted read only"));
	CHECK_STR(d.grant, P("abc/x"));

	CHECK_EQ_INT(nono_caps_query_path(c, P("ab/f"), NONO_ACCESS_READ_WRITE, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, cat3("", P("ab/f"), " is granted write only"));

	CHECK_EQ_INT(nono_caps_query_path(c, "/etc/shadow", NONO_ACCESS_READ, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, "no grant covers /etc/shadow");
	CHECK_STR(d.grant, "");
	CHECK_EQ_INT(nono_caps_query_path(c, P("abc/y"), NONO_ACCESS_READ, &d, &e), 0);
	CHECK(!d.allowed);
	CHECK_STR(d.reason, cat3("no grant covers ", P("abc/y"), ""));
	/* Symlinked spelling of a granted path. */
	CHECK_EQ_INT(nono_caps_query_path(c, P("flink"), NONO_ACCESS_READ_WRITE, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_STR(d.grant, P("d"));

	CHECK_EQ_INT(nono_caps_query_path(c, "", NONO_ACCESS_READ, &d, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_query_path(c, P("d"), (nono_access)0, &d, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_query_path(c, P("d"), (nono_access)8, &d, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_query_path(c, NULL, NONO_ACCESS_READ, &d, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_query_path(NULL, P("d"), NONO_ACCESS_READ, &d, &e), -EINVAL);
	CHECK_EQ_INT(nono_caps_query_path(c, P("d"), NONO_ACCESS_READ, NULL, &e), -EINVAL);
	/* A relative path with the cwd deleted cannot be placed: an error, not a guess. */
	char old[PATH_MAX];
	if (!getcwd(old, sizeof old) || mkdir(P("gone"), 0755) || chdir(P("gone")) || rmdir(P("gone")))
		abort();
	CHECK_EQ_INT(nono_caps_query_path(c, "x", NONO_ACCESS_READ, &d, &e), -ENOENT);
	CHECK(strstr(e.message, "x") != NULL);
	CHECK(!nono_caps_path_covered(c, "x"));
	CHECK_EQ_INT(nono_caps_query_path(c, P("d/g"), NONO_ACCESS_READ, &d, &e), 0);
	CHECK(d.allowed);
	if (chdir(old))
		abort();
	nono_caps_free(c);

	/* Read and write from two different grants together make read-write. */
	c = nono_caps_new();
	nono_caps_allow_path(c, P("d"), NONO_ACCESS_READ, &e);
	nono_caps_allow_file(c, P("d/f"), NONO_ACCESS_WRITE, &e);
	CHECK_EQ_INT(nono_caps_query_path(c, P("d/f"), NONO_ACCESS_READ_WRITE, &d, &e), 0);
	CHECK(d.allowed);
	CHECK_STR(d.grant, P("d/f"));
	CHECK(strstr(d.reason, "read-write") != NULL);
	CHECK_EQ_INT(nono_caps_query_path(c, P("d/g"), NONO_ACCESS_READ_WRITE, &d, &e), 0);
	CHECK(!d.allowed);
	nono_caps_free(c);
}

/* Grants in one directory share its resolution (caps.c's parent cache): the answers must be the
 * ones realpath gives, through a symlinked directory, for a symlink among the entries, for an entry
 * that is gone, and for an entry swapped for a symlink between two grants. */
static void test_parent_cache(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	nono_grant g;
	char *lf = Pdup("link/f"), *lg = Pdup("link/g"), *lsub = Pdup("link/sub");
	CHECK_EQ_INT(nono_caps_allow_file(c, lf, NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, lg, NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, lsub, NONO_ACCESS_READ, &e), 0);
	nono_caps_grant(c, 1, &g);
	CHECK_STR(g.original, lg);
	CHECK_STR(g.resolved, P("d/g"));
	nono_caps_grant(c, 2, &g);
	CHECK_STR(g.resolved, P("d/sub"));
	CHECK(!g.is_file);
	/* A symlink in the cached directory is followed, as realpath would. */
	CHECK_EQ_INT(nono_caps_allow_file(c, P("flink"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("abc/x"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("abc/x"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("sublink"), NONO_ACCESS_READ, &e), 0);
	nono_caps_grant(c, 6, &g);
	CHECK_STR(g.resolved, P("d/sub"));
	CHECK_EQ_INT(nono_caps_allow_file(c, P("nothere"), NONO_ACCESS_READ, &e), -ENOENT);
	CHECK_EQ_INT(nono_caps_allow_file(c, P("dangling"), NONO_ACCESS_READ, &e), -ENOENT);
	/* Swapped for a symlink after its directory was cached: the link's target is granted. */
	touch("d/h");
	char *lh = Pdup("link/h");
	CHECK_EQ_INT(nono_caps_allow_file(c, lh, NONO_ACCESS_READ, &e), 0);
	if (unlink(P("d/h")) || symlink("../abc/x", P("d/h")))
		abort();
	CHECK_EQ_INT(nono_caps_allow_file(c, lh, NONO_ACCESS_READ, &e), 0);
	nono_caps_grant(c, 8, &g);
	CHECK_STR(g.resolved, P("abc/x"));
	if (unlink(P("d/h")))
		abort();
	free(lh);
	free(lf);
	free(lg);
	free(lsub);
	nono_caps_free(c);
}

/* A canonical directory (d/, no symlink on the way) is cached without re-checking its name
 * (caps.c): every answer there is still realpath's, for files, a directory, a symlinked entry, an
 * entry that is gone, and an entry created or removed between two grants. */
static void test_canonical_parent_cache(void)
{
	nono_caps *c = nono_caps_new();
	nono_error e;
	nono_grant g;
	const char *names[] = {"d/f", "d/g", "d/sub", "d/lnk"};
	if (symlink("../abc/x", P("d/lnk")))
		abort();
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		bool dir = !strcmp(names[i], "d/sub");
		char *p = Pdup(names[i]), *want = realpath(p, NULL);
		int r = dir ? nono_caps_allow_path(c, p, NONO_ACCESS_READ, &e)
			    : nono_caps_allow_file(c, p, NONO_ACCESS_READ, &e);
		CHECK_EQ_INT(r, 0);
		nono_caps_grant(c, nono_caps_grant_count(c) - 1, &g);
		CHECK_STR(g.resolved, want);
		free(want);
		free(p);
	}
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/gone"), NONO_ACCESS_READ, &e), -ENOENT);
	touch("d/new");
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/new"), NONO_ACCESS_READ, &e), 0);
	if (unlink(P("d/new")) || unlink(P("d/lnk")))
		abort();
	CHECK_EQ_INT(nono_caps_allow_file(c, P("d/new"), NONO_ACCESS_READ, &e), -ENOENT);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("d/f"), NONO_ACCESS_READ, &e), -ENOTDIR);
	nono_caps_free(c);
}

int main(void)
{
	make_tree();
	test_canonical_parent_cache();
	test_new_and_errors();
	test_symlinks_and_relative();
	test_parent_cache();
	test_dedupe();
	test_covered();
	test_network();
	test_sockets_and_bind();
	test_summary_and_clone();
	test_query();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	UNIT_DONE();
}
