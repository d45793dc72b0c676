/* proc.c — the one reader of /proc/TID/status fields. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int nono_proc_status_field(pid_t tid, const char *key, int base, long *out)
{
	char path[48];
	if (tid > 0)
		snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t klen = strlen(key);
	char line[256];
	int rc = -ENOENT;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		char *end;
		errno = 0;
		long v = strtol(line + klen + 1, &end, base);
		rc = (errno || end == line + klen + 1) ? -EINVAL : 0;
		if (rc == 0)
			*out = v;
		break;
	}
	fclose(f);
	return rc;
}
