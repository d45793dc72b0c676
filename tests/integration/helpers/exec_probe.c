/* exec_probe — drive nono_exec directly (the library API, not the CLI) and print the result as one
 * JSON object, for tests/integration/test_exec.py.
 *
 *   exec_probe [--capture] [--stdin] [--inherit-env] [--foreground] [--best-effort]
 *              [--timeout SECS] [--cwd DIR] [--env NAME=VALUE]... [--read DIR]... [--rw DIR]...
 *              [--read-file F]... [--rw-file F]... [--net-block] [--system] -- ARGV...
 *
 * Output: {"rc": int, "error": str, "exit_code": int, "term_signal": int, "timed_out": bool,
 *          "out_hex": str, "err_hex": str, "landlock_abi": int, "seccomp": bool,
 *          "supervisor": bool}
 * Exit status 0 when the JSON was printed. */
#include "nono.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *hex(const unsigned char *p, size_t n)
{
	char *s = malloc(n * 2 + 1);
	if (!s)
		exit(2);
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

static void grant(nono_caps *c, const char *path, nono_access a, bool file)
{
	nono_error e = {0};
	int r = file ? nono_caps_allow_file(c, path, a, &e) : nono_caps_allow_path(c, path, a, &e);
	if (r < 0) {
		fprintf(stderr, "exec_probe: grant %s: %s\n", path, e.message);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	nono_caps *caps = nono_caps_new();
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	const char *env[64];
	size_t nenv = 0;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--capture")) o.capture = true;
		else if (!strcmp(a, "--stdin")) o.pass_stdin = true;
		else if (!strcmp(a, "--inherit-env")) o.inherit_env = true;
		else if (!strcmp(a, "--foreground")) o.foreground = true;
		else if (!strcmp(a, "--best-effort")) o.flags |= NONO_FLAG_BEST_EFFORT;
		else if (!strcmp(a, "--net-block")) nono_caps_set_network(caps, NONO_NET_BLOCKED, 0, NULL);
		else if (!strcmp(a, "--system")) {
			const char *dirs[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
			for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++)
				grant(caps, dirs[k], NONO_ACCESS_READ, false);
			grant(caps, "/dev/null", NONO_ACCESS_READ_WRITE, true);
			grant(caps, "/dev/zero", NONO_ACCESS_READ, true);
		} else if (v && !strcmp(a, "--timeout")) { o.timeout_secs = atof(v); i++; }
		else if (v && !strcmp(a, "--cwd")) { o.cwd = v; i++; }
		else if (v && !strcmp(a, "--env") && nenv < 63) { env[nenv++] = v; i++; }
		else if (v && !strcmp(a, "--read")) { grant(caps, v, NONO_ACCESS_READ, false); i++; }
		else if (v && !strcmp(a, "--rw")) { grant(caps, v, NONO_ACCESS_READ_WRITE, false); i++; }
		else if (v && !strcmp(a, "--read-file")) { grant(caps, v, NONO_ACCESS_READ, true); i++; }
		else if (v && !strcmp(a, "--rw-file")) { grant(caps, v, NONO_ACCESS_READ_WRITE, true); i++; }
		else {
			fprintf(stderr, "exec_probe: bad option %s\n", a);
			return 2;
		}
	}
	if (i >= argc - 1) {
		fprintf(stderr, "exec_probe: no command\n");
		return 2;
	}
	env[nenv] = NULL;
	if (nenv)
		o.env = env;
	nono_exec_result r;
	nono_error e = {0};
	int rc = nono_exec(caps, (const char *const *)argv + i + 1, &o, &r, &e);
	char *oh = hex(r.out, r.out_len), *eh = hex(r.err, r.err_len);
	json_t *j = json_pack("{s:i, s:s, s:i, s:i, s:b, s:s, s:s, s:i, s:b, s:b}", "rc", rc, "error",
			      e.message, "exit_code", r.exit_code, "term_signal", r.term_signal,
			      "timed_out", r.timed_out, "out_hex", oh, "err_hex", eh, "landlock_abi",
			      r.report.landlock_abi, "seccomp", r.report.seccomp, "supervisor",
			      r.report.supervisor);
	char *s = json_dumps(j, JSON_COMPACT);
	puts(s);
	free(s);
	json_decref(j);
	free(oh);
	free(eh);
	nono_exec_result_free(&r);
	nono_caps_free(caps);
	return 0;
}
