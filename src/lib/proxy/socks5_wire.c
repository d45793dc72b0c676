/* socks5_wire.c — the SOCKS5 messages (RFC 1928, RFC 1929) parsed from untrusted bytes; no
 * state, no I/O (fuzz/fuzz_socks5.c). The connection side is socks5.c. */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int socks5_parse_greeting(const uint8_t *b, size_t len, unsigned *offered)
{
	*offered = 0;
	if (len < 2)
		return len && b[0] != 5 ? -EBADMSG : 0;
	if (b[0] != 5 || b[1] == 0)
		return -EBADMSG;
	size_t need = 2 + (size_t)b[1];
	if (len < need)
		return 0;
	for (size_t i = 2; i < need; i++) {
		if (b[i] == 0x00)
			*offered |= SOCKS5_AUTH_NONE;
		else if (b[i] == 0x02)
			*offered |= SOCKS5_AUTH_USERPASS;
	}
	return (int)need;
}

/* A length-prefixed field at b[*off] into out (256 bytes). 0 need more, 1 done, -EBADMSG. */
static int field(const uint8_t *b, size_t len, size_t *off, char *out)
{
	if (*off >= len)
		return 0;
	size_t n = b[*off];
	if (len - *off - 1 < n)
		return 0;
	if (memchr(b + *off + 1, 0, n))
		return -EBADMSG;
	memcpy(out, b + *off + 1, n);
	out[n] = '\0';
	*off += 1 + n;
	return 1;
}

int socks5_parse_userpass(const uint8_t *b, size_t len, char *user, char *pass)
{
	size_t off = 1;
	user[0] = pass[0] = '\0';
	if (len == 0)
		return 0;
	if (b[0] != 1)
		return -EBADMSG;
	int r = field(b, len, &off, user);
	if (r <= 0)
		return r;
	r = field(b, len, &off, pass);
	return r <= 0 ? r : (int)off;
}

/* The address of a request: *need is its total length once known (0 = need more). */
static int request_addr(const uint8_t *b, size_t len, char *host, size_t cap, size_t *need,
			uint8_t *rep)
{
	size_t alen;
	*need = 0;
	switch (b[3]) {
	case 1: alen = 4; break;
	case 4: alen = 16; break;
	case 3:
		if (len < 5)
			return 0;
		alen = 1 + (size_t)b[4];
		break;
	default: *rep = 0x08; return -ENOTSUP;
	}
	if (len < 4 + alen + 2)
		return 0;
	*need = 4 + alen + 2;
	if (b[3] == 1 || b[3] == 4) {
		if (!inet_ntop(b[3] == 1 ? AF_INET : AF_INET6, b + 4, host, (socklen_t)cap))
			return -EBADMSG;
		return 0;
	}
	size_t n = alen - 1;
	if (n == 0 || n >= cap || memchr(b + 5, 0, n))
		return -EBADMSG;
	memcpy(host, b + 5, n);
	host[n] = '\0';
	return 0;
}

int socks5_parse_request(const uint8_t *b, size_t len, char *host, size_t cap, uint16_t *port,
			 uint8_t *rep)
{
	size_t need;
	*rep = 0x01;
	host[0] = '\0';
	*port = 0;
	if (len >= 1 && b[0] != 5)
		return -EBADMSG;
	if (len >= 3 && b[2] != 0)
		return -EBADMSG;
	if (len < 4)
		return 0;
	int r = request_addr(b, len, host, cap, &need, rep);
	if (r < 0 || need == 0) {
		host[0] = '\0';
		return r;
	}
	if (b[1] != 1) { /* BIND and UDP ASSOCIATE would open listeners or datagrams: refused */
		*rep = 0x07;
		host[0] = '\0';
		return -ENOTSUP;
	}
	*port = (uint16_t)(b[need - 2] << 8 | b[need - 1]);
	if (*port == 0) {
		host[0] = '\0';
		return -EBADMSG;
	}
	*rep = 0;
	return (int)need;
}

uint8_t socks5_reply_code(int status, const char *code)
{
	if (status == 403 || status == 407)
		return 0x02; /* connection not allowed by ruleset */
	if (status == 502 && code && !strcmp(code, "dns-failure"))
		return 0x04; /* host unreachable */
	if (status == 502)
		return 0x05; /* connection refused */
	if (status == 504 || status == 408)
		return 0x06; /* TTL expired: the closest to "timed out" */
	return 0x01;         /* general failure */
}
