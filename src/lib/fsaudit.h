/* fsaudit.h — filesystem denials read back from the kernel audit (fsaudit.c), for nono_exec. */
#ifndef NONO_FSAUDIT_H
#define NONO_FSAUDIT_H

#include "internal.h"

struct nono_fsaudit {
	int fd;    /* audit multicast socket, -1 when none */
	int state; /* 1 reading; else -errno why not: -EOPNOTSUPP (Landlock < ABI 7), -ENOPROTOOPT
		      (kernel audit disabled), -EPERM (no CAP_AUDIT_READ), ... */
};

/* Where the denials go: the ring and/or the audit fd (JSON lines); lines not written count in
 * *lost. */
struct nono_fsaudit_sink {
	nono_audit *ring;
	int audit_fd;
	uint64_t *lost;
};

/* Before the command starts: open the audit log reader (never changes the audit configuration).
 * Returns 0 or fa->state (< 0). fa->fd is O_CLOEXEC. */
NONO_HIDDEN int nono_fsaudit_open(struct nono_fsaudit *fa, int landlock_abi);
/* After the command and all it started are gone: hand the denials of the Landlock domain that
 * `cmd_pid` created to `sink` (waits for the domain's deallocation record, at most ~1 s). */
NONO_HIDDEN void nono_fsaudit_collect(struct nono_fsaudit *fa, pid_t cmd_pid,
				      const struct nono_fsaudit_sink *sink);
NONO_HIDDEN void nono_fsaudit_close(struct nono_fsaudit *fa);

#endif
