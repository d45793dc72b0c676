/* socks5.c — SOCKS5 (RFC 1928) on the proxy's own listener, for TCP that is not HTTP (ssh,
 * databases, git over ssh). A connection whose first byte is 5 comes here from request.c (an HTTP
 * request line never starts with that byte).
 *
 * Authentication matches the HTTP side: the username/password method (RFC 1929) with user "nono"
 * and the session token as password, compared in constant time — the child gets it in
 * ALL_PROXY=socks5h://nono:TOKEN@127.0.0.1:PORT. Method 0x00 (none) is chosen only when the proxy
 * accepts CONNECT without the token (nono_proxy_config_set_connect_without_token). Unlike HTTP, the
 * protocol puts the credentials before the target, so a wrong token is refused before any policy
 * decision (nothing has been resolved or dialled yet either way).
 *
 * Only CONNECT is served (BIND and UDP ASSOCIATE get reply 0x07). The target — a name (socks5h:
 * resolved by the proxy), an IPv4 or an IPv6 literal — then takes exactly the path of an HTTP
 * CONNECT (request.c): allowlist on the name, resolve, internal and metadata addresses refused,
 * dial the checked addresses; the answers become SOCKS reply codes (socks5_reply_code) and the
 * reason goes to the audit event (mode "socks5"). The handshake replies are a few bytes each: a
 * client that does not read them (socket buffer full) is disconnected rather than waited for. */
#include "socks5.h"

#include <stdio.h>
#include <string.h>

enum { PH_GREETING, PH_USERPASS, PH_REQUEST, PH_DECIDED };

/* A handshake reply: 1 when sent whole, else the connection is closed and -1. */
static int reply(struct conn *c, const void *msg, size_t len)
{
	if (np_send_some(c->cio.fd, msg, len) == (ssize_t)len)
		return 1;
	conn_close(c);
	return -1;
}

static void refuse(struct conn *c, const void *msg, size_t len, int status, const char *reason)
{
	conn_audit(c, "deny", status, reason);
	if (!len || outq_set(&c->cq, msg, len) < 0)
		outq_reset(&c->cq);
	conn_closing(c);
}

static bool token_ok(const char *user, const char *pass, const char *token)
{
	size_t pl = strlen(pass), tl = strlen(token);
	unsigned char diff = (unsigned char)(pl != tl) | (unsigned char)(strcmp(user, "nono") != 0);
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)(token[i] ^ (i < pl ? pass[i] : 0));
	return diff == 0;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* One complete message at the head of c->in, if there is one. Returns 1 to go on parsing, 0 to
 * wait for bytes, -1 when the connection was handed on or is closing. */
static int step(struct conn *c)
{
	const uint8_t *b = (const uint8_t *)c->in;
	char user[256], pass[256], host[NP_HOST_MAX];
	unsigned offered;
	uint16_t port;
	uint8_t rep;
	int r = 0;
	switch (c->socks_phase) {
	case PH_GREETING:
		if ((r = socks5_parse_greeting(b, c->in_len, &offered)) <= 0)
			break;
		consume(c, (size_t)r);
		if (offered & SOCKS5_AUTH_USERPASS) {
			c->socks_phase = PH_USERPASS;
			return reply(c, "\x05\x02", 2);
		}
		if ((offered & SOCKS5_AUTH_NONE) && c->x->cfg->connect_without_token) {
			c->authorized = true;
			c->socks_phase = PH_REQUEST;
			return reply(c, "\x05\x00", 2);
		}
		refuse(c, "\x05\xff", 2, 407, "SOCKS5 client offered no username/password method "
					      "(user nono, the session token as password)");
		return -1;
	case PH_USERPASS:
		r = socks5_parse_userpass(b, c->in_len, user, pass);
		if (r > 0) {
			consume(c, (size_t)r);
			c->authorized = c->x->cfg->connect_without_token || token_ok(user, pass, c->x->token);
		}
		explicit_bzero(pass, sizeof pass);
		if (r <= 0)
			break;
		if (!c->authorized) {
			refuse(c, "\x01\x01", 2, 407, "SOCKS5 credentials wrong (user nono, the session "
						      "token as password)");
			return -1;
		}
		c->socks_phase = PH_REQUEST;
		return reply(c, "\x01\x00", 2);
	case PH_REQUEST:
		r = socks5_parse_request(b, c->in_len, host, sizeof host, &port, &rep);
		if (r == 0)
			return 0;
		c->socks_phase = PH_DECIDED;
		if (r < 0) {
			uint8_t msg[10] = {5, rep, 0, 1};
			refuse(c, msg, sizeof msg, r == -ENOTSUP ? 501 : 400,
			       rep == 0x07 ? "SOCKS5: only CONNECT is served (no BIND or UDP ASSOCIATE)"
			       : rep == 0x08 ? "SOCKS5: unknown address type" : "SOCKS5: malformed request");
			return -1;
		}
		consume(c, (size_t)r); /* what follows is the tunnel's early data */
		c->socks_go(c, host, port);
		return -1;
	}
	if (r < 0) {
		refuse(c, NULL, 0, 400, "SOCKS5: malformed handshake");
		return -1;
	}
	return 0;
}

static void socks_event(struct np_io *io, uint32_t what)
{
	(void)what;
	struct conn *c = CONN_OF(io, cio);
	for (;;) {
		int r;
		while ((r = step(c)) > 0)
			;
		if (r < 0)
			return;
		if (c->in_len == c->in_cap) { /* no SOCKS message is longer than 515 bytes */
			refuse(c, NULL, 0, 400, "SOCKS5: message too long");
			return;
		}
		int got = np_recv_more(c->cio.fd, c->in, &c->in_len, c->in_cap);
		if (got == 0) {
			(void)np_io_want(c->x->loop, &c->cio, NP_IN);
			return;
		}
		if (got < 0) {
			conn_close(c); /* gone before asking for anything */
			return;
		}
	}
}

void socks5_start(struct conn *c, void (*go)(struct conn *c, const char *host, uint16_t port))
{
	c->socks = true;
	c->socks_go = go;
	c->socks_phase = PH_GREETING;
	c->cio.fn = socks_event;
	snprintf(c->ev.mode, sizeof c->ev.mode, "socks5");
	socks_event(&c->cio, NP_IN);
}
