/* auditlog.c — where the proxy's audit events go: the ring (nono_proxy_audit) at once, and, when an
 * audit log file is configured, one JSON line each (nono_audit_event_format, the same line as the
 * supervisor's and the CLI's) collected in a buffer and written in batches: NP_AUDIT_FLUSH_MS after
 * the first unwritten line (a timer of the loop that wrote it), when the buffer is full, and at stop
 * (np_auditlog_fini). So an event costs no write(2) of its own, and none is lost at
 * nono_proxy_stop. One sink serves every loop thread: lines reach the file in the ring's order, and
 * a batch is one write() of whole lines to an O_APPEND file (other writers never split ours). */
#include "conn.h"

#include <string.h>
#include <unistd.h>

void np_auditlog_init(struct np_auditlog *a, nono_audit *ring, int fd)
{
	memset(a, 0, sizeof *a);
	pthread_mutex_init(&a->lock, NULL);
	a->ring = ring;
	a->fd = fd;
}

/* Count the events in the lines that did not make it, for write_errors. */
static uint64_t count_lines(const char *b, size_t len)
{
	uint64_t n = 0;
	for (const char *p = b; (p = memchr(p, '\n', len - (size_t)(p - b))); p++)
		n++;
	return n;
}

static void flush_locked(struct np_auditlog *a)
{
	size_t off = 0;
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

void np_auditlog_flush(struct np_auditlog *a)
{
	pthread_mutex_lock(&a->lock);
	flush_locked(a);
	pthread_mutex_unlock(&a->lock);
}

bool np_auditlog_event(struct np_auditlog *a, const nono_audit_event *ev)
{
	bool first = false;
	pthread_mutex_lock(&a->lock);
	/* Under the lock: the ring and the file see the events in the same order. */
	nono_audit_push(a->ring, ev);
	if (a->fd < 0)
		goto out;
	if (!a->buf && !(a->buf = malloc(NP_AUDIT_BUF))) {
		a->write_errors++;
		goto out;
	}
	if (NP_AUDIT_BUF - a->len < NONO_AUDIT_LINE_MAX)
		flush_locked(a);
	int n = nono_audit_event_format(ev, a->buf + a->len, NP_AUDIT_BUF - a->len);
	if (n < 0) {
		a->write_errors++;
		goto out;
	}
	first = a->len == 0;
	a->len += (size_t)n; /* the line and its newline; the NUL after it is overwritten next */
out:
	pthread_mutex_unlock(&a->lock);
	return first;
}

void np_auditlog_fini(struct np_auditlog *a)
{
	if (a->fd >= 0) {
		flush_locked(a);
		close(a->fd);
		a->fd = -1;
	}
	free(a->buf);
	a->buf = NULL;
	pthread_mutex_destroy(&a->lock);
}
