/* audit_cmd.c — `nono audit list | show SESSION [--json] | verify SESSION | export SESSION`: the
 * session ledgers `nono run` records (audit_run.c) under $XDG_STATE_HOME/nono/audit. */
#include "audit_run.h"
#include "commands.h"
#include "help.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sub[] = "audit ";

static bool id_ok(const char *id)
{
	if (!*id || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* The session's directory into dir; -1 or an exit status. */
static int session_dir(const char *id, char *dir, size_t len)
{
	char base[PATH_MAX];
	if (!id_ok(id))
		return cli_usage_error(sub, "'%s' is not a session id (see 'nono audit list')", id);
	if (rb_state_dir("audit", base, sizeof base) < 0)
		return EXIT_INTERNAL;
	snprintf(dir, len, "%s/%s", base, id);
	return -1;
}

static json_t *load(const char *dir, const char *name)
{
	char path[PATH_MAX + 400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return json_load_file(path, 0, NULL);
}

static int cmd_list(void)
{
	char base[PATH_MAX];
	if (rb_state_dir("audit", base, sizeof base) < 0)
		return EXIT_INTERNAL;
	struct dirent **names;
	int n = scandir(base, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX + 320];
		snprintf(dir, sizeof dir, "%s/%s", base, names[i]->d_name);
		json_t *m = id_ok(names[i]->d_name) ? load(dir, "session.json") : NULL;
		if (m) {
			json_t *cmd = json_object_get(m, "command"), *ec = json_object_get(m, "exit_code");
			char line[256] = "", exit_s[24] = "-";
			for (size_t k = 0; k < json_array_size(cmd); k++)
				snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", k ? " " : "",
					 json_is_string(json_array_get(cmd, k))
						 ? json_string_value(json_array_get(cmd, k))
						 : "?");
			if (json_is_integer(ec))
				snprintf(exit_s, sizeof exit_s, "%" JSON_INTEGER_FORMAT, json_integer_value(ec));
			const char *started = json_string_value(json_object_get(m, "started"));
			printf("%-26s %-20s events=%-4" JSON_INTEGER_FORMAT " exit=%-4s %s\n",
			       names[i]->d_name, started ? started : "-",
			       json_integer_value(json_object_get(m, "audit_event_count")), exit_s, line);
			json_decref(m);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return 0;
}

/* Every record of the ledger, as JSON values (the file's own lines, not verified here). */
static json_t *records(const char *dir)
{
	char path[PATH_MAX + 400];
	snprintf(path, sizeof path, "%s/ledger.jsonl", dir);
	FILE *f = fopen(path, "re");
	json_t *a = json_array();
	char *line = NULL;
	size_t cap = 0;
	while (f && a && getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, 0, NULL);
		json_array_append_new(a, r ? r : json_string(line));
	}
	free(line);
	if (f)
		fclose(f);
	return a;
}

static int cmd_show(const char *id, bool as_json)
{
	char dir[PATH_MAX + 320];
	int status = session_dir(id, dir, sizeof dir);
	json_t *m = status < 0 ? load(dir, "session.json") : NULL;
	if (status < 0 && !m) {
		cli_err("audit: no session %s", id);
		return EXIT_USAGE;
	}
	if (status >= 0)
		return status;
	json_t *recs = records(dir);
	if (as_json) {
		json_t *o = json_pack("{s:O, s:O}", "session", m, "records", recs);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(o);
	} else {
		char *t = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("session %s (%s)\n%s\n", id, dir, t ? t : "");
		free(t);
		for (size_t i = 0; i < json_array_size(recs); i++) {
			json_t *r = json_array_get(recs, i);
			char *d = json_dumps(json_object_get(r, "data"), JSON_COMPACT | JSON_SORT_KEYS);
			printf("%4zu %-14s %.160s\n", i, json_string_value(json_object_get(r, "kind")),
			       d ? d : "");
			free(d);
		}
	}
	json_decref(recs);
	json_decref(m);
	return 0;
}

/* The ledger intact, finished, and the same as session.json says. */
static int cmd_verify(const char *id)
{
	char dir[PATH_MAX + 320], path[PATH_MAX + 400];
	int status = session_dir(id, dir, sizeof dir);
	if (status >= 0)
		return status;
	snprintf(path, sizeof path, "%s/ledger.jsonl", dir);
	nono_ledger_summary sum;
	nono_error err = {0};
	int rc = nono_ledger_verify(path, &sum, &err);
	json_t *m = load(dir, "session.json");
	json_t *integ = json_object_get(m, "audit_integrity");
	const char *head = json_string_value(json_object_get(integ, "chain_head"));
	const char *root = json_string_value(json_object_get(integ, "merkle_root"));
	if (rc == 0 && (!head || !root || strcmp(head, sum.chain_head) || strcmp(root, sum.merkle_root)))
	{
		rc = -EBADMSG;
		snprintf(err.message, sizeof err.message,
			 "the ledger's last record or Merkle root differs from session.json's "
			 "audit_integrity (the session_end record was rewritten, or records were "
			 "dropped from the end)");
	}
	json_decref(m);
	if (rc < 0) {
		printf("session %s: FAILED: %s\n", id, err.message);
		return 1;
	}
	printf("session %s: OK (%" PRIu64 " records, chain head %.16s..., Merkle root %.16s...)\n", id,
	       sum.records, sum.chain_head, sum.merkle_root);
	return 0;
}

/* JSON lines for a log shipper: each record as it is stored, with "session_id" added. */
static int cmd_export(const char *id)
{
	char dir[PATH_MAX + 320];
	int status = session_dir(id, dir, sizeof dir);
	if (status >= 0)
		return status;
	json_t *recs = records(dir);
	if (json_array_size(recs) == 0) {
		json_decref(recs);
		cli_err("audit: no session %s", id);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *r = json_array_get(recs, i);
		if (json_is_object(r))
			json_object_set_new(r, "session_id", json_string(id));
		char *line = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (line)
			puts(line);
		free(line);
	}
	json_decref(recs);
	return 0;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help_audit(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	const char *what = argv[1];
	if (!strcmp(what, "list") && argc == 2)
		return cmd_list();
	if (!strcmp(what, "show") && argc == 3)
		return cmd_show(argv[2], false);
	if (!strcmp(what, "show") && argc == 4 && !strcmp(argv[3], "--json"))
		return cmd_show(argv[2], true);
	if (!strcmp(what, "verify") && argc == 3)
		return cmd_verify(argv[2]);
	if (!strcmp(what, "export") && argc == 3)
		return cmd_export(argv[2]);
	return cli_usage_error(sub, "unknown or incomplete 'nono audit %s'", what);
}
