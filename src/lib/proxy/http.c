/* http.c — the proxy's HTTP/1.x wire parsing: request and response heads (incremental, bounded,
 * strict), body framing (Content-Length, chunked) without copying, authority / absolute-URL splitting
 * and the Proxy-Authorization check. Pure functions over caller buffers: no allocation, no I/O, so
 * the whole module is fuzzed (fuzz/fuzz_http_head.c) and unit-tested (tests/unit/test_http.c).
 *
 * Strictness is deliberate: a proxy and the upstream must agree on where a message ends, or a
 * request can be smuggled past the policy (RFC 9112 §11.2). So: CRLF only, no obs-fold, no space
 * before ':', Content-Length digits only and consistent, Transfer-Encoding only "chunked" and never
 * together with Content-Length. */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Find the end of the head; returns 1 (and *end, *skip), 0 need more, <0 malformed. */
static int find_head_end(const char *buf, size_t len, size_t *scan, size_t *skip, size_t *end,
			 const char **why)
{
	size_t s = 0;
	/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line. */
	while (s + 1 < len && buf[s] == '\r' && buf[s + 1] == '\n')
		s += 2;
	if (s >= len || (s + 1 == len && buf[s] == '\r'))
		return 0;
	size_t i = *scan > s ? *scan : s;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return (*why = "bare LF in the message head"), -EBADMSG;
			if (i >= s + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
				*skip = s;
				*end = i + 1;
				*scan = i + 1;
				return 1;
			}
		} else if (i > s && buf[i - 1] == '\r') {
			return (*why = "bare CR in the message head"), -EBADMSG;
		} else if (c == '\0') {
			return (*why = "NUL byte in the message head"), -EBADMSG;
		}
	}
	/* Resume one byte back so a CR at the very end is re-examined with its successor. */
	*scan = len > s + 1 ? len - 1 : s;
	return 0;
}

static int parse_version(const char *p, size_t len, int *minor)
{
	if (len != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
		return -1;
	*minor = p[7] - '0';
	return 0;
}

static int parse_headers(const char *p, const char *end, http_head *out, const char **why)
{
	out->nheaders = 0;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol) /* cannot happen: the head ends with CRLF CRLF */
			return (*why = "unterminated header line"), -EBADMSG;
		if (eol == p)
			return 0; /* the blank line */
		if (*p == ' ' || *p == '\t')
			return (*why = "obsolete header line folding"), -EBADMSG;
		const char *colon = p;
		while (colon < eol && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon == eol || *colon != ':')
			return (*why = "malformed header name"), -EBADMSG;
		if (out->nheaders == HTTP_MAX_HEADERS)
			return (*why = "too many header fields"), -E2BIG;
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *q = v; q < ve; q++) {
			unsigned char c = (unsigned char)*q;
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return (*why = "control character in a header value"), -EBADMSG;
		}
		http_header *h = &out->headers[out->nheaders++];
		h->name = p;
		h->name_len = (size_t)(colon - p);
		h->value = v;
		h->value_len = (size_t)(ve - v);
		p = eol + 2;
	}
	return 0;
}

int http_parse_request(const char *buf, size_t len, size_t *scan, http_head *out, const char **why)
{
	size_t skip = 0, end = 0;
	int r = find_head_end(buf, len, scan, &skip, &end, why);
	if (r <= 0)
		return r;
	memset(out, 0, sizeof *out);
	out->skipped = skip;
	out->head_len = end;
	const char *p = buf + skip, *lend = memchr(p, '\r', end - skip);
	const char *sp1 = memchr(p, ' ', (size_t)(lend - p));
	if (!sp1 || sp1 == p)
		return (*why = "malformed request line"), -EBADMSG;
	for (const char *q = p; q < sp1; q++)
		if (!is_tchar((unsigned char)*q))
			return (*why = "malformed method"), -EBADMSG;
	const char *t = sp1 + 1;
	const char *sp2 = memchr(t, ' ', (size_t)(lend - t));
	if (!sp2 || sp2 == t)
		return (*why = "malformed request line"), -EBADMSG;
	for (const char *q = t; q < sp2; q++) {
		unsigned char c = (unsigned char)*q;
		if (c <= 0x20 || c >= 0x7f)
			return (*why = "invalid character in the request target"), -EBADMSG;
	}
	if (parse_version(sp2 + 1, (size_t)(lend - sp2 - 1), &out->version_minor) < 0)
		return (*why = "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)"), -EBADMSG;
	out->method = p;
	out->method_len = (size_t)(sp1 - p);
	out->target = t;
	out->target_len = (size_t)(sp2 - t);
	r = parse_headers(lend + 2, buf + end, out, why);
	return r < 0 ? r : 1;
}

int http_parse_response(const char *buf, size_t len, size_t *scan, http_head *out, const char **why)
{
	size_t skip = 0, end = 0;
	int r = find_head_end(buf, len, scan, &skip, &end, why);
	if (r <= 0)
		return r;
	memset(out, 0, sizeof *out);
	out->skipped = skip;
	out->head_len = end;
	const char *p = buf + skip, *lend = memchr(p, '\r', end - skip);
	size_t ll = (size_t)(lend - p);
	if (ll < 12 || parse_version(p, 8, &out->version_minor) < 0 || p[8] != ' ')
		return (*why = "malformed status line"), -EBADMSG;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return (*why = "malformed status code"), -EBADMSG;
		st = st * 10 + (p[i] - '0');
	}
	if (st < 100 || (ll > 12 && p[12] != ' '))
		return (*why = "malformed status code"), -EBADMSG;
	for (const char *q = p + 12; q < lend; q++) {
		unsigned char c = (unsigned char)*q;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return (*why = "control character in the reason phrase"), -EBADMSG;
	}
	out->status = st;
	out->target = ll > 13 ? p + 13 : p + ll;
	out->target_len = ll > 13 ? ll - 13 : 0;
	r = parse_headers(lend + 2, buf + end, out, why);
	return r < 0 ? r : 1;
}

bool http_token_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

int http_find_header(const http_head *h, const char *name, int from)
{
	for (size_t i = from < 0 ? 0 : (size_t)from; i < h->nheaders; i++)
		if (http_token_eq(h->headers[i].name, h->headers[i].name_len, name))
			return (int)i;
	return -1;
}

bool http_list_has(const char *v, size_t len, const char *token)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && http_token_eq(v + s, e - s, token))
			return true;
	}
	return false;
}

bool http_is_hop_header(const http_header *hd, const http_head *h)
{
	static const char *const hop[] = {"Host", "Proxy-Authorization", "Proxy-Connection", "Connection",
					  "Keep-Alive", "TE", "Upgrade", "Proxy-Authenticate", "Trailer"};
	for (size_t i = 0; i < N_ELEMENTS(hop); i++)
		if (http_token_eq(hd->name, hd->name_len, hop[i]))
			return true;
	/* The framing fields stay whatever Connection says: the body is relayed by the framing this
	 * head declares, so the upstream must see the same (dropping Content-Length made the body a
	 * second, unchecked request: review of 2026-12-05, F1). */
	if (http_token_eq(hd->name, hd->name_len, "Content-Length") ||
	    http_token_eq(hd->name, hd->name_len, "Transfer-Encoding"))
		return false;
	char name[64];
	if (hd->name_len >= sizeof name)
		return false;
	memcpy(name, hd->name, hd->name_len);
	name[hd->name_len] = '\0';
	/* Fields the client named in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
	for (int i = http_find_header(h, "Connection", 0); i >= 0; i = http_find_header(h, "Connection", i + 1))
		if (http_list_has(h->headers[i].value, h->headers[i].value_len, name))
			return true;
	return false;
}

static int parse_length(const char *v, size_t len, uint64_t *out)
{
	if (len == 0 || len > 18)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* The last transfer coding in all Transfer-Encoding fields; *n counts codings. */
static bool te_last_is_chunked(const http_head *h, unsigned *n)
{
	bool last_chunked = false;
	*n = 0;
	for (int i = http_find_header(h, "Transfer-Encoding", 0); i >= 0;
	     i = http_find_header(h, "Transfer-Encoding", i + 1)) {
		const char *v = h->headers[i].value;
		size_t len = h->headers[i].value_len, k = 0;
		while (k < len) {
			while (k < len && (v[k] == ' ' || v[k] == '\t' || v[k] == ','))
				k++;
			size_t s = k;
			while (k < len && v[k] != ',')
				k++;
			size_t e = k;
			while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e > s) {
				(*n)++;
				last_chunked = http_token_eq(v + s, e - s, "chunked");
			}
		}
	}
	return last_chunked;
}

static int content_length(const http_head *h, bool *present, uint64_t *len, const char **why)
{
	*present = false;
	for (int i = http_find_header(h, "Content-Length", 0); i >= 0;
	     i = http_find_header(h, "Content-Length", i + 1)) {
		uint64_t v;
		if (parse_length(h->headers[i].value, h->headers[i].value_len, &v) < 0)
			return (*why = "invalid Content-Length"), -EBADMSG;
		if (*present && v != *len)
			return (*why = "conflicting Content-Length fields"), -EBADMSG;
		*present = true;
		*len = v;
	}
	return 0;
}

int http_request_body(const http_head *h, http_body *out, const char **why)
{
	memset(out, 0, sizeof *out);
	bool has_cl;
	uint64_t cl = 0;
	if (content_length(h, &has_cl, &cl, why) < 0)
		return -EBADMSG;
	bool has_te = http_find_header(h, "Transfer-Encoding", 0) >= 0;
	if (has_te) {
		unsigned n;
		if (has_cl)
			return (*why = "both Content-Length and Transfer-Encoding"), -EBADMSG;
		if (h->version_minor == 0)
			return (*why = "Transfer-Encoding in an HTTP/1.0 request"), -EBADMSG;
		if (!te_last_is_chunked(h, &n) || n != 1)
			return (*why = "unsupported transfer coding (only \"chunked\")"), -ENOTSUP;
		out->kind = HTTP_BODY_CHUNKED;
		return 0;
	}
	if (has_cl) {
		out->kind = HTTP_BODY_LENGTH;
		out->remaining = cl;
		out->done = cl == 0;
		return 0;
	}
	out->kind = HTTP_BODY_NONE;
	out->done = true;
	return 0;
}

int http_response_body(const http_head *h, const char *method, size_t method_len, http_body *out,
		       const char **why)
{
	memset(out, 0, sizeof *out);
	if (http_token_eq(method, method_len, "HEAD") || h->status < 200 || h->status == 204 ||
	    h->status == 304) {
		out->kind = HTTP_BODY_NONE;
		out->done = true;
		return 0;
	}
	unsigned n;
	if (http_find_header(h, "Transfer-Encoding", 0) >= 0) {
		/* RFC 9112 §6.3: chunked last → chunked (Content-Length ignored); otherwise the body
		 * runs until the connection closes. */
		out->kind = te_last_is_chunked(h, &n) ? HTTP_BODY_CHUNKED : HTTP_BODY_UNTIL_CLOSE;
		return 0;
	}
	bool has_cl;
	uint64_t cl = 0;
	if (content_length(h, &has_cl, &cl, why) < 0)
		return -EBADMSG;
	if (has_cl) {
		out->kind = HTTP_BODY_LENGTH;
		out->remaining = cl;
		out->done = cl == 0;
		return 0;
	}
	out->kind = HTTP_BODY_UNTIL_CLOSE;
	return 0;
}

enum {
	CS_SIZE = 0,
	CS_EXT,
	CS_SIZE_LF,
	CS_DATA,
	CS_DATA_CR,
	CS_DATA_LF,
	CS_TRAILER_START,
	CS_TRAILER,
	CS_TRAILER_LF,
	CS_FINAL_LF,
};

#define CHUNK_LINE_MAX 4096
#define CHUNK_TRAILER_MAX 16384

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One byte of the chunked framing outside chunk data (size line, extensions, CRLFs, trailers).
 * Returns 0 or -EBADMSG. */
static int chunk_step(http_body *b, unsigned char c)
{
	switch (b->cstate) {
	case CS_SIZE: {
		int d = hexval(c);
		if (d >= 0) {
			if (++b->digits > 15) /* 2^60: far beyond any real chunk */
				return -EBADMSG;
			b->remaining = b->remaining * 16 + (uint64_t)d;
		} else if (b->digits && (c == ';' || c == ' ' || c == '\t')) {
			b->cstate = CS_EXT;
		} else if (b->digits && c == '\r') {
			b->cstate = CS_SIZE_LF;
		} else {
			return -EBADMSG;
		}
		return 0;
	}
	case CS_EXT:
		if (c == '\r')
			b->cstate = CS_SIZE_LF;
		else if (c == '\n' || c == 0 || ++b->line_len > CHUNK_LINE_MAX)
			return -EBADMSG;
		return 0;
	case CS_SIZE_LF:
		if (c != '\n')
			return -EBADMSG;
		b->cstate = b->remaining ? CS_DATA : CS_TRAILER_START;
		return 0;
	case CS_DATA_CR:
		if (c != '\r')
			return -EBADMSG;
		b->cstate = CS_DATA_LF;
		return 0;
	case CS_DATA_LF:
		if (c != '\n')
			return -EBADMSG;
		b->cstate = CS_SIZE;
		b->digits = 0;
		b->line_len = 0;
		return 0;
	case CS_TRAILER_START:
		if (c == '\r') {
			b->cstate = CS_FINAL_LF;
			return 0;
		}
		if (c == '\n' || c == 0)
			return -EBADMSG;
		b->cstate = CS_TRAILER;
		return ++b->trailer_bytes > CHUNK_TRAILER_MAX ? -EBADMSG : 0;
	case CS_TRAILER:
		if (c == '\r')
			b->cstate = CS_TRAILER_LF;
		else if (c == '\n' || c == 0 || ++b->trailer_bytes > CHUNK_TRAILER_MAX)
			return -EBADMSG;
		return 0;
	case CS_TRAILER_LF:
		if (c != '\n')
			return -EBADMSG;
		b->cstate = CS_TRAILER_START;
		return 0;
	case CS_FINAL_LF:
		if (c != '\n')
			return -EBADMSG;
		b->done = true;
		return 0;
	default:
		return -EBADMSG;
	}
}

long http_body_feed(http_body *b, const char *buf, size_t len)
{
	if (b->done || b->kind == HTTP_BODY_NONE) {
		b->done = true;
		return 0;
	}
	if (b->kind == HTTP_BODY_UNTIL_CLOSE)
		return (long)len;
	if (b->kind == HTTP_BODY_LENGTH) {
		size_t n = b->remaining < len ? (size_t)b->remaining : len;
		b->remaining -= n;
		b->done = b->remaining == 0;
		return (long)n;
	}
	size_t i = 0;
	while (i < len && !b->done) {
		if (b->cstate == CS_DATA) { /* chunk data passes whole */
			size_t n = len - i;
			if (n > b->remaining)
				n = (size_t)b->remaining;
			b->remaining -= n;
			i += n;
			if (b->remaining == 0)
				b->cstate = CS_DATA_CR;
			continue;
		}
		if (chunk_step(b, (unsigned char)buf[i]) < 0)
			return -EBADMSG;
		i++;
	}
	return (long)i;
}

int http_split_authority(const char *s, size_t len, uint16_t default_port, char *host, size_t cap,
			 uint16_t *port)
{
	const char *hs, *he, *rest;
	if (len == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (!rb)
			return -EINVAL;
		hs = s + 1;
		he = rb;
		rest = rb + 1;
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
			return -EINVAL; /* an IPv6 literal needs brackets */
		hs = s;
		he = colon ? colon : s + len;
		rest = he;
	}
	const char *end = s + len;
	if (he == hs || (size_t)(he - hs) >= cap)
		return -EINVAL;
	for (const char *q = hs; q < he; q++)
		if (*q == '@' || *q == '/' || *q == '\\' || *q == '?' || *q == '#' || *q == '%' ||
		    (unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return -EINVAL;
	if (rest == end) {
		if (!default_port)
			return -EINVAL;
		*port = default_port;
	} else {
		if (*rest != ':' || rest + 1 == end || end - rest - 1 > 5)
			return -EINVAL;
		unsigned v = 0;
		for (const char *q = rest + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*q - '0');
		}
		if (v == 0 || v > 65535)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	return 0;
}

int http_parse_absolute(const char *t, size_t len, char *host, size_t cap, uint16_t *port,
			const char **path, size_t *path_len)
{
	const char *sep = NULL;
	for (size_t i = 0; i + 2 < len && i < 16; i++)
		if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
			sep = t + i;
			break;
		}
	if (!sep)
		return -EINVAL;
	if (!http_token_eq(t, (size_t)(sep - t), "http"))
		return -ENOTSUP;
	const char *a = sep + 3, *end = t + len, *ae = a;
	while (ae < end && *ae != '/' && *ae != '?' && *ae != '#')
		ae++;
	if (memchr(a, '@', (size_t)(ae - a)))
		return -EINVAL; /* userinfo in the URL: refused, it only serves to confuse */
	if (http_split_authority(a, (size_t)(ae - a), 80, host, cap, port) < 0)
		return -EINVAL;
	const char *pe = memchr(ae, '#', (size_t)(end - ae));
	if (!pe)
		pe = end;
	if (pe == ae) {
		*path = NULL;
		*path_len = 0;
	} else {
		*path = ae;
		*path_len = (size_t)(pe - ae);
	}
	return 0;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool http_check_proxy_auth(const http_head *h, const char *token)
{
	int i = http_find_header(h, "Proxy-Authorization", 0);
	if (i < 0 || http_find_header(h, "Proxy-Authorization", i + 1) >= 0)
		return false;
	const char *v = h->headers[i].value;
	size_t len = h->headers[i].value_len;
	if (len < 6 || strncasecmp(v, "Basic ", 6) != 0)
		return false;
	v += 6;
	len -= 6;
	while (len && *v == ' ')
		v++, len--;
	unsigned char dec[128];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	size_t pad = 0;
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)v[k];
		if (c == '=') {
			pad++;
			continue;
		}
		int d = b64val(c);
		if (d < 0 || pad)
			return false;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == sizeof dec)
				return false;
			dec[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2)
		return false;
	char want[128];
	size_t wl = (size_t)snprintf(want, sizeof want, "nono:%s", token);
	if (wl >= sizeof want || n != wl)
		return false;
	unsigned char diff = 0;
	for (size_t k = 0; k < n; k++)
		diff |= (unsigned char)(dec[k] ^ (unsigned char)want[k]);
	return diff == 0;
}
