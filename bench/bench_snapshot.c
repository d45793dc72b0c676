/* bench_snapshot — one snapshot-store operation, for bench/rollback.py to time against git:
 *   bench_snapshot STORE TREE baseline | incremental | restore N | diff N
 * Prints the number of entries or changes; exit 1 with the library's message on failure. */
#include "nono.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s STORE TREE baseline|incremental|restore N|diff N\n", argv[0]);
		return 2;
	}
	const char *tracked[] = {argv[2]};
	nono_snap_options o;
	nono_snap_options_init(&o);
	nono_snap *s = NULL;
	nono_error err = {0};
	int rc = nono_snap_open(argv[1], tracked, 1, &o, &s, &err);
	nono_snap_manifest *m = NULL;
	nono_snap_change *c = NULL;
	size_t n = 0;
	const char *op = argv[3];
	uint32_t num = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 0;
	if (rc == 0 && !strcmp(op, "baseline"))
		rc = nono_snap_baseline(s, &m, &err);
	else if (rc == 0 && !strcmp(op, "incremental"))
		rc = nono_snap_incremental(s, NULL, &c, &n, &err);
	else if (rc == 0 && !strcmp(op, "restore"))
		rc = nono_snap_restore(s, num, &c, &n, &err);
	else if (rc == 0 && !strcmp(op, "diff"))
		rc = nono_snap_restore_diff(s, num, &c, &n, &err);
	if (rc < 0) {
		fprintf(stderr, "bench_snapshot: %s\n", err.message);
		return 1;
	}
	printf("%zu\n", m ? m->n_entries : n);
	nono_snap_manifest_free(m);
	nono_snap_changes_free(c, n);
	nono_snap_free(s);
	return 0;
}
