/* supervisor_decide.c — what the supervisor allows: the closed dispatch table, one handler a
 * trapped syscall, and the pure policy checks. Every decision is made on the supervisor's own copy
 * of the request (supervisor.c reads it from the child first); allowed calls are performed by
 * supervisor_io.c, never continued in the child.
 *
 * Policy (EACCES for every denial unless the kernel would have said something more specific):
 * - proxy-only: TCP connect to 127.0.0.1:PORT, [::1]:PORT or [::ffff:127.0.0.1]:PORT, to an
 *   internal grant's exact address and port, or to the command's own listener (a granted bind
 *   port bound through us, on loopback) — supervisor_net.c — on a socket that carries no
 *   re-routing option. AF_UNSPEC (disconnect) is allowed.
 * - unix connect (blocked and proxy-only): pathname sockets inside an explicit grant only. The
 *   path (relative ones against the child's cwd, /proc/TID/cwd) is opened O_PATH by us, the
 *   opened inode's canonical path is checked against the grants, and we connect to
 *   /proc/self/fd/N — the very inode we checked, so no symlink swap can redirect us. Abstract and
 *   unnamed (autobind) addresses are denied (Landlock ABI 6 scopes them too, where present).
 *   Side effect, documented: the server's SO_PEERCRED shows the supervisor's pid (same uid).
 * - bind: TCP only on 127.0.0.1/::1 and a granted port (nono_caps_allow_bind). Pathname unix
 *   sockets only inside a granted WRITABLE directory (what Landlock's MAKE_SOCK would allow the
 *   child): we open the parent directory, check its canonical path, fchdir to it on this thread
 *   (after unshare(CLONE_FS)) and bind the base name — race-free; getsockname then shows the base
 *   name rather than the child's full path. Abstract and autobind are denied (an abstract listener
 *   is reachable from every process on the host). Netlink: without multicast groups.
 * - listen: only on sockets bound through us (a loopback granted port, or a pathname): listen()
 *   on an unbound socket would auto-bind INADDR_ANY:ephemeral or an abstract unix address.
 * - sendto with an address: netlink to the kernel (nl_pid 0, no groups: glibc's getaddrinfo and
 *   getifaddrs do this) is performed by us on a copy of the data (at most 64 KiB). On stream
 *   sockets the kernel ignores or rejects the address: refused (use send). Nothing else can carry
 *   an address here (seccomp.c refuses UDP, raw, packet and unix datagram sockets).
 * - setsockopt: the filter sends only SOL_NETLINK NETLINK_ADD_MEMBERSHIP / NETLINK_LISTEN_ALL_NSID
 *   here (joining multicast groups: the host's link, address and route events). Always refused
 *   and audited, like a netlink bind with groups; whatever else arrives is refused too.
 */
#include "supervisor_int.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#define MAX_NETLINK_SEND 65536
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* ---- pure policy ---- */

bool nono_sup_is_loopback(const struct sockaddr_storage *a, socklen_t len, uint16_t *port)
{
	if (a->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)a;
		*port = ntohs(in->sin_port);
		return in->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	}
	if (a->ss_family == AF_INET6 && len >= 24 /* SIN6_LEN_RFC2133 */) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0,
							 0, 0, 0xff, 0xff, 127, 0, 0, 1};
		*port = ntohs(in6->sin6_port);
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       memcmp(&in6->sin6_addr, mapped, 16) == 0;
	}
	return false;
}

bool nono_sup_is_proxy_addr(const struct sockaddr_storage *a, socklen_t len, uint16_t port,
			    bool v6)
{
	uint16_t p = 0;
	if (port == 0 || !nono_sup_is_loopback(a, len, &p) || p != port)
		return false;
	if (a->ss_family == AF_INET)
		return !v6;
	const struct sockaddr_in6 *in6 = (const void *)a;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) == v6; /* else ::ffff:127.0.0.1 */
}

static bool in_grants(const char *canon, const struct grant *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nono_path_within(canon, g[i].path, g[i].dir))
			return true;
	return false;
}

/* Port 0 (ephemeral) is never granted: nono_caps_allow_bind refuses it. */
static bool port_granted(const struct nono_supervisor *s, uint16_t port)
{
	for (size_t i = 0; i < s->nports; i++)
		if (port != 0 && s->ports[i] == port)
			return true;
	return false;
}

/* Netlink to the kernel itself: nl_pid 0, no multicast groups. */
static bool is_netlink_kernel(const struct rq *q)
{
	const struct sockaddr_nl *nl = (const void *)&q->addr;
	return q->addr.ss_family == AF_NETLINK && q->alen >= sizeof *nl && nl->nl_pid == 0 &&
	       nl->nl_groups == 0;
}

/* The sun_path bytes the kernel would use: at most sizeof sun_path (a longer addrlen is EINVAL
 * in unix_validate_addr, and is refused by the callers). */
static const char *unix_path(const struct rq *q, size_t *n)
{
	const struct sockaddr_un *un = (const void *)&q->addr;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	*n = q->alen > off ? q->alen - off : 0;
	if (*n > sizeof un->sun_path)
		*n = sizeof un->sun_path;
	return un->sun_path;
}

/* Why the child's TCP socket would not go where its checked address says, or NULL. The filter
 * refuses setting the options of nono_rerouting_sockopts[] (sockopt.c) under blocked and
 * proxy-only, but a socket created before the sandbox (nono_apply's caller, an inherited fd) may
 * already carry them: an IPv6 routing/hop-by-hop/destination-options header (review F10: an SRH
 * sends "[::1]:P" to its first hop), IPv4 options (source routing) or a bound device (F11:
 * "127.0.0.1" sent out of another interface). The `readable` ones are read back on our copy of the
 * socket (getsockopt returns length 0 when unset); anything unreadable is refused (fail closed). An
 * already connected socket is not our business (connect says EISCONN). */
static const char *rerouting_option(struct rq *q)
{
	for (size_t i = 0; i < nono_rerouting_sockopts_n; i++) {
		const struct nono_sockopt *o = &nono_rerouting_sockopts[i];
		if (!o->readable || (o->level == IPPROTO_IPV6 && q->domain != AF_INET6))
			continue;
		unsigned char buf[256]; /* >= IFNAMSIZ; longer headers are truncated, not refused */
		socklen_t l = sizeof buf;
		bool unreadable = getsockopt(q->fd, o->level, o->optname, buf, &l) < 0;
		if (!unreadable && l == 0)
			continue;
		snprintf(q->why, sizeof q->why, "%s a re-routing socket option: %s",
			 unreadable ? "cannot read" : "socket carries", o->why);
		return q->why;
	}
	return NULL;
}

/* ---- connect ---- */

static struct denial connect_unix(struct rq *q)
{
	size_t n;
	const char *p = unix_path(q, &n);
	if (q->addr.ss_family != AF_UNIX)
		return sup_refuse(EACCES, "unix socket: non-unix address");
	if (q->alen > sizeof(struct sockaddr_un))
		return sup_refuse(EINVAL, "unix address longer than struct sockaddr_un");
	if (n == 0 || p[0] == '\0')
		return sup_refuse(EACCES, n == 0 ? "unnamed unix address refused"
						 : "abstract unix sockets are not granted");
	char path[SUN_PATH_MAX + 1];
	size_t pl = strnlen(p, n);
	memcpy(path, p, pl);
	path[pl] = '\0';
	char canon[NONO_PATH_MAX];
	cleanup_fd int pfd = nono_sup_open_path(q, path, 0, canon, sizeof canon);
	if (pfd == -ENOENT) { /* a miss, not a decision: the kernel would say the same */
		nono_sup_reply(q->s, q->id, 0, ENOENT);
		return SUP_DONE;
	}
	if (pfd < 0)
		return sup_refuse(-pfd, "unix socket path cannot be resolved");
	struct stat st;
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return sup_refuse(ECONNREFUSED, "not a socket");
	snprintf(q->target, sizeof q->target, "%.250s", canon);
	if (nono_sup_path_withheld(q->s, canon, false))
		return sup_refuse(EACCES, "unix socket under a denied path");
	if (!in_grants(canon, q->s->socks, q->s->nsocks)) {
		if (nono_sup_routine_seen(q->s, canon)) { /* recorded once already */
			nono_sup_reply(q->s, q->id, 0, EACCES);
			return SUP_DONE;
		}
		return sup_refuse(EACCES, "unix socket not granted (--allow-unix-socket)");
	}
	struct sockaddr_storage t;
	memset(&t, 0, sizeof t);
	struct sockaddr_un *tu = (void *)&t;
	tu->sun_family = AF_UNIX;
	int l = snprintf(tu->sun_path, sizeof tu->sun_path, "/proc/self/fd/%d", pfd);
	return nono_sup_perform_connect(
		q, &t, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)l + 1), true, &pfd);
}

static struct denial connect_inet(struct rq *q)
{
	struct nono_supervisor *s = q->s;
	if (s->mode != NONO_NET_PROXY_ONLY)
		return sup_refuse(EACCES, "network blocked");
	if (q->type != SOCK_STREAM)
		return sup_refuse(EACCES, "proxy-only: TCP only");
	if (q->addr.ss_family == AF_UNSPEC && q->alen >= sizeof(sa_family_t))
		return nono_sup_perform_connect(q, &q->addr, q->alen, false, &(int){-1});
	if (q->addr.ss_family != q->domain ||
	    (!nono_sup_is_proxy_addr(&q->addr, q->alen, s->proxy_port, s->proxy_v6) &&
	     !nono_sup_direct_ok(s, &q->addr, q->alen)))
		return sup_refuse(EACCES, "proxy-only: not the proxy, an internal grant "
					  "(--allow-internal) or the command's own listener");
	const char *why = rerouting_option(q);
	if (why)
		return sup_refuse(EACCES, why);
	return nono_sup_perform_connect(q, &q->addr, q->alen, false, &(int){-1});
}

static struct denial h_connect(struct rq *q)
{
	switch (q->domain) {
	case AF_UNIX:
		return connect_unix(q);
	case AF_NETLINK:
		if (!is_netlink_kernel(q))
			return sup_refuse(EACCES, "netlink: only the kernel (pid 0, no groups)");
		return nono_sup_perform_connect(q, &q->addr, q->alen, false, &(int){-1});
	case AF_INET:
	case AF_INET6:
		return connect_inet(q);
	default:
		return sup_refuse(EACCES, "socket family not allowed");
	}
}

/* ---- bind ---- */

static struct denial bind_performed(struct rq *q, int r)
{
	nono_sup_answer(q, r, "bind failed");
	return SUP_DONE;
}

static struct denial bind_inet(struct rq *q)
{
	uint16_t port = 0;
	if (q->addr.ss_family != q->domain || !nono_sup_is_loopback(&q->addr, q->alen, &port))
		return sup_refuse(EACCES, "bind: loopback addresses only");
	if (!port_granted(q->s, port))
		return sup_refuse(EACCES, "bind: port not granted (--allow-bind)");
	int r = bind(q->fd, (struct sockaddr *)&q->addr, q->alen) < 0 ? -errno : 0;
	if (r == 0)
		nono_sup_mark_bound(q->s, &q->addr, q->alen);
	return bind_performed(q, r);
}

static struct denial bind_netlink(struct rq *q)
{
	const struct sockaddr_nl *nl = (const void *)&q->addr;
	if (q->addr.ss_family != AF_NETLINK || q->alen < sizeof *nl || nl->nl_groups != 0)
		return sup_refuse(EACCES, "netlink bind: no multicast groups");
	return bind_performed(q, bind(q->fd, (struct sockaddr *)&q->addr, q->alen) < 0 ? -errno : 0);
}

/* Split the child's pathname into the directory we open and check, and the base name we bind. */
static bool split_path(const char *p, size_t n, char *dir, size_t dlen, const char **base,
		       char *path, size_t plen)
{
	size_t pl = strnlen(p, n);
	if (pl >= plen)
		return false;
	memcpy(path, p, pl);
	path[pl] = '\0';
	char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, dlen, ".");
	else if (slash == path)
		snprintf(dir, dlen, "/");
	else
		snprintf(dir, dlen, "%.*s", (int)(slash - path), path);
	return **base && strcmp(*base, ".") != 0 && strcmp(*base, "..") != 0;
}

static struct denial bind_unix(struct rq *q)
{
	size_t n;
	const char *p = unix_path(q, &n);
	if (q->addr.ss_family != AF_UNIX || n == 0 || p[0] == '\0')
		return sup_refuse(EACCES, "bind: abstract and autobind unix addresses refused");
	if (q->alen > sizeof(struct sockaddr_un))
		return sup_refuse(EINVAL, "unix address longer than struct sockaddr_un");
	if (!q->s->private_fs)
		return sup_refuse(EACCES, "bind: supervisor cannot bind pathname sockets here");
	char path[SUN_PATH_MAX + 1], dir[SUN_PATH_MAX + 1];
	const char *base;
	if (!split_path(p, n, dir, sizeof dir, &base, path, sizeof path))
		return sup_refuse(EINVAL, "bind: bad unix socket name");
	char canon[NONO_PATH_MAX];
	cleanup_fd int dfd = nono_sup_open_path(q, dir, O_DIRECTORY, canon, sizeof canon);
	if (dfd < 0)
		return sup_refuse(-dfd, "bind: directory cannot be resolved");
	snprintf(q->target, sizeof q->target, "%.150s/%.100s", canon, base); /* the audit line's */
	char full[NONO_PATH_MAX];
	int fl = snprintf(full, sizeof full, "%s/%s", canon, base);
	if (fl < 0 || (size_t)fl >= sizeof full)
		return sup_refuse(ENAMETOOLONG, "bind: path too long");
	if (!in_grants(canon, q->s->wdirs, q->s->nwdirs) || nono_sup_path_withheld(q->s, full, true))
		return sup_refuse(EACCES, "bind: unix socket outside the writable grants");
	int um = nono_sup_child_umask(q);
	if (um < 0)
		return sup_refuse(-um, "bind: cannot read the process's umask");
	return bind_performed(q, nono_sup_bind_at(q, dfd, base, um));
}

static struct denial h_bind(struct rq *q)
{
	switch (q->domain) {
	case AF_INET:
	case AF_INET6:
		return bind_inet(q);
	case AF_NETLINK:
		return bind_netlink(q);
	case AF_UNIX:
		return bind_unix(q);
	default:
		return sup_refuse(EACCES, "bind: socket family not allowed");
	}
}

/* ---- listen, sendto ---- */

static struct denial h_listen(struct rq *q)
{
	struct sockaddr_storage me;
	socklen_t ml = sizeof me;
	memset(&me, 0, sizeof me);
	if (getsockname(q->fd, (struct sockaddr *)&me, &ml) < 0)
		return sup_refuse(errno, "listen: getsockname failed");
	q->addr = me;
	q->alen = ml;
	nono_sup_describe(q);
	bool ok = false;
	if (q->domain == AF_INET || q->domain == AF_INET6) {
		uint16_t port = 0;
		ok = nono_sup_is_loopback(&me, ml, &port) && port_granted(q->s, port);
	} else if (q->domain == AF_UNIX) {
		size_t n;
		const char *p = unix_path(q, &n);
		ok = n > 0 && p[0] != '\0';
	}
	if (!ok)
		return sup_refuse(EACCES, "listen: socket not bound to a granted address");
	nono_sup_answer(q, listen(q->fd, (int)(uint32_t)q->args[1]) < 0 ? -errno : 0,
			"listen failed");
	return SUP_DONE;
}

static struct denial h_sendto(struct rq *q)
{
	if (q->domain != AF_NETLINK)
		return sup_refuse(EACCES, q->type == SOCK_STREAM || q->type == SOCK_SEQPACKET
						  ? "sendto with an address on a stream socket (use send)"
						  : "sendto with an address: only netlink to the kernel");
	if (!is_netlink_kernel(q))
		return sup_refuse(EACCES, "netlink: only the kernel (pid 0, no groups)");
	size_t len = (size_t)q->args[2];
	if (len > MAX_NETLINK_SEND)
		return sup_refuse(EMSGSIZE, "netlink message larger than the supervisor copies");
	cleanup_free char *buf = malloc(len ? len : 1);
	if (!buf)
		return sup_refuse(ENOMEM, "out of memory");
	int r = len ? nono_sup_fetch(q, q->args[1], buf, len) : 0;
	if (r < 0)
		return sup_refuse(-r, "cannot read the message");
	if (!nono_sup_id_valid(q->s, q->id))
		return SUP_DONE; /* the message may not be the task's any more: nobody to answer */
	int flags = ((int)(uint32_t)q->args[3] & ~MSG_FASTOPEN) | MSG_DONTWAIT;
	ssize_t n = sendto(q->fd, buf, len, flags, (struct sockaddr *)&q->addr, q->alen);
	nono_sup_answer(q, n < 0 ? -errno : n, "sendto failed");
	return SUP_DONE;
}

static struct denial h_setsockopt(struct rq *q)
{
	int level = (int)(uint32_t)q->args[1], opt = (int)(uint32_t)q->args[2];
	snprintf(q->target, sizeof q->target, "setsockopt level %d option %d", level, opt);
	if (level == SOL_NETLINK && (opt == NETLINK_ADD_MEMBERSHIP || opt == NETLINK_LISTEN_ALL_NSID))
		return sup_refuse(EPERM, "netlink: joining multicast groups refused");
	return sup_refuse(EPERM, "setsockopt: option not allowed");
}

/* ---- the closed dispatch table: syscall → handler, and where its address lives ---- */

static const struct nono_sup_handler handlers[] = {
	{__NR_connect, "connect", h_connect, 1, 2, false},
	{__NR_bind, "bind", h_bind, 1, 2, false},
	{__NR_listen, "listen", h_listen, -1, -1, false},
	{__NR_sendto, "sendto", h_sendto, 4, 5, false},
	{__NR_setsockopt, "setsockopt", h_setsockopt, -1, -1, false},
	{__NR_socket, "socket", nono_sup_h_socket, SUP_NO_FD, -1, false},
	{__NR_socketpair, "socketpair", nono_sup_h_socket, SUP_NO_FD, -1, false},
	/* metadata writes and watches (supervisor_meta.c, issue 11): the handler reads the request */
	{__NR_chmod, "chmod", nono_sup_meta, -1, -1, true},
	{__NR_fchmod, "fchmod", nono_sup_meta, -1, -1, true},
	{__NR_fchmodat, "fchmodat", nono_sup_meta, -1, -1, true},
	{__NR_fchmodat2, "fchmodat2", nono_sup_meta, -1, -1, true},
	{__NR_chown, "chown", nono_sup_meta, -1, -1, true},
	{__NR_fchown, "fchown", nono_sup_meta, -1, -1, true},
	{__NR_lchown, "lchown", nono_sup_meta, -1, -1, true},
	{__NR_fchownat, "fchownat", nono_sup_meta, -1, -1, true},
	{__NR_utime, "utime", nono_sup_meta, -1, -1, true},
	{__NR_utimes, "utimes", nono_sup_meta, -1, -1, true},
	{__NR_futimesat, "futimesat", nono_sup_meta, -1, -1, true},
	{__NR_utimensat, "utimensat", nono_sup_meta, -1, -1, true},
	{__NR_setxattr, "setxattr", nono_sup_meta, -1, -1, true},
	{__NR_lsetxattr, "lsetxattr", nono_sup_meta, -1, -1, true},
	{__NR_fsetxattr, "fsetxattr", nono_sup_meta, -1, -1, true},
	{__NR_removexattr, "removexattr", nono_sup_meta, -1, -1, true},
	{__NR_lremovexattr, "lremovexattr", nono_sup_meta, -1, -1, true},
	{__NR_fremovexattr, "fremovexattr", nono_sup_meta, -1, -1, true},
	{__NR_inotify_add_watch, "inotify_add_watch", nono_sup_meta, -1, -1, true},
	{__NR_fanotify_mark, "fanotify_mark", nono_sup_meta, -1, -1, true},
};

const struct nono_sup_handler *nono_sup_handler(int nr, uint32_t arch)
{
	if (arch != AUDIT_ARCH_X86_64)
		return NULL;
	for (size_t i = 0; i < N_ELEMENTS(handlers); i++)
		if (handlers[i].nr == nr)
			return &handlers[i];
	return NULL;
}
