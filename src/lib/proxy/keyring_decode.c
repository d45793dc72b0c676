/* keyring_decode.c — `keyring://…?decode=go-keyring` (keyring.h): items written by Go programs
 * through github.com/zalando/go-keyring (gh, the Supabase CLI, …) hold "go-keyring-base64:" and
 * the value in standard base64. The Rust nono accepts the same query and decodes the same way:
 * the prefix is required (a value without it is an error, not passed on as is), the rest must be
 * base64 and decode to non-empty UTF-8. */
#include "keyring.h"

#include <string.h>

#define GK_PREFIX "go-keyring-base64:"

static int b64(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A'
	       : c >= 'a' && c <= 'z' ? c - 'a' + 26
	       : c >= '0' && c <= '9' ? c - '0' + 52
	       : c == '+' ? 62
	       : c == '/' ? 63
			  : -1;
}

int np_go_keyring_decode(const char *prefix, const char *source, unsigned char *buf, size_t *len,
			 nono_error *err)
{
	const size_t pl = sizeof GK_PREFIX - 1;
	if (*len < pl || memcmp(buf, GK_PREFIX, pl) != 0)
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the stored value does not start "
					       "with \"" GK_PREFIX "\" (remove ?decode=go-keyring if a Go program "
					       "did not store it)", prefix, source);
	const unsigned char *in = buf + pl;
	size_t n = *len - pl, end = n, pad = 0;
	while (end && in[end - 1] == '=' && pad < 2)
		end--, pad++;
	if (pad ? (end + pad) % 4 != 0 : end % 4 == 1)
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the go-keyring value is not valid "
					       "base64 (its length)", prefix, source);
	/* In place: the output (3 bytes per 4 characters) never overtakes the input, which starts
	 * after the prefix. */
	size_t o = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < end; i++) {
		int v = b64(in[i]);
		if (v < 0)
			return nono_fail(err, -EINVAL, "route %s: credential %.300s: the go-keyring value is not "
						       "valid base64 (a character at offset %zu)", prefix, source, i);
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	explicit_bzero(buf + o, *len - o);
	*len = o;
	if (!o)
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the go-keyring value decodes to "
					       "nothing", prefix, source);
	if (!nono_utf8_valid(buf, o))
		return nono_fail(err, -EINVAL, "route %s: credential %.300s: the go-keyring value does not "
					       "decode to UTF-8 text", prefix, source);
	return 0;
}
