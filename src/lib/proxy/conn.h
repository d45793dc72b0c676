/* conn.h — what the proxy's protocol parts share: the context they run in (loop, config, resolver,
 * audit sink, pipe pool), one client connection's record, and the few things every part does to a
 * connection (answer, close, audit, deadlines). The parts — request.c (head, policy, resolve,
 * dial), tunnel.c (CONNECT relay) and forward.c (plain HTTP) — each install their own callbacks in
 * the connection (cio.fn, uio.fn, on_timeout) and never reach into proxy.c, which only accepts and
 * hands a new connection to request_start. */
#ifndef NONO_PROXY_CONN_H
#define NONO_PROXY_CONN_H

#include "loop.h"
#include "proxy_int.h"

#include <pthread.h>

/* Internal fixed limits (the configurable ones are in nono_proxy_limits). */
#define NP_DIAL_TIMEOUT_MS 30000   /* DNS lookup + TCP connect, per request */
#define NP_LINGER_MS 2000          /* after an error answer: drain the client before closing */
#define NP_PIPE_POOL 32
#define NP_PIPE_SIZE (256 * 1024)
#define NP_AUDIT_FLUSH_MS 50       /* audit lines wait at most this long in memory */
#define NP_AUDIT_BUF (64 * 1024)

/* ---- the audit sink (one for all loop threads): every event goes to the ring at once and, with a
 * log file, into a buffer written in batches (NP_AUDIT_FLUSH_MS after the first line, when the
 * buffer fills, and at stop) ---- */
struct np_auditlog {
	pthread_mutex_t lock;
	nono_audit *ring;
	int fd;          /* -1: no log file */
	char *buf;
	size_t len;
	uint64_t write_errors; /* events whose line could not be written (short write, error, ENOMEM) */
};
void np_auditlog_init(struct np_auditlog *a, nono_audit *ring, int fd);
/* Returns true when the line started a new batch: the caller arms a flush timer in its loop. */
bool np_auditlog_event(struct np_auditlog *a, const nono_audit_event *ev);
void np_auditlog_flush(struct np_auditlog *a);
/* Writes what is left (after every loop has stopped), closes the file. */
void np_auditlog_fini(struct np_auditlog *a);

/* ---- splice pipes, pooled: a tunnel holds one only while bytes sit in it ---- */
struct np_pipe_pool {
	int fds[NP_PIPE_POOL][2];
	unsigned n;
};

/* One loop thread's world. The proxy runs one per CPU (up to NP_MAX_LOOPS), sharing the listening
 * socket and the resolver; a connection stays on the loop that accepted it. */
struct np_ctx {
	struct np_loop *loop;
	const struct nono_proxy_config *cfg;
	const char *token;
	uint16_t self_port;        /* the port the proxy listens on (a request to itself: routes) */
	struct np_resolver *res;   /* shared by the loops */
	unsigned sink;             /* this loop's result queue in it */
	struct np_io res_io;       /* that queue's eventfd (request.c) */
	struct np_auditlog *audit; /* shared */
	struct np_timer audit_flush;
	struct np_pipe_pool pool;
	struct conn *conns;
	unsigned *nconn;           /* shared count (atomic): a slot is taken by the acceptor and given
	                              back by conn_close */
	/* Connections that hold a slot without an established exchange: reading a head (or idle
	 * between keep-alive requests) or closing after an answer. Oldest first; past max_wait the
	 * oldest is closed (conn_evict_oldest), so a client that opens many and never finishes a head
	 * cannot take every slot (issue 11). */
	struct conn *wait_head, *wait_tail;
	unsigned nwait, max_wait;
};

/* Record an event that is not a connection's (over the cap). */
void np_ctx_audit(struct np_ctx *x, const nono_audit_event *ev);
void np_ctx_init(struct np_ctx *x);

enum conn_state {
	C_HEAD,    /* reading a request head */
	C_RESOLVE, /* name lookup in flight */
	C_DIAL,    /* non-blocking connect in flight */
	C_TUNNEL,  /* CONNECT: bytes relayed both ways (splice) */
	C_HTTP,    /* one absolute-form request: body up, response down */
	C_CLOSING, /* an answer is flushed, then the client drained until EOF or NP_LINGER_MS */
};

struct relay {
	int pipe[2];       /* splice pipe, -1 when none (borrowed from the pool while data sits in it) */
	size_t pipe_bytes; /* bytes sitting in the pipe */
	bool eof;          /* source reached EOF */
	bool shut;         /* destination shut down for writing */
	bool want_read;    /* waiting for the source to become readable */
	bool want_write;   /* waiting for the destination to become writable */
	uint64_t bytes;
};

struct outq { /* bytes the proxy itself must write (answers, rewritten heads) */
	char *buf;
	size_t len, off;
};

struct conn {
	struct conn *prev, *next;
	struct np_ctx *x;
	enum conn_state st;
	struct np_io cio, uio;        /* client, upstream; fn set by the part in charge */
	struct np_timer timer;        /* fires on_timeout */
	void (*on_timeout)(struct conn *c);
	void (*on_reuse)(struct conn *c); /* keep-alive: read the next head (request.c sets it) */
	int64_t activity_ms;          /* C_TUNNEL / C_HTTP: last bytes moved (idle timeout) */
	/* client input: request heads, then request bodies (HTTP) or early tunnel data (CONNECT) */
	char *in;
	size_t in_len, in_cap, in_scan, in_body;
	struct outq cq, uq;           /* to client, to upstream */
	struct outq xq;               /* to the external proxy: its CONNECT (upstream.c) */
	/* upstream input (HTTP responses) */
	char *rb;
	size_t rb_len, rb_cap, rb_scan, rb_body;
	http_body req_body, resp_body;
	bool req_done, resp_head_done, resp_started, close_after;
	bool internal_ok, is_connect, authorized;
	struct np_resolve_req *req;
	np_addr addrs[NP_MAX_ADDRS];
	size_t naddrs, next_addr;
	int last_dial_errno;
	uint16_t dial_port;           /* the port dialled: the target's, or the external proxy's */
	bool via_ext;                 /* dialled the external proxy (upstream.c); CONNECT not yet done */
	void (*on_ext_ready)(struct conn *c); /* upstream.c: the external proxy's tunnel is up */
	bool socks;                   /* a SOCKS5 client (socks5.c): answers are SOCKS replies */
	uint8_t socks_phase;          /* socks5.c: greeting, credentials, request, decided */
	void (*socks_go)(struct conn *c, const char *host, uint16_t port);
	struct np_tls *tls;           /* an intercepted tunnel's TLS state (intercept.c) */
	void (*on_free)(struct conn *c); /* called by conn_close before the sockets close */
	struct relay up, down;
	nono_audit_event ev; /* the request being handled: target, port, method, path */
	struct conn *wprev, *wnext;   /* x->waiting list (C_HEAD and C_CLOSING), oldest first */
	bool waiting;
	const struct np_route *route; /* the credential route of this request (route.c), or NULL */
	void *ssl;                    /* SSL * to the route's https upstream (route_tls.c), or NULL */
	uint32_t tls_want;            /* upstream events the TLS layer waits for (NP_IN / NP_OUT) */
	bool up_keep;                 /* the upstream's response leaves its connection open (forward.c) */
	void (*up_done)(struct conn *c); /* a response is complete: the owner may keep the upstream
	                                    connection (route_tls.c's pool) before it is dropped */
};

#define CONN_OF(io, member) ((struct conn *)((char *)(io) - offsetof(struct conn, member)))

/* A connection for an accepted client socket (linked into x->conns; its slot in *x->nconn already
 * taken), or NULL on ENOMEM. */
struct conn *conn_new(struct np_ctx *x, int fd);
/* Close both sockets and free the connection. */
void conn_close(struct conn *c);
/* Join (at the young end; no-op when already in) or leave the loop's waiting list. */
void conn_wait_enter(struct conn *c);
void conn_wait_leave(struct conn *c);
/* Close the oldest waiting connection (audited when it had not finished a head). Returns false
 * when none waits. */
bool conn_evict_oldest(struct np_ctx *x);
/* Record an event for the request in hand (decision, status, reason, byte counts). */
void conn_audit(struct conn *c, const char *decision, int status, const char *reason);
/* Queue an answer to the client and go to C_CLOSING. `code` is the X-Nono-Denial value (or NULL). */
void conn_answer(struct conn *c, int status, const char *phrase, const char *code, const char *reason);
/* Start flushing c->cq (already holding an answer) and then close. Never frees c. */
void conn_closing(struct conn *c);
void conn_set_deadline(struct conn *c, int64_t at_ms);
/* Close the upstream socket (the connection stays). */
void conn_drop_upstream(struct conn *c);
static inline int64_t conn_now(const struct conn *c)
{
	return np_loop_now(c->x->loop);
}
/* Socket interest from the relays' wants (C_TUNNEL / C_HTTP). */
void conn_want_relay(struct conn *c);

struct np_route;

int np_pipe_get(struct np_pipe_pool *pool, int fds[2]);
/* Back to the pool (or closed) when empty; kept by the relay while bytes sit in it. */
void np_pipe_put(struct np_pipe_pool *pool, struct relay *r);
void np_pipe_pool_fini(struct np_pipe_pool *pool);

/* Write as much of q as possible (adding to *count when non-NULL); 1 done, 0 would block,
 * -errno error. */
/* Read what fits into buf[*len, cap) from `fd`: 1 when bytes came (*len grew), 0 when there are none
 * now (EAGAIN), -1 at EOF (an orderly close), -2 on an error. EINTR is retried. */
int np_recv_more(int fd, char *buf, size_t *len, size_t cap);
/* Send from buf[0, len) to `fd`: how many bytes went (> 0), 0 when none can now (EAGAIN), -1 when
 * the peer is gone or on an error. EINTR is retried. */
ssize_t np_send_some(int fd, const char *buf, size_t len);
int outq_flush(int fd, struct outq *q, uint64_t *count);
/* The same three on the upstream side: through TLS when c->ssl is set (a TLS read that needs a
 * write, or the reverse, is recorded in c->tls_want and counts as "would block"). */
int up_recv(struct conn *c, char *buf, size_t *len, size_t cap);
ssize_t up_send(struct conn *c, const char *buf, size_t len);
int up_flush(struct conn *c, struct outq *q, uint64_t *count);
/* After a failed up_* call on a TLS upstream: OpenSSL's reason (static), else NULL. */
const char *up_tls_error(const struct conn *c);
void outq_reset(struct outq *q);
/* Replace q's contents with a copy of `len` bytes. Returns 0 or -ENOMEM. */
int outq_set(struct outq *q, const void *data, size_t len);

#endif /* NONO_PROXY_CONN_H */
