/* keyring_decode.c and the keyring:// query (keyring.c): go-keyring's "go-keyring-base64:" form,
 * padded and unpadded base64, and every refusal (the error names the source, never the value). */
#include "../../src/lib/proxy/keyring.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* Decode `in` (a copy, as np_keyring_read hands it over); the result or NULL with *rc. */
static char *decode(const char *in, int *rc, nono_error *err)
{
	size_t len = strlen(in);
	unsigned char *buf = malloc(len + 1);
	memcpy(buf, in, len + 1);
	*rc = np_go_keyring_decode("gh", "keyring://s/a?decode=go-keyring", buf, &len, err);
	if (*rc < 0) {
		free(buf);
		return NULL;
	}
	CHECK(buf[len] == '\0' && strlen((char *)buf) == len);
	return (char *)buf;
}

static void test_decode(void)
{
	nono_error err = {0};
	int rc;
	char *s = decode("go-keyring-base64:Z2hvX3NlY3JldA==", &rc, &err); /* gho_secret */
	CHECK(s && !strcmp(s, "gho_secret"));
	free(s);
	s = decode("go-keyring-base64:Z2hvX3NlY3JldA", &rc, &err); /* unpadded */
	CHECK(s && !strcmp(s, "gho_secret"));
	free(s);
	s = decode("go-keyring-base64:w6k=", &rc, &err); /* "é": UTF-8 is fine */
	CHECK(s && !strcmp(s, "\xc3\xa9"));
	free(s);
	static const char *const bad[] = {
		"Z2hvX3NlY3JldA==",                  /* no prefix */
		"go-keyring-base64",                 /* prefix cut short */
		"go-keyring-base64:",                /* nothing after it */
		"go-keyring-base64:Z",               /* a length base64 cannot have */
		"go-keyring-base64:Z2h=vX3N",        /* padding inside */
		"go-keyring-base64:Z2hv X3N",        /* a space */
		"go-keyring-base64:Zg===",           /* three '=' */
		"go-keyring-base64://4=",            /* 0xff 0xfe: not UTF-8 */
		"go-keyring-base64:wA==",            /* 0xc0: an overlong lead byte */
		"go-keyring-base64:4ICv",            /* overlong '/' in three bytes (review I1) */
		"go-keyring-base64:7aCA",            /* a UTF-16 surrogate (review I1) */
		"go-keyring-base64:9JCAgA==",        /* above U+10FFFF (review I1) */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		s = decode(bad[i], &rc, &err);
		CHECK(!s && rc == -EINVAL);
		CHECK(strstr(err.message, "keyring://s/a?decode=go-keyring") != NULL);
		CHECK(strstr(bad[i], "Z2h") == NULL || strstr(err.message, "Z2h") == NULL);
		free(s);
	}
}

static void test_query(void)
{
	nono_error err = {0};
	CHECK_EQ_INT(np_keyring_check("p", "keyring://gh:github.com/alice?decode=go-keyring", &err), 0);
	CHECK_EQ_INT(np_keyring_check("p", "keyring://alice?decode=go-keyring", &err), 0);
	CHECK_EQ_INT(np_keyring_check("p", "keyring://alice", &err), 0);
	CHECK_EQ_INT(np_keyring_check("p", "alice", &err), 0);
	static const char *const bad[] = {
		"keyring://alice?decode=GO-KEYRING", "keyring://alice?decode=", "keyring://alice?decode",
		"keyring://alice?", "keyring://alice?&", "keyring://alice?x=1", "keyring://alice?decode=go-keyring&",
		"keyring://alice#f", "keyring://a/b?decode=go-keyring#f", "keyring://?decode=go-keyring",
		"keyring://a/?decode=go-keyring", "alice?decode=go-keyring",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = np_keyring_check("p", bad[i], &err);
		if (rc != -EINVAL)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, -EINVAL);
	}
	CHECK_EQ_INT(np_keyring_name_len("alice?decode=go-keyring"), 5);
	CHECK_EQ_INT(np_keyring_name_len("alice"), 5);
}

int main(void)
{
	test_decode();
	test_query();
	UNIT_DONE();
}
