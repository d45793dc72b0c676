/* proc.c — the one reader of /proc/TID/status fields. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int nono_proc_status_fields(pid_t tid, struct nono_proc_field *f, size_t n)
{
	char path[48];
	if (tid > 0)
		snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -errno;
	for (size_t i = 0; i < n; i++)
		f[i].rc = -ENOENT;
	size_t left = n;
	char line[256];
	while (left && fgets(line, sizeof line, fp)) {
		for (size_t i = 0; i < n; i++) {
			size_t klen = strlen(f[i].key);
			if (f[i].rc != -ENOENT || strncmp(line, f[i].key, klen) != 0 ||
			    line[klen] != ':')
				continue;
			char *end;
			errno = 0;
			long v = strtol(line + klen + 1, &end, f[i].base);
			f[i].rc = (errno || end == line + klen + 1) ? -EINVAL : 0;
			if (f[i].rc == 0)
				f[i].value = v;
			left--;
			break;
		}
	}
	fclose(fp);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = f[i].rc;
	return rc;
}

int nono_proc_status_field(pid_t tid, const char *key, int base, long *out)
{
	struct nono_proc_field f = {.key = key, .base = base};
	int rc = nono_proc_status_fields(tid, &f, 1);
	if (rc == 0)
		*out = f.value;
	return rc;
}
