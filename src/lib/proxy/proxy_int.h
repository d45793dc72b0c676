/* proxy_int.h — the proxy's protocol-free building blocks: address policy (netpolicy.c), HTTP wire
 * parsing (http.c), configuration and verdicts (config.c), resolver threads (resolve.c), and two
 * read-only probes of a running proxy (proxy.c) for tests. The event loop and the connection
 * machinery have their own headers (loop.h, conn.h, request.h, relay.h). Never installed; unit
 * tests and fuzz harnesses include it directly. */
#ifndef NONO_PROXY_INT_H
#define NONO_PROXY_INT_H

#include "../internal.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ================================ netpolicy.c ================================ */

#define NP_HOST_MAX 254 /* longest DNS name (253) + NUL */

typedef enum np_class {
	NP_PUBLIC = 0,
	NP_INTERNAL = 1, /* loopback, private, link-local, …: allowed only by an explicit host:port */
	NP_METADATA = 2, /* cloud metadata endpoint: never allowed */
} np_class;

/* One IP address, family AF_INET or AF_INET6, bytes in network order. */
typedef struct np_addr {
	int family;
	uint8_t b[16];
} np_addr;

/* Classify an address (embedded IPv4 in v4-mapped, v4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16
 * and Teredo 2001::/32 is classified too; the stricter class wins). *why gets a static string. */
np_class np_classify(const np_addr *a, const char **why);
np_class np_classify_sockaddr(const struct sockaddr *sa, const char **why);

/* Parse an IP literal as a host name may spell it: IPv6 (with or without brackets), dotted IPv4, and
 * the inet_aton forms a resolver or browser would accept — 1 to 4 parts, each decimal, octal (leading
 * 0) or hex (0x) — e.g. "2852039166", "0251.0376.0251.0376", "0xa9fea9fe", "169.254.43518".
 * Returns 1 and fills *out when `host` is such a literal, 0 when it is not (a name), -EINVAL when it
 * looks numeric (last label starts with a digit, or is 0x…) but is not a valid address: such a host is
 * neither a valid DNS name nor an address and must be refused. */
int np_parse_ip_literal(const char *host, np_addr *out);
/* Canonical text of an address ("169.254.169.254", "fd00:ec2::254"). buf >= 46 bytes. */
void np_addr_format(const np_addr *a, char *buf, size_t cap);
/* The socket address for `a` and `port`; returns its length. */
socklen_t np_sockaddr(const np_addr *a, uint16_t port, struct sockaddr_storage *out);

/* Normalise a host as it came from the request: lower-case, one trailing dot removed, brackets of an
 * IPv6 literal removed, characters checked (letters, digits, '-', '_', '.'; IPv6 literals ':' and hex).
 * Returns 0 or -EINVAL (empty, too long, bad character, empty label). */
int np_host_normalize(const char *in, size_t len, char *out, size_t cap);
/* Metadata service host names (metadata.google.internal, …), checked on the normalised name. */
bool np_is_metadata_name(const char *host);

/* Allowlist entry: "host", "host:port", "*.suffix", "*.suffix:port" (port 0 = any). */
typedef struct np_pattern {
	char host[NP_HOST_MAX]; /* normalised; for wildcards the suffix without "*." */
	bool wildcard;
	uint16_t port;
	/* allow_internal only: the addresses the host stood for when granted (internaladdr.c) */
	uint8_t naddrs;
	np_addr addrs[4];
} np_pattern;
/* Parse one pattern. allow_wildcard false for allow_internal's "host:port" (port then required).
 * Returns 0 or -EINVAL with a static reason in *why. */
int np_pattern_parse(const char *text, bool allow_wildcard, bool port_required, np_pattern *out,
		     const char **why);
/* Does normalised `host`:`port` match? "*.example.com" matches "a.example.com" but not
 * "example.com". IP literals compare by address. */
bool np_pattern_match(const np_pattern *p, const char *host, uint16_t port);
/* hostpattern.c: a URL, a non-ASCII name or an IPv6 literal with a port unbracketed is -EINVAL
 * with a precise *why; a bare IPv6 literal is rewritten as "[...]" into buf and *out points at
 * whichever text to parse. */
int np_pattern_precheck(const char *text, char *buf, size_t cap, const char **out,
			const char **why);
/* Is `suffix` (normalised, without "*.") one under which anyone can register names? */
bool np_public_suffix(const char *suffix);

/* ================================ http.c ================================ */

#define HTTP_MAX_HEADERS 100

typedef struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* OWS trimmed */
	size_t value_len;
} http_header;

typedef struct http_head {
	/* request: method, target; response: status, reason */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int status;
	int version_minor; /* HTTP/1.0 → 0, HTTP/1.1 → 1 */
	size_t nheaders;
	http_header headers[HTTP_MAX_HEADERS];
	size_t skipped;  /* leading empty lines skipped before the start line */
	size_t head_len; /* bytes from buf[0] through the blank line, inclusive */
} http_head;

/* Incremental head parsers. `*scan` (start at 0) remembers how far the terminator search got, so a
 * growing buffer is not rescanned. Returns 1 complete (*out filled, pointers into buf), 0 need more
 * bytes, or a negative errno: -EBADMSG malformed (*why set), -E2BIG more than HTTP_MAX_HEADERS.
 * Only CRLF line ends; obs-fold, bare CR/LF, NUL and whitespace before ':' are malformed. */
int http_parse_request(const char *buf, size_t len, size_t *scan, http_head *out, const char **why);
int http_parse_response(const char *buf, size_t len, size_t *scan, http_head *out, const char **why);

/* Header lookup (case-insensitive); returns the index or -1. Starts at index `from`. */
int http_find_header(const http_head *h, const char *name, int from);
bool http_token_eq(const char *s, size_t len, const char *lit);
/* Does a comma-separated header value contain `token` (case-insensitive)? */
bool http_list_has(const char *v, size_t len, const char *token);
/* Is this request header hop-by-hop (not forwarded): the fixed list, or named in Connection —
 * never Content-Length or Transfer-Encoding, which frame the body the proxy relays. */
bool http_is_hop_header(const http_header *hd, const http_head *h);

/* Body framing of a message. */
enum http_body_kind { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED, HTTP_BODY_UNTIL_CLOSE };

typedef struct http_body {
	enum http_body_kind kind;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left in the current chunk */
	int cstate;         /* chunked decoder state */
	unsigned line_len;  /* bytes in the current size / extension / trailer line */
	unsigned digits;
	unsigned trailer_bytes;
	bool done;
} http_body;

/* Framing of a request (Content-Length / Transfer-Encoding: chunked; both, conflicting lengths or
 * another coding are refused: request smuggling). Returns 0 or -EBADMSG / -ENOTSUP with *why. */
int http_request_body(const http_head *h, http_body *out, const char **why);
/* Framing of a response to `method` (HEAD, 1xx, 204, 304 have none; else chunked, length, or until
 * close). Returns 0 or -EBADMSG with *why. */
int http_response_body(const http_head *h, const char *method, size_t method_len, http_body *out,
		       const char **why);
/* Feed bytes that follow the head; returns how many belong to the body (the rest belongs to the next
 * message), sets b->done at the end. Bytes are passed through verbatim by the caller. A malformed
 * chunked encoding returns -EBADMSG. */
long http_body_feed(http_body *b, const char *buf, size_t len);

/* Split an authority "host:port" / "[v6]:port" / "host" (default_port used when the port is absent;
 * 0 = port required). host is copied raw (not normalised), without brackets. Returns 0 or -EINVAL. */
int http_split_authority(const char *s, size_t len, uint16_t default_port, char *host, size_t cap,
			 uint16_t *port);
/* Absolute-form "http://authority/path?query": host, port (default 80), and a pointer to the origin
 * form (path + query; "/" when empty, then *path_len 0 and *path NULL). -EINVAL bad URL, -ENOTSUP
 * another scheme (e.g. https:// must use CONNECT). */
int http_parse_absolute(const char *t, size_t len, char *host, size_t cap, uint16_t *port,
			const char **path, size_t *path_len);
/* Does the Proxy-Authorization header carry Basic base64("nono:TOKEN")? Constant-time compare. */
bool http_check_proxy_auth(const http_head *h, const char *token);

/* ================================ config.c ================================ */

#define NONO_PROXY_MAX_PATTERNS 1024

struct nono_proxy_config {
	np_pattern *allow;
	size_t nallow;
	np_pattern *allow_connect; /* nono_proxy_config_allow_host_connect_only: CONNECT tunnels only */
	size_t nallow_connect;
	np_pattern *internal;
	size_t ninternal;
	bool allow_all;
	bool connect_without_token;
	np_addr listen;
	uint16_t port;
	nono_proxy_limits lim;
	char *audit_log;
	struct np_route **routes; /* credential routes (route_cfg.c) */
	size_t nroutes;
	struct np_upstream *ext; /* external (corporate) proxy, NULL when none (upstream.c) */
	/* TLS interception (intercept_ca.c, intercept.c) */
	char *intercept_dir;        /* where the session CA certificate and bundle are written */
	np_pattern *intercept;      /* hosts intercepted without the route engine (np_intercept_add_host) */
	size_t nintercept;
	const struct np_intercept_hooks *hooks; /* the route engine's boundary; NULL: pass-through */
	struct np_intercept *icpt;  /* runtime state, only in a running proxy's copy */
};

/* Deep copy (for the running proxy). NULL on ENOMEM. */
struct nono_proxy_config *nono_proxy_config_clone(const struct nono_proxy_config *c);

/* Policy verdict on the request's name, before any DNS lookup. */
typedef struct np_verdict {
	bool allowed;
	bool internal_ok; /* an explicit allow_internal host:port matched */
	bool literal;     /* the host is an IP literal: addr is set, no lookup needed */
	bool connect_only; /* allowed only by a connect-only pattern: plain HTTP must be refused */
	np_addr addr;
	const char *code; /* X-Nono-Denial code when denied */
	char reason[NONO_REASON_MAX];
} np_verdict;
/* `host` is the raw host from the request; the normalised form goes to norm (NP_HOST_MAX). */
void np_check_name(const struct nono_proxy_config *c, const char *host, uint16_t port, char *norm,
		   np_verdict *v);
/* Verdict on one resolved address of an allowed name (internal_ok from np_check_name). Returns true
 * when it may be dialled; else fills code and reason. */
bool np_check_addr(const np_addr *a, const char *host, bool internal_ok, np_verdict *v);

/* ================================ internaladdr.c ================================ */

/* Fill p->addrs with what an allow_internal host stands for now: a literal itself, "localhost"
 * (and *.localhost) 127.0.0.1 and ::1 without a lookup, another name what getaddrinfo says (none
 * when it does not resolve: the name still matches as written). */
void np_internal_resolve(np_pattern *p);
/* Is address `a` on `port` an allow_internal grant (by a grant's resolved addresses)? So
 * "localhost:8080" covers a request for 127.0.0.1:8080 and [::1]:8080, and an allowed name that
 * resolves to a granted internal address may be dialled. */
bool np_internal_addr_allowed(const struct nono_proxy_config *c, const np_addr *a, uint16_t port);

/* ================================ resolve.c ================================ */

#define NP_MAX_ADDRS 8

struct np_resolver;
struct np_resolve_req {
	struct np_resolve_req *next;
	void *owner;      /* the connection; NULL once cancelled (loop thread only) */
	unsigned sink;    /* which loop's result queue it goes back to */
	char host[NP_HOST_MAX];
	int error;        /* getaddrinfo EAI_* or 0 */
	size_t naddrs;
	np_addr addrs[NP_MAX_ADDRS];
};
/* Start `nthreads` resolver threads serving `nsinks` result queues (one per loop). efds[i] is an
 * eventfd (CLOEXEC, nonblocking; the resolver's, closed by np_resolver_free) that becomes readable
 * when results for sink i are ready. */
int np_resolver_new(unsigned nthreads, unsigned nsinks, struct np_resolver **out, int *efds,
		    nono_error *err);
/* Queue a request (ownership moves to the resolver until it comes back from np_resolver_done). */
void np_resolver_submit(struct np_resolver *r, struct np_resolve_req *req);
/* The owner goes away: a queued request is freed at once, one in flight or done later. */
void np_resolver_cancel(struct np_resolver *r, struct np_resolve_req *req);
/* Completed requests of one sink (a list, its loop thread takes ownership). */
struct np_resolve_req *np_resolver_done(struct np_resolver *r, unsigned sink);
/* Shut down: queued requests freed, the eventfds closed, idle workers joined (and their tasks gone);
 * a worker inside getaddrinfo is detached and exits when its lookup returns (a slow DNS server never
 * blocks nono_proxy_stop); the last one out frees the shared state. */
void np_resolver_free(struct np_resolver *r);
/* After pthread_join: wait (bounded, ~200 ms) until the kernel released task `tid`, so the
 * process's thread count no longer includes it. */
void np_wait_task_gone(pid_t tid);

/* ================================ dnscache.c ================================ */

/* Allowed names' getaddrinfo answers, reused for NP_DNS_CACHE_MS by every loop (answers only:
 * each request checks the addresses again). Thread-safe. */
#define NP_DNS_CACHE_MS 5000
#define NP_DNS_CACHE_N 256
struct np_dnscache;
/* Returns 0 or -ENOMEM. Free with np_dnscache_free (NULL is fine). */
int np_dnscache_new(struct np_dnscache **out);
void np_dnscache_free(struct np_dnscache *d);
/* The unexpired answer for `host` copied to out[NP_MAX_ADDRS]: how many addresses (0: none). */
size_t np_dnscache_get(struct np_dnscache *d, const char *host, int64_t now_ms, np_addr *out);
/* Remember a successful answer (naddrs > 0) from now_ms on; the oldest entry makes room. */
void np_dnscache_put(struct np_dnscache *d, const char *host, const np_addr *addrs, size_t naddrs,
		     int64_t now_ms);
/* The resolver's cache (created and freed with it). */
struct np_dnscache *np_resolver_cache(struct np_resolver *r);

/* ================================ upstream.c ================================ */

/* The external HTTP proxy allowed traffic leaves through (nono_proxy_config_set_external_proxy). */
struct np_upstream {
	char host[NP_HOST_MAX]; /* normalised name or IP literal */
	uint16_t port;
	char *auth;             /* "Basic …" Proxy-Authorization value, NULL without credentials */
	np_pattern *bypass;     /* hosts dialled directly (nono_proxy_config_add_bypass_host) */
	size_t nbypass;
	np_addr addrs[NP_MAX_ADDRS]; /* resolved by np_upstream_prepare at start */
	size_t naddrs;
};
/* Deep copy / free (the credentials are wiped). NULL in, NULL out; clone returns NULL on ENOMEM
 * with *ok false. */
struct np_upstream *np_upstream_clone(const struct np_upstream *u, bool *ok);
void np_upstream_free(struct np_upstream *u);
/* At proxy start, on the caller's thread (never in a loop): resolve the external proxy's name.
 * Returns 0 (also without an external proxy) or a negative errno with the message in err. */
int np_upstream_prepare(struct nono_proxy_config *c, nono_error *err);
/* Combination check (nono_proxy_config_check): bypass hosts need an external proxy. */
int np_upstream_check(const struct nono_proxy_config *c, nono_error *err);
/* Does traffic to normalised `host`:`port` go through the external proxy? */
bool np_upstream_applies(const struct nono_proxy_config *c, const char *host, uint16_t port);
/* Parse an external proxy URL "[http://][user[:password]@]host:port[/]" (user and password
 * percent-decoded). Returns 0 or -EINVAL with a static reason in *why. */
int np_upstream_parse(const char *url, struct np_upstream *out, const char **why);

/* ================================ socks5.c ================================ */

/* SOCKS5 (RFC 1928) and its username/password method (RFC 1929), parsed from untrusted bytes.
 * Each parser returns the bytes consumed (> 0) when a message is complete, 0 when more bytes are
 * needed, or a negative errno. */
#define SOCKS5_AUTH_NONE 0x01u     /* method 0x00 offered */
#define SOCKS5_AUTH_USERPASS 0x02u /* method 0x02 offered */
/* Greeting VER=5 NMETHODS METHODS…: *offered gets the SOCKS5_AUTH_* bits. -EBADMSG. */
int socks5_parse_greeting(const uint8_t *b, size_t len, unsigned *offered);
/* VER=1 ULEN UNAME PLEN PASSWD: user and pass (256 bytes each) NUL-terminated; a NUL inside
 * either is -EBADMSG. */
int socks5_parse_userpass(const uint8_t *b, size_t len, char *user, char *pass);
/* Request VER=5 CMD RSV ATYP DST.ADDR DST.PORT. Host as text: dotted IPv4, IPv6 (no brackets) or
 * the domain name as sent (cap >= NP_HOST_MAX). On a refusal *rep gets the reply code:
 * -ENOTSUP for a command other than CONNECT (0x07) or an unknown address type (0x08), -EBADMSG
 * for a malformed message or a name with NUL/empty (0x01). */
int socks5_parse_request(const uint8_t *b, size_t len, char *host, size_t cap, uint16_t *port,
			 uint8_t *rep);
/* The reply code for one of the proxy's answers (HTTP status and X-Nono-Denial code). */
uint8_t socks5_reply_code(int status, const char *code);

/* ================================ intercept_ca.c ================================ */

/* A session's interception state: the CA (its key never leaves this process), the leaf cache, the
 * TLS context towards upstreams. Built by np_intercept_prepare at start (the caller's thread). */
struct np_intercept;
struct ssl_ctx_st;

/* Intercept CONNECTs to this host ("host", "host:port", "*.suffix") even without a route: the
 * hook for the route engine and for tests. Copies. Returns 0 or -EINVAL/-ENOMEM with err. */
int np_intercept_add_host(struct nono_proxy_config *c, const char *pattern, nono_error *err);
/* At start, with intercept_dir set: make the CA, write DIR/nono-ca.pem and DIR/nono-ca-bundle.pem,
 * set c->icpt. 0 (also when interception is off) or a negative errno with err. */
int np_intercept_prepare(struct nono_proxy_config *c, nono_error *err);
/* Remove the written files and free (NULL is a no-op). */
void np_intercept_free(struct np_intercept *i);
/* The bundle (system roots + the session CA) / the CA certificate: paths, NULL when off. */
const char *np_intercept_bundle_path(const struct nono_proxy_config *c);
const char *np_intercept_ca_path(const struct nono_proxy_config *c);
/* A server context for `host` with a leaf certificate signed by the session CA, from the bounded
 * cache or minted now. A new reference (SSL_CTX_free it); NULL on failure with *why. Any thread. */
struct ssl_ctx_st *np_intercept_leaf(struct np_intercept *i, const char *host, const char **why);
struct ssl_st;
/* Before an upstream handshake: remember the connection's host:port for the sessions it gets, and
 * resume the last session stored for it (taken out: each is used once). 0 or -ENOMEM. */
int np_intercept_resume(struct np_intercept *i, struct ssl_st *s, const char *host, uint16_t port);
/* The client context towards upstreams (verifies against the system trust store). Borrowed. */
struct ssl_ctx_st *np_intercept_upstream_ctx(struct np_intercept *i);

/* ================================ proxy.c ================================ */

/* Five threads in all: one loop per online CPU, at most three, and the rest resolver workers
 * (shared by the loops; at least two). */
#define NP_PROXY_THREADS 5
#ifndef NP_MAX_LOOPS
#define NP_MAX_LOOPS 3
#endif

/* Connections the proxy holds right now (any thread; a snapshot). */
unsigned np_proxy_connections(const nono_proxy *p);
/* The running proxy's own copy of its configuration (borrowed; NULL for NULL). */
const struct nono_proxy_config *np_proxy_config(const nono_proxy *p);
/* Audit events whose log line could not be written so far (any thread). */
uint64_t np_proxy_audit_write_errors(nono_proxy *p);

#endif /* NONO_PROXY_INT_H */
