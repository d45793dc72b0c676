/* auditlog.c — where the proxy's audit events go: the ring (nono_proxy_audit) at once, and, when an
 * audit log file is configured, one JSON line each (nono_audit_event_format, the same line as the
 * supervisor's and the CLI's) collected in a buffer and written in batches from the loop: when
 * NP_AUDIT_FLUSH_MS have passed since the first unwritten line, when the buffer is full, and at
 * stop (np_auditlog_fini). So an event costs no write(2) of its own, and none is lost at
 * nono_proxy_stop. A batch is one write() of whole lines to an O_APPEND file: lines from other
 * writers are never interleaved inside ours. */
#include "conn.h"

#include <string.h>
#include <unistd.h>

static void flush_cb(struct np_timer *t)
{
	struct np_auditlog *a = (struct np_auditlog *)((char *)t - offsetof(struct np_auditlog, flush));
	np_auditlog_flush(a);
}

void np_auditlog_init(struct np_auditlog *a, struct np_loop *l, nono_audit *ring, int fd)
{
	memset(a, 0, sizeof *a);
	a->loop = l;
	a->ring = ring;
	a->fd = fd;
	np_timer_init(&a->flush, flush_cb);
}

/* Count the events in the lines that did not make it, for write_errors. */
static uint64_t count_lines(const char *b, size_t len)
{
	uint64_t n = 0;
	for (const char *p = b; (p = memchr(p, '\n', len - (size_t)(p - b))); p++)
		n++;
	return n;
}

void np_auditlog_flush(struct np_auditlog *a)
{
	size_t off = 0;
	if (a->loop)
		np_timer_cancel(a->loop, &a->flush);
	while (off < a->len) {
		ssize_t n = write(a->fd, a->buf + off, a->len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* Error (ENOSPC, EIO, …): the rest of the batch is lost, and counted. */
		a->write_errors += count_lines(a->buf + off, a->len - off);
		break;
	}
	a->len = 0;
}

void np_auditlog_event(struct np_auditlog *a, const nono_audit_event *ev)
{
	nono_audit_push(a->ring, ev);
	if (a->fd < 0)
		return;
	if (!a->buf && !(a->buf = malloc(NP_AUDIT_BUF))) {
		a->write_errors++;
		return;
	}
	if (NP_AUDIT_BUF - a->len < NONO_AUDIT_LINE_MAX)
		np_auditlog_flush(a);
	int n = nono_audit_event_format(ev, a->buf + a->len, NP_AUDIT_BUF - a->len);
	if (n < 0) {
		a->write_errors++;
		return;
	}
	a->len += (size_t)n; /* the line and its newline; the NUL after it is overwritten next */
	if (!np_timer_armed(&a->flush) &&
	    np_timer_set(a->loop, &a->flush, np_loop_now(a->loop) + NP_AUDIT_FLUSH_MS) < 0)
		np_auditlog_flush(a); /* no timer: write now rather than risk holding the line */
}

void np_auditlog_fini(struct np_auditlog *a)
{
	if (a->fd >= 0) {
		np_auditlog_flush(a);
		close(a->fd);
		a->fd = -1;
	}
	free(a->buf);
	a->buf = NULL;
}
