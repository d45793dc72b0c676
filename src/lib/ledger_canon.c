/* ledger_canon.c — is a JSON text already in the ledger's canonical form (what jansson's
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) prints)?
 *
 * Why: a record's data arrives as text (nono_ledger_append). Parsing it with jansson and dumping it
 * back was 0.3-0.6 ms of every `nono run` for its 17 KB session_start (issue 10's startup target).
 * A text this check accepts is used as it is; anything else (reals with an exponent, \u escapes,
 * non-ASCII bytes, escaped keys, whitespace, unsorted or repeated keys, deep nesting, invalid JSON)
 * takes the jansson path as before, so the check only has to be sure of what it accepts, never
 * complete:
 *   - no whitespace outside strings; one object at the top, nothing after it;
 *   - strings of printable ASCII (0x20-0x7e) with only the escapes jansson writes for them
 *     (\" and \\) or for control characters (\b \f \n \r \t);
 *   - object keys without any escape, in strictly increasing byte order (sorted, no duplicates);
 *   - integers of at most 18 digits, no "-0"; reals without an exponent that print back the same
 *     (%.17g, as jansson prints them);
 *   - true, false, null; nesting at most 64 deep.
 * tests/unit/test_ledger.c checks that every text accepted equals jansson's own round trip. */
#include "ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct canon {
	const char *p;
	int depth;
};

static bool c_value(struct canon *c);

/* A string at c->p; its raw contents in *s and *n, *esc whether it holds an escape. */
static bool c_string(struct canon *c, const char **s, size_t *n, bool *esc)
{
	if (*c->p != '"')
		return false;
	const char *start = ++c->p;
	*esc = false;
	for (;;) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"')
			break;
		if (ch < 0x20 || ch > 0x7e)
			return false;
		if (ch == '\\') {
			char e = c->p[1];
			if (e == '\0' || !strchr("\"\\bfnrt", e))
				return false;
			*esc = true;
			c->p += 2;
			continue;
		}
		c->p++;
	}
	*s = start;
	*n = (size_t)(c->p - start);
	c->p++;
	return true;
}

/* A real in [s, end) (digits '.' digits) is canonical when it is what jansson prints for the double
 * it parses to: printf's %.17g, with ".0" added when that has no '.' (jsonp_dtostr). */
static bool real_is_canonical(const char *s, const char *end)
{
	char raw[48], out[64];
	size_t n = (size_t)(end - s);
	if (n >= sizeof raw)
		return false;
	memcpy(raw, s, n);
	raw[n] = '\0';
	int k = snprintf(out, sizeof out - 2, "%.17g", strtod(raw, NULL));
	if (k < 0 || (size_t)k >= sizeof out - 2)
		return false;
	if (!strpbrk(out, ".eE"))
		strcat(out, ".0");
	return !strcmp(out, raw);
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool c_number(struct canon *c)
{
	const char *start = c->p;
	if (*c->p == '-')
		c->p++;
	const char *digits = c->p;
	if (*c->p == '0')
		c->p++;
	else if (*c->p >= '1' && *c->p <= '9')
		while (is_digit(*c->p))
			c->p++;
	else
		return false;
	if (*c->p == '.') {
		c->p++;
		if (!is_digit(*c->p))
			return false;
		while (is_digit(*c->p))
			c->p++;
		return *c->p != 'e' && *c->p != 'E' && real_is_canonical(start, c->p);
	}
	/* An integer: "-0" prints as 0; 19 digits may not fit jansson's json_int_t. */
	return *c->p != 'e' && *c->p != 'E' && c->p - digits <= 18 &&
	       !(digits != start && *digits == '0');
}

static bool c_literal(struct canon *c, const char *word)
{
	size_t n = strlen(word);
	if (strncmp(c->p, word, n))
		return false;
	c->p += n;
	return true;
}

/* Raw key `a` sorts strictly before `b` (no escapes in either: raw bytes are the key's bytes). */
static bool key_before(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);
	return r < 0 || (r == 0 && an < bn);
}

static bool c_object(struct canon *c)
{
	c->p++; /* '{' */
	if (*c->p == '}') {
		c->p++;
		return true;
	}
	const char *prev = NULL;
	size_t prev_n = 0;
	for (;;) {
		const char *k;
		size_t kn;
		bool esc;
		if (!c_string(c, &k, &kn, &esc) || esc || (prev && !key_before(prev, prev_n, k, kn)) ||
		    *c->p++ != ':' || !c_value(c))
			return false;
		prev = k;
		prev_n = kn;
		if (*c->p == '}') {
			c->p++;
			return true;
		}
		if (*c->p++ != ',')
			return false;
	}
}

static bool c_array(struct canon *c)
{
	c->p++; /* '[' */
	if (*c->p == ']') {
		c->p++;
		return true;
	}
	for (;;) {
		if (!c_value(c))
			return false;
		if (*c->p == ']') {
			c->p++;
			return true;
		}
		if (*c->p++ != ',')
			return false;
	}
}

static bool c_value(struct canon *c)
{
	const char *s;
	size_t n;
	bool esc, ok;
	switch (*c->p) {
	case '{':
	case '[':
		if (++c->depth > 64)
			return false;
		ok = *c->p == '{' ? c_object(c) : c_array(c);
		c->depth--;
		return ok;
	case '"':
		return c_string(c, &s, &n, &esc);
	case 't':
		return c_literal(c, "true");
	case 'f':
		return c_literal(c, "false");
	case 'n':
		return c_literal(c, "null");
	default:
		return c_number(c);
	}
}

bool ledger_is_canonical_object(const char *text)
{
	struct canon c = {text, 0};
	return text && *text == '{' && c_value(&c) && *c.p == '\0';
}
