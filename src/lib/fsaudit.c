/* fsaudit.c — filesystem denials, read back from the kernel's audit (nono_exec_opts.fs_audit).
 *
 * Landlock cannot tell the sandboxing process what it denied; from ABI 7 (6.15) it logs each
 * denial to the audit subsystem as an AUDIT_LANDLOCK_ACCESS record ("domain=ID blockers=fs.read_file
 * path=..."), and the first one of a domain with an AUDIT_LANDLOCK_DOMAIN record naming the
 * process that created it ("domain=ID status=allocated ... pid=TGID"), and a "deallocated" record
 * when its last process is gone. plan.c asks for the command's denials after execve to be logged
 * (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON). We read them from the audit netlink multicast group
 * (AUDIT_NLGRP_READLOG, needs CAP_AUDIT_READ: root) and keep those of the domain our command
 * created (creator pid = the command's pid). We never change the audit configuration: when audit
 * is disabled, or we may not read it, filesystem denials are simply not visible, and the caller
 * is told why (nono_exec_result.fs_audit).
 */
#include "fsaudit.h"

#include <linux/audit.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef AUDIT_LANDLOCK_ACCESS
#define AUDIT_LANDLOCK_ACCESS 1423
#define AUDIT_LANDLOCK_DOMAIN 1424
#endif

#define QUIET_MS 40    /* no record of ours pending: stop after this much silence */
#define DEADLINE_MS 1000 /* our domain seen: wait at most this long for its deallocation */
#define MAX_PENDING 64

/* Is audit enabled? 1, 0, or -errno. */
static int audit_enabled(void)
{
	cleanup_fd int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		return -errno;
	struct nlmsghdr req = {.nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = AUDIT_GET,
			       .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1};
	struct sockaddr_nl k = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, req.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (int i = 0; i < 4; i++) {
		union {
			struct nlmsghdr h;
			char b[512];
		} r;
		ssize_t n = recv(fd, &r, sizeof r, 0);
		if (n < (ssize_t)NLMSG_LENGTH(0))
			return n < 0 ? -errno : -EIO;
		if (r.h.nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(&r.h);
			if (e->error)
				return e->error;
			continue; /* an ack */
		}
		if (r.h.nlmsg_type == AUDIT_GET && n >= (ssize_t)NLMSG_LENGTH(2 * sizeof(uint32_t))) {
			const struct audit_status *st = NLMSG_DATA(&r.h);
			return st->enabled != 0;
		}
	}
	return -EIO;
}

int nono_fsaudit_open(struct nono_fsaudit *fa, int landlock_abi)
{
	memset(fa, 0, sizeof *fa);
	fa->fd = -1;
	if (landlock_abi < 7) {
		fa->state = -EOPNOTSUPP;
		return fa->state;
	}
	int en = audit_enabled();
	if (en <= 0) {
		fa->state = en == 0 ? -ENOPROTOOPT : en;
		return fa->state;
	}
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
	struct sockaddr_nl me = {.nl_family = AF_NETLINK, .nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1)};
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
		fa->state = -errno;
		if (fd >= 0)
			close(fd);
		return fa->state;
	}
	int sz = 4 << 20; /* a burst of denials must not overflow while the command runs */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	fa->fd = fd;
	fa->state = 1;
	return 0;
}

void nono_fsaudit_close(struct nono_fsaudit *fa)
{
	if (fa->fd >= 0)
		close(fa->fd);
	fa->fd = -1;
}

/* The value of `key=` in `rec` into out: a "quoted" string, a hex-encoded one (audit's form for
 * strings with spaces or quotes), or a bare word. */
static bool field(const char *rec, const char *key, char *out, size_t cap)
{
	char k[32];
	snprintf(k, sizeof k, " %s=", key);
	const char *p = strstr(rec, k);
	if (!p || cap == 0)
		return false;
	p += strlen(k);
	size_t n = 0;
	if (*p == '"') {
		for (p++; *p && *p != '"' && n + 1 < cap; p++)
			out[n++] = *p;
	} else {
		const char *e = p + strcspn(p, " ");
		bool hex = (e - p) % 2 == 0 && e > p && strspn(p, "0123456789ABCDEF") == (size_t)(e - p) &&
			   strcmp(key, "domain") && strcmp(key, "pid");
		for (; p < e && n + 1 < cap; p += hex ? 2 : 1) {
			unsigned v = (unsigned char)*p;
			if (hex)
				sscanf(p, "%2x", &v);
			out[n++] = (char)(v >= 0x20 && v != 0x7f ? v : '?');
		}
	}
	out[n] = '\0';
	return true;
}

struct pending {
	char domain[24];
	char blockers[96];
	char path[256];
};

static void emit(const struct nono_fsaudit_sink *sink, const struct pending *p)
{
	nono_audit_event ev;
	memset(&ev, 0, sizeof ev);
	ev.timestamp_unix_ms = nono_now_unix_ms();
	snprintf(ev.source, sizeof ev.source, "landlock");
	snprintf(ev.mode, sizeof ev.mode, "fs");
	snprintf(ev.decision, sizeof ev.decision, "deny");
	snprintf(ev.target, sizeof ev.target, "%s", p->path);
	ev.status = EACCES;
	snprintf(ev.reason, sizeof ev.reason, "blockers: %s", p->blockers);
	if (sink->ring)
		nono_audit_push(sink->ring, &ev);
	if (sink->audit_fd > 0) {
		char line[NONO_AUDIT_LINE_MAX];
		int n = nono_audit_event_format(&ev, line, sizeof line);
		if (n < 0 || write(sink->audit_fd, line, (size_t)n) != n)
			(*sink->lost)++;
	}
}

struct collect {
	const struct nono_fsaudit_sink *sink;
	pid_t pid;
	char ours[24];
	bool gone;
	struct pending pend[MAX_PENDING];
	size_t npend;
};

static void take_record(struct collect *c, int type, const char *rec)
{
	struct pending p = {{0}, {0}, {0}};
	char status[24] = "", pid[24] = "";
	if (!field(rec, "domain", p.domain, sizeof p.domain))
		return;
	if (type == AUDIT_LANDLOCK_DOMAIN) {
		field(rec, "status", status, sizeof status);
		if (!strcmp(status, "allocated") && field(rec, "pid", pid, sizeof pid) &&
		    atol(pid) == (long)c->pid && !c->ours[0]) {
			snprintf(c->ours, sizeof c->ours, "%s", p.domain);
			for (size_t i = 0; i < c->npend; i++)
				if (!strcmp(c->pend[i].domain, c->ours))
					emit(c->sink, &c->pend[i]);
			c->npend = 0;
		} else if (!strcmp(status, "deallocated") && !strcmp(p.domain, c->ours)) {
			c->gone = true;
		}
		return;
	}
	field(rec, "blockers", p.blockers, sizeof p.blockers);
	if (!field(rec, "path", p.path, sizeof p.path) && !field(rec, "name", p.path, sizeof p.path))
		snprintf(p.path, sizeof p.path, "(no path)");
	if (c->ours[0] && !strcmp(p.domain, c->ours))
		emit(c->sink, &p);
	else if (!c->ours[0] && c->npend < MAX_PENDING && !strncmp(p.blockers, "fs.", 3))
		c->pend[c->npend++] = p;
}

static void read_all(struct nono_fsaudit *fa, struct collect *c)
{
	union {
		struct nlmsghdr h;
		char b[9000];
	} m;
	ssize_t n;
	/* The audit multicast sends one record per datagram (and its nlmsg_len has not always
	 * counted the header): take the datagram's own length, never walk past it. */
	while ((n = recv(fa->fd, &m, sizeof m - 1, 0)) >= (ssize_t)NLMSG_HDRLEN) {
		if (m.h.nlmsg_type != AUDIT_LANDLOCK_ACCESS && m.h.nlmsg_type != AUDIT_LANDLOCK_DOMAIN)
			continue;
		size_t l = (size_t)n - NLMSG_HDRLEN;
		if (m.h.nlmsg_len >= NLMSG_HDRLEN && m.h.nlmsg_len - NLMSG_HDRLEN < l)
			l = m.h.nlmsg_len - NLMSG_HDRLEN;
		char rec[4096];
		if (l >= sizeof rec)
			l = sizeof rec - 1;
		memcpy(rec, m.b + NLMSG_HDRLEN, l);
		rec[l] = '\0';
		take_record(c, m.h.nlmsg_type, rec);
	}
}

void nono_fsaudit_collect(struct nono_fsaudit *fa, pid_t cmd_pid,
			  const struct nono_fsaudit_sink *sink)
{
	if (fa->fd < 0 || cmd_pid <= 0)
		return;
	struct collect *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->sink = sink;
	c->pid = cmd_pid;
	int64_t deadline = nono_now_unix_ms() + DEADLINE_MS;
	for (;;) {
		read_all(fa, c);
		if (c->gone)
			break;
		int64_t left = deadline - nono_now_unix_ms();
		if (left <= 0)
			break;
		/* Our domain was logged: its deallocation record says everything has arrived. Else
		 * a short silence does (kauditd delivers records within milliseconds). */
		struct pollfd p = {fa->fd, POLLIN, 0};
		int wait = c->ours[0] ? (int)(left < 200 ? left : 200) : QUIET_MS;
		if (poll(&p, 1, wait) == 0 && !c->ours[0])
			break;
	}
	free(c);
}
