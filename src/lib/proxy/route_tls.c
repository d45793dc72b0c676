/* route_tls.c — the TLS leg of a route to its https:// upstream, on the loop thread with
 * non-blocking OpenSSL: the handshake is driven by SSL_ERROR_WANT_READ/WANT_WRITE from the loop's
 * events (never a blocking call in the loop), the peer is verified against the system trust store
 * or the route's tls_ca (name or IP checked with SSL_set1_host / the IP parameter), an optional
 * client certificate is presented, and the session is kept for resumption by the next request on
 * the route (kept connections are reused first: the pool below). After the handshake forward.c streams both ways through the TLS-aware send/recv of conn.c. A certificate the
 * route does not trust ends the request with 502 and the verifier's reason. */
#include "relay.h"
#include "route.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void tls_error(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();
	if (!e) {
		snprintf(buf, cap, "unknown TLS error");
		return;
	}
	ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
}

/* A session the upstream offers for resumption. TLS 1.3 sends its tickets after the handshake (read
 * with the response), so they are taken here, when they arrive, rather than at the handshake's end.
 * Keeps the newest; returns 1: OpenSSL hands over the reference. */
static int new_session(SSL *s, SSL_SESSION *sess)
{
	struct np_route *r = SSL_get_app_data(s);
	if (!r || !SSL_SESSION_is_resumable(sess))
		return 0;
	pthread_mutex_lock(&r->session_lock);
	SSL_SESSION *old = r->session;
	r->session = sess;
	pthread_mutex_unlock(&r->session_lock);
	SSL_SESSION_free(old);
	return 1;
}

int np_route_tls_init(struct np_route *r, nono_error *err)
{
	char why[200];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return nono_fail(err, -ENOMEM, "route %s: cannot create a TLS context", r->prefix);
	r->ssl_ctx = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Buffers are kept (no SSL_MODE_RELEASE_BUFFERS: ~34 KiB per kept connection, at most
	 * NP_ROUTE_POOL a route, instead of a malloc/free pair per record), and read ahead: a record
	 * arrives in one read(2) instead of two (header, then body). Every reader calls SSL_read until it
	 * would block, and the pool checks SSL_has_pending, so no byte waits unseen in OpenSSL's buffer. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	/* No renegotiation: a write never has to wait for a read (TLS 1.2; 1.3 has none). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	/* ALPN http/1.1 only: the proxy speaks HTTP/1.1 to the upstream, and a server that picks h2
	 * for a client offering no ALPN list (some CDNs default to it when offered) must not. */
	static const unsigned char h11[] = "\x08http/1.1";
	if (SSL_CTX_set_alpn_protos(ctx, h11, sizeof h11 - 1) != 0) /* 0 is success here */
		return nono_fail(err, -ENOMEM, "route %s: cannot set the TLS ALPN list", r->prefix);
	int ok = r->tls_ca ? SSL_CTX_load_verify_locations(ctx, r->tls_ca, NULL)
			   : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		tls_error(why, sizeof why);
		return nono_fail(err, -EINVAL, "route %s: trust store %s: %s", r->prefix,
				 r->tls_ca ? r->tls_ca : "(system)", why);
	}
	if (r->tls_cert && (SSL_CTX_use_certificate_chain_file(ctx, r->tls_cert) != 1 ||
			    SSL_CTX_use_PrivateKey_file(ctx, r->tls_key, SSL_FILETYPE_PEM) != 1 ||
			    SSL_CTX_check_private_key(ctx) != 1)) {
		tls_error(why, sizeof why);
		return nono_fail(err, -EINVAL, "route %s: client certificate %s / key %s: %s", r->prefix,
				 r->tls_cert, r->tls_key, why);
	}
	return 0;
}

void np_route_tls_free(struct np_route *r)
{
	if (!r->started)
		return;
	np_route_pool_free(r);
	SSL_SESSION_free(r->session);
	SSL_CTX_free(r->ssl_ctx);
	pthread_mutex_destroy(&r->session_lock);
	r->ssl_ctx = r->session = NULL;
	r->started = false;
}

static void tls_fail(struct conn *c, const char *reason)
{
	conn_audit(c, "allow", 502, reason);
	conn_answer(c, 502, "Bad Gateway", "upstream-tls", reason);
}

static void pool_put(struct conn *c);

static void tls_ready(struct conn *c)
{
	c->up_done = pool_put;
	conn_audit(c, "allow", 0, "allowed");
	forward_start(c);
}

static void handshake(struct conn *c)
{
	char reason[NONO_REASON_MAX], why[200];
	ERR_clear_error();
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		tls_ready(c);
		return;
	}
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (np_io_want(c->x->loop, &c->uio, e == SSL_ERROR_WANT_READ ? NP_IN : NP_OUT) < 0)
			tls_fail(c, "TLS handshake: cannot wait for the upstream socket");
		return;
	}
	long vr = SSL_get_verify_result(c->ssl);
	const struct np_route *r = c->route;
	if (vr != X509_V_OK)
		snprintf(reason, sizeof reason, "TLS to %.60s port %u (route %.30s): certificate not trusted: %.60s%s",
			 r->host, r->port, r->prefix, X509_verify_cert_error_string(vr),
			 r->tls_ca ? " (checked against the route's CA)" : " (checked against the system trust store)");
	else {
		tls_error(why, sizeof why);
		snprintf(reason, sizeof reason, "TLS to %.60s port %u (route %.30s) failed: %.100s", r->host, r->port,
			 r->prefix, e == SSL_ERROR_SYSCALL ? "connection closed during the handshake" : why);
	}
	snprintf(c->ev.denial_category, sizeof c->ev.denial_category, "upstream_tls");
	tls_fail(c, reason);
}

static void handshake_event(struct np_io *io, uint32_t what)
{
	(void)what;
	handshake(CONN_OF(io, uio));
}

static void handshake_timeout(struct conn *c)
{
	char reason[NONO_REASON_MAX];
	snprintf(reason, sizeof reason, "TLS handshake with %.100s port %u timed out", c->ev.target, c->ev.port);
	tls_fail(c, reason);
}

void route_connected(struct conn *c)
{
	struct np_route *r = (struct np_route *)c->route;
	if (!r->tls) {
		c->up_done = pool_put;
		conn_audit(c, "allow", 0, "allowed");
		forward_start(c);
		return;
	}
	SSL *s = SSL_new(r->ssl_ctx);
	np_addr a;
	if (!s || SSL_set_fd(s, c->uio.fd) != 1) {
		SSL_free(s);
		tls_fail(c, "TLS: out of memory");
		return;
	}
	c->ssl = s;
	SSL_set_app_data(s, r);
	if (np_parse_ip_literal(r->host, &a) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), r->host);
	} else {
		SSL_set_tlsext_host_name(s, r->host);
		SSL_set1_host(s, r->host);
	}
	pthread_mutex_lock(&r->session_lock);
	if (r->session)
		SSL_set_session(s, r->session);
	pthread_mutex_unlock(&r->session_lock);
	SSL_set_connect_state(s);
	c->uio.fn = handshake_event;
	c->on_timeout = handshake_timeout;
	handshake(c);
}

/* ---- kept upstream connections ----
 * Routed requests go to one upstream, so its connections are kept (HTTP/1.1 keep-alive) and
 * reused by the next routed request on any loop: a kept-alive client then pays neither a dial nor
 * a TLS handshake. An idle connection sits in its route's pool outside every epoll set; it is
 * reused only when younger than NP_ROUTE_POOL_IDLE_MS and still quiet (no EOF, no bytes: a server
 * that closed it or sent an alert is not reused). At most NP_ROUTE_POOL a route; the rest close. */

static void pooled_close(struct np_pooled *e)
{
	SSL_free(e->ssl);
	close(e->fd);
}

/* forward.c's up_done: the response is complete; keep the connection when both sides allow it. */
static void pool_put(struct conn *c)
{
	struct np_route *r = (struct np_route *)c->route;
	/* Bytes already read past the response (in our buffer or OpenSSL's) would desynchronise the
	 * next exchange: such a connection is not kept. Nor after an HTTP/1.0 request or a client's
	 * "Connection: close" (close_after): the upstream may be closing it without saying so. */
	if (c->close_after || !c->up_keep || !c->resp_body.done || c->uio.fd < 0 || (r->tls && !c->ssl) || c->rb_len ||
	    (c->ssl && (SSL_get_shutdown(c->ssl) || SSL_has_pending(c->ssl))))
		return;
	struct np_pooled e = {.fd = c->uio.fd, .ssl = c->ssl, .since_ms = conn_now(c)};
	memcpy(e.family, c->ev.family, sizeof e.family);
	np_io_detach(c->x->loop, &c->uio); /* out of this loop's epoll set, not closed */
	c->ssl = NULL;
	c->tls_want = 0;
	struct np_pooled drop = {.fd = -1};
	pthread_mutex_lock(&r->session_lock);
	if (r->npool == NP_ROUTE_POOL) { /* full: the oldest goes */
		drop = r->pool[0];
		memmove(r->pool, r->pool + 1, (NP_ROUTE_POOL - 1) * sizeof r->pool[0]);
		r->npool--;
	}
	r->pool[r->npool++] = e;
	pthread_mutex_unlock(&r->session_lock);
	if (drop.fd >= 0)
		pooled_close(&drop);
}

static bool still_quiet(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool route_pool_take(struct conn *c)
{
	struct np_route *r = (struct np_route *)c->route;
	int64_t now = conn_now(c);
	for (;;) {
		struct np_pooled e;
		pthread_mutex_lock(&r->session_lock);
		bool any = r->npool > 0;
		if (any)
			e = r->pool[--r->npool];
		pthread_mutex_unlock(&r->session_lock);
		if (!any)
			return false;
		if (now - e.since_ms > NP_ROUTE_POOL_IDLE_MS || !still_quiet(e.fd)) {
			pooled_close(&e);
			continue;
		}
		np_io_init(&c->uio, e.fd, NULL);
		c->ssl = e.ssl;
		c->activity_ms = now;
		memcpy(c->ev.family, e.family, sizeof c->ev.family);
		c->up_done = pool_put;
		conn_audit(c, "allow", 0, "allowed");
		forward_start(c);
		return true;
	}
}

void np_route_pool_free(struct np_route *r)
{
	for (unsigned i = 0; i < r->npool; i++)
		pooled_close(&r->pool[i]);
	r->npool = 0;
}
