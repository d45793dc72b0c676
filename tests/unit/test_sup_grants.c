/* test_sup_grants.c — the supervisor's grant check for metadata changes and watches
 * (supervisor_grants.c): the verdict memoized by directory is the verdict computed in full, in any
 * order of questions, around read-only binds, writable grants inside them, deny paths (a directory
 * and a file) and siblings whose names share a prefix with them. */
#include "supervisor_int.h"
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/nono-test-sup-grants-XXXXXX";

static const char *P(const char *rel)
{
	static char buf[8][512];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, 512, "%s/%s", base, rel);
	return b;
}

struct q {
	const char *rel;
	unsigned need;
	int want;
};

static const struct q qs[] = {
	{"w/a", NONO_ACCESS_WRITE, 0},
	{"w/b", NONO_ACCESS_WRITE, 0},
	{"w/sub/a", NONO_ACCESS_WRITE, 0},
	{"w/sub/b", NONO_ACCESS_WRITE, 0},
	{"w/ro", NONO_ACCESS_WRITE, EROFS},
	{"w/ro/x", NONO_ACCESS_WRITE, EROFS},
	{"w/ro/d/x", NONO_ACCESS_WRITE, EROFS},
	{"w/ro/d/y", NONO_ACCESS_WRITE, EROFS},
	{"w/ro/rw", NONO_ACCESS_WRITE, 0},
	{"w/ro/rw/x", NONO_ACCESS_WRITE, 0},
	{"w/ro/rw/y", NONO_ACCESS_WRITE, 0},
	{"w/ro/rwx", NONO_ACCESS_WRITE, EROFS},
	{"w/secret", NONO_ACCESS_WRITE, EACCES},
	{"w/secret/x", NONO_ACCESS_WRITE, EACCES},
	{"w/secretx", NONO_ACCESS_WRITE, 0},
	{"w/note", NONO_ACCESS_WRITE, EACCES},
	{"w/note2", NONO_ACCESS_WRITE, 0},
	{"w/sub/secret", NONO_ACCESS_WRITE, 0},
	{"other/x", NONO_ACCESS_WRITE, EACCES},
	{"other/x", NONO_ACCESS_READ, 0},
	{"other/y", NONO_ACCESS_READ, 0},
	{"other/y", NONO_ACCESS_WRITE, EACCES},
	{"w/secret/x", NONO_ACCESS_READ, EACCES},
	{"elsewhere/x", NONO_ACCESS_READ, EACCES},
	{"elsewhere/y", NONO_ACCESS_WRITE, EACCES},
};

static int ask(struct nono_supervisor *s, const char *path, unsigned need)
{
	const char *why = NULL;
	int v = nono_sup_meta_verdict(s, path, need, &why);
	CHECK((v == 0) == (why == NULL));
	return v;
}

static int memo_count(const struct nono_supervisor *s)
{
	int n = 0;
	for (size_t i = 0; i < N_ELEMENTS(s->memo); i++)
		n += s->memo[i].dir != NULL;
	return n;
}

static void test_memo_is_exact(struct nono_supervisor *s)
{
	size_t n = N_ELEMENTS(qs);
	/* Cold: every answer computed with an empty memo. */
	for (size_t i = 0; i < n; i++) {
		nono_sup_memo_free(s);
		int v = ask(s, P(qs[i].rel), qs[i].need);
		if (v != qs[i].want)
			fprintf(stderr, "cold %s need %u: %d, expected %d\n", qs[i].rel, qs[i].need, v,
				qs[i].want);
		CHECK_EQ_INT(v, qs[i].want);
	}
	/* Warm, forwards, backwards and strided: what another path of the same directory left in
	 * the memo never changes an answer. */
	nono_sup_memo_free(s);
	for (int round = 0; round < 3; round++)
		for (size_t k = 0; k < n; k++) {
			size_t i = round == 0 ? k : round == 1 ? n - 1 - k : (k * 7) % n;
			int v = ask(s, P(qs[i].rel), qs[i].need);
			if (v != qs[i].want)
				fprintf(stderr, "warm %s need %u: %d, expected %d\n", qs[i].rel,
					qs[i].need, v, qs[i].want);
			CHECK_EQ_INT(v, qs[i].want);
		}
	CHECK(memo_count(s) > 0); /* the memo was used (w/sub, w/ro/d, w/ro/rw, other, …) */
	/* A directory with a grant or deny below it is never memoized. */
	for (size_t i = 0; i < N_ELEMENTS(s->memo); i++)
		if (s->memo[i].dir) {
			CHECK(strcmp(s->memo[i].dir, P("w")) != 0);
			CHECK(strcmp(s->memo[i].dir, P("w/ro")) != 0);
			CHECK(strcmp(s->memo[i].dir, base) != 0);
		}
	/* No path, no grant. */
	CHECK_EQ_INT(ask(s, "pipe:[123]", NONO_ACCESS_WRITE), EACCES);
	CHECK_EQ_INT(ask(s, "anon_inode:[eventfd]", NONO_ACCESS_READ), EACCES);
}

int main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	const char *dirs[] = {"w", "w/ro", "w/ro/rw", "w/secret", "other", "elsewhere"};
	for (size_t i = 0; i < N_ELEMENTS(dirs); i++)
		mkdir(P(dirs[i]), 0755);
	int fd = open(P("w/note"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	nono_error e = {0};
	nono_caps *c = nono_caps_new();
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w"), NONO_ACCESS_READ_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w/ro"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("w/ro/rw"), NONO_ACCESS_READ_WRITE, &e), 0);
	CHECK_EQ_INT(nono_caps_allow_path(c, P("other"), NONO_ACCESS_READ, &e), 0);
	CHECK_EQ_INT(nono_caps_deny_path(c, P("w/secret"), &e), 0);
	CHECK_EQ_INT(nono_caps_deny_path(c, P("w/note"), &e), 0);
	struct nono_supervisor *s = calloc(1, sizeof *s);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(nono_sup_meta_load(s, c), 0);
		test_memo_is_exact(s);
		nono_sup_meta_free(s);
		free(s);
	}
	nono_caps_free(c);
	unlink(P("w/note"));
	for (size_t i = N_ELEMENTS(dirs); i-- > 0;)
		rmdir(P(dirs[i]));
	rmdir(base);
	UNIT_DONE();
}
