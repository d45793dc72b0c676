/* intercept_ca.c — the certificate side of TLS interception: a per-session CA, leaf certificates
 * minted for intercepted hosts (bounded cache), the context that re-encrypts to the real upstream,
 * and the files handed to the command.
 *
 * The CA is made when the proxy starts (EC P-256, valid from an hour ago for NP_CA_DAYS days,
 * basicConstraints CA:TRUE pathlen 0) and its private key exists only in this process's memory:
 * only the certificate is written, as DIR/nono-ca.pem, and DIR/nono-ca-bundle.pem = the system
 * trust bundle (OpenSSL's default file, or $SSL_CERT_FILE when the proxy process has it) followed by
 * the session CA — the file the command's SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE and
 * CURL_CA_BUNDLE name, so ordinary hosts still verify. Both files are removed when the proxy stops.
 *
 * Leaves share one session key (as mitmproxy's do: minting is then one signature, ~0.1 ms) and name
 * the host in subjectAltName (DNS or IP), serverAuth only, valid for the CA's lifetime. The cache
 * holds NP_LEAF_CACHE server contexts, least recently used out; loop threads share it under a
 * mutex. Upstreams are verified against the system trust store (the same default paths), with the
 * host name (or IP) checked, TLS 1.2 at least, and ALPN http/1.1 on both sides: the decrypted
 * stream is parsed as HTTP/1.1 (intercept.c). */
#include "proxy_int.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define NP_LEAF_CACHE 256
#define NP_SESS_CACHE 256
#define NP_CA_DAYS 30

struct leaf {
	char host[NP_HOST_MAX];
	SSL_CTX *ctx;
	uint64_t used;
};

struct sess { /* a TLS session with an upstream, for resumption (one use) */
	char key[NP_HOST_MAX + 8]; /* host:port */
	SSL_SESSION *s;
	uint64_t used;
};

struct np_intercept {
	EVP_PKEY *ca_key, *leaf_key;
	X509 *ca;
	SSL_CTX *up;
	pthread_mutex_t lock;
	struct leaf cache[NP_LEAF_CACHE];
	struct sess sess[NP_SESS_CACHE];
	uint64_t tick;
	char *ca_path, *bundle_path;
};

int np_intercept_add_host(struct nono_proxy_config *c, const char *pattern, nono_error *err)
{
	np_pattern p;
	const char *why = "";
	if (np_pattern_parse(pattern, true, false, &p, &why) < 0)
		return nono_fail(err, -EINVAL, "intercept host \"%s\": %s", pattern ? pattern : "(null)", why);
	np_pattern *na = realloc(c->intercept, (c->nintercept + 1) * sizeof *na);
	if (!na)
		return nono_fail(err, -ENOMEM, "out of memory");
	na[c->nintercept++] = p;
	c->intercept = na;
	return 0;
}

int nono_proxy_config_set_intercept_ca_dir(nono_proxy_config *cfg, const char *dir, nono_error *err)
{
	struct stat st;
	if (!cfg || !dir || dir[0] != '/')
		return nono_fail(err, -EINVAL, "intercept CA directory must be an absolute path");
	if (stat(dir, &st) < 0)
		return nono_fail(err, -errno, "intercept CA directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return nono_fail(err, -ENOTDIR, "intercept CA directory %s is not a directory", dir);
	char *d = strdup(dir);
	if (!d)
		return nono_fail(err, -ENOMEM, "out of memory");
	free(cfg->intercept_dir);
	cfg->intercept_dir = d;
	return 0;
}

/* ---- certificates ---- */

static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!e)
		return -1;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* An unsigned certificate for `key` named `cn`, issued by `issuer` (NULL: self-issued). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	bool ok = x && bn && X509_set_version(x, 2) &&
		  BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
		  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), (long)NP_CA_DAYS * 86400) &&
		  X509_set_pubkey(x, key);
	BN_free(bn);
	X509_NAME *n = ok ? X509_get_subject_name(x) : NULL;
	ok = ok && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"nono", -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *make_ca(EVP_PKEY *key)
{
	X509 *x = make_cert(key, "nono session CA (TLS interception)", NULL);
	if (!x || add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") < 0 || !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *make_leaf(struct np_intercept *i, const char *host)
{
	char san[NP_HOST_MAX + 8], cn[65];
	np_addr a;
	if (np_parse_ip_literal(host, &a) == 1) {
		char as[64];
		np_addr_format(&a, as, sizeof as);
		snprintf(san, sizeof san, "IP:%s", as);
	} else {
		snprintf(san, sizeof san, "DNS:%s", host);
	}
	snprintf(cn, sizeof cn, "%.64s", host); /* a CN holds 64 characters; the SAN the whole name */
	X509 *x = make_cert(i->leaf_key, cn, i->ca);
	if (!x || add_ext(i->ca, x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(i->ca, x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(i->ca, x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(i->ca, x, NID_subject_alt_name, san) < 0 ||
	    add_ext(i->ca, x, NID_authority_key_identifier, "keyid") < 0 ||
	    !X509_sign(x, i->ca_key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ALPN: the decrypted stream is parsed as HTTP/1.1, so that is all either side may agree on. A
 * client offering h2 and http/1.1 (curl --http2, browsers) gets http/1.1; a client whose list lacks
 * it (h2 only) would speak a protocol we cannot parse: the handshake fails with the
 * no_application_protocol alert (RFC 7301 §3.2), which intercept.c audits with its own reason. A
 * client sending no ALPN at all is not asked (this callback is not called): HTTP/1.1 is assumed. */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	(void)s;
	(void)arg;
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, h11, sizeof h11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *leaf_ctx(struct np_intercept *i, const char *host)
{
	X509 *x = make_leaf(i, host);
	SSL_CTX *ctx = x ? SSL_CTX_new(TLS_server_method()) : NULL;
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_use_certificate(ctx, x) ||
	    !SSL_CTX_use_PrivateKey(ctx, i->leaf_key)) {
		SSL_CTX_free(ctx);
		X509_free(x);
		return NULL;
	}
	X509_free(x);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Each intercepted connection is a new handshake with a known client; tickets would only
	 * grow the session state. */
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

struct ssl_ctx_st *np_intercept_leaf(struct np_intercept *i, const char *host, const char **why)
{
	pthread_mutex_lock(&i->lock);
	struct leaf *victim = &i->cache[0];
	for (size_t k = 0; k < NP_LEAF_CACHE; k++) {
		struct leaf *l = &i->cache[k];
		if (l->ctx && !strcmp(l->host, host)) {
			l->used = ++i->tick;
			SSL_CTX_up_ref(l->ctx);
			pthread_mutex_unlock(&i->lock);
			return l->ctx;
		}
		if (!l->ctx || (victim->ctx && l->used < victim->used))
			victim = l;
	}
	/* Minting (one ECDSA signature) happens under the lock: rare, and it keeps two loops from
	 * minting the same host at once. */
	SSL_CTX *ctx = leaf_ctx(i, host);
	if (ctx) {
		SSL_CTX_free(victim->ctx); /* connections using it hold their own reference */
		snprintf(victim->host, sizeof victim->host, "%s", host);
		victim->ctx = ctx;
		victim->used = ++i->tick;
		SSL_CTX_up_ref(ctx);
	}
	pthread_mutex_unlock(&i->lock);
	if (!ctx)
		*why = "could not mint a certificate for the host";
	return ctx;
}

struct ssl_ctx_st *np_intercept_upstream_ctx(struct np_intercept *i)
{
	return i->up;
}

/* ---- upstream sessions: a new connection to a host resumes the last one's session (no
 * certificate chain to verify, no signature by the upstream), each ticket used once ---- */

static int sess_index = -1; /* SSL ex_data slot: the session key (host:port) of a connection */

static void sess_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static int new_session(SSL *s, SSL_SESSION *sess)
{
	struct np_intercept *i = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
	const char *key = SSL_get_ex_data(s, sess_index);
	if (!i || !key)
		return 0;
	pthread_mutex_lock(&i->lock);
	struct sess *victim = &i->sess[0];
	for (size_t k = 0; k < NP_SESS_CACHE; k++) {
		struct sess *e = &i->sess[k];
		if (e->s && !strcmp(e->key, key)) {
			victim = e;
			break;
		}
		if (!e->s || (victim->s && e->used < victim->used))
			victim = e;
	}
	SSL_SESSION_free(victim->s);
	snprintf(victim->key, sizeof victim->key, "%s", key);
	victim->s = sess;
	victim->used = ++i->tick;
	pthread_mutex_unlock(&i->lock);
	return 1; /* we keep the reference */
}

int np_intercept_resume(struct np_intercept *i, struct ssl_st *s, const char *host, uint16_t port)
{
	char *key = NULL;
	if (sess_index < 0 || asprintf(&key, "%s:%u", host, port) < 0)
		return -ENOMEM;
	if (!SSL_set_ex_data(s, sess_index, key)) {
		free(key);
		return -ENOMEM;
	}
	pthread_mutex_lock(&i->lock);
	for (size_t k = 0; k < NP_SESS_CACHE; k++) {
		struct sess *e = &i->sess[k];
		if (e->s && !strcmp(e->key, key)) {
			(void)SSL_set_session(s, e->s); /* a failure only means a full handshake */
			SSL_SESSION_free(e->s);
			e->s = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&i->lock);
	return 0;
}

/* ---- session lifecycle ---- */

static pthread_once_t sess_once = PTHREAD_ONCE_INIT;
static void sess_index_init(void)
{
	sess_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, sess_key_free);
}

static SSL_CTX *upstream_ctx(struct np_intercept *i)
{
	static const unsigned char h11[] = "\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_default_verify_paths(ctx) || SSL_CTX_set_alpn_protos(ctx, h11, sizeof h11 - 1)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	pthread_once(&sess_once, sess_index_init);
	SSL_CTX_set_app_data(ctx, i);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	return ctx;
}

/* The system bundle the upstream context trusts too: $SSL_CERT_FILE, else OpenSSL's default. */
static const char *system_bundle(void)
{
	const char *env = getenv(X509_get_default_cert_file_env());
	return env && *env ? env : X509_get_default_cert_file();
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write `pem` (after the contents of `prefix_file`, if any) to `path`, replacing a file there. A
 * symlink at the path is refused (O_NOFOLLOW). */
static int write_pem(const char *path, const char *prefix_file, const char *pem, nono_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return nono_fail(err, -errno, "intercept CA file %s: %s", path, strerror(errno));
	int rc = 0;
	if (prefix_file) {
		cleanup_fd int in = open(prefix_file, O_RDONLY | O_CLOEXEC);
		char buf[65536];
		ssize_t n;
		if (in < 0) {
			rc = nono_fail(err, -errno, "system CA bundle %s: %s", prefix_file, strerror(errno));
			goto out;
		}
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write_all(fd, buf, (size_t)n) < 0)
				break;
		if (n != 0 || write_all(fd, "\n", 1) < 0) {
			rc = nono_fail(err, -EIO, "writing %s: %s", path, strerror(errno));
			goto out;
		}
	}
	if (write_all(fd, pem, strlen(pem)) < 0)
		rc = nono_fail(err, -EIO, "writing %s: %s", path, strerror(errno));
out:
	if (close(fd) < 0 && rc == 0)
		rc = nono_fail(err, -EIO, "writing %s: %s", path, strerror(errno));
	return rc;
}

static int write_files(struct np_intercept *i, const char *dir, nono_error *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n = 0;
	if (!b || !PEM_write_bio_X509(b, i->ca) || (n = BIO_get_mem_data(b, &pem)) <= 0) {
		BIO_free(b);
		return nono_fail(err, -ENOMEM, "encoding the session CA failed");
	}
	char *text = strndup(pem, (size_t)n);
	BIO_free(b);
	if (!text || asprintf(&i->ca_path, "%s/nono-ca.pem", dir) < 0 ||
	    asprintf(&i->bundle_path, "%s/nono-ca-bundle.pem", dir) < 0) {
		free(text);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	int rc = write_pem(i->ca_path, NULL, text, err);
	if (rc == 0)
		rc = write_pem(i->bundle_path, system_bundle(), text, err);
	free(text);
	return rc;
}

int np_intercept_prepare(struct nono_proxy_config *c, nono_error *err)
{
	if (!c->intercept_dir)
		return 0;
	struct np_intercept *i = calloc(1, sizeof *i);
	if (!i)
		return nono_fail(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&i->lock, NULL);
	c->icpt = i;
	if (!(i->ca_key = EVP_EC_gen("P-256")) || !(i->leaf_key = EVP_EC_gen("P-256")) ||
	    !(i->ca = make_ca(i->ca_key)) || !(i->up = upstream_ctx(i))) {
		const char *e = ERR_reason_error_string(ERR_get_error());
		return nono_fail(err, -ENOMEM, "TLS interception setup failed: %s", e ? e : "OpenSSL error");
	}
	return write_files(i, c->intercept_dir, err);
}

void np_intercept_free(struct np_intercept *i)
{
	if (!i)
		return;
	for (size_t k = 0; k < NP_LEAF_CACHE; k++)
		SSL_CTX_free(i->cache[k].ctx);
	for (size_t k = 0; k < NP_SESS_CACHE; k++)
		SSL_SESSION_free(i->sess[k].s);
	SSL_CTX_free(i->up);
	X509_free(i->ca);
	EVP_PKEY_free(i->ca_key);
	EVP_PKEY_free(i->leaf_key);
	if (i->ca_path)
		unlink(i->ca_path);
	if (i->bundle_path)
		unlink(i->bundle_path);
	free(i->ca_path);
	free(i->bundle_path);
	pthread_mutex_destroy(&i->lock);
	free(i);
}

const char *np_intercept_bundle_path(const struct nono_proxy_config *c)
{
	return c && c->icpt ? c->icpt->bundle_path : NULL;
}

const char *np_intercept_ca_path(const struct nono_proxy_config *c)
{
	return c && c->icpt ? c->icpt->ca_path : NULL;
}
