/* util.h — the CLI's small shared helpers: exit codes, error printing, number parsers, a string
 * vector. Depends on no other file of the CLI. The CLI uses only the public header (nono.h). */
#ifndef NONO_CLI_UTIL_H
#define NONO_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nono's own exit codes (docs/cli.md "Exit status"). Anything else is the command's own status;
 * a command killed by signal N gives 128+N. */
#define EXIT_INTERNAL 122      /* nono failed at run time: fork, proxy start, I/O, capture limit */
#define EXIT_UNENFORCEABLE 123 /* this kernel cannot enforce the policy (see --best-effort) */
#define EXIT_TIMEOUT 124       /* --timeout expired; the command's whole process group was killed */
#define EXIT_USAGE 125         /* bad usage or policy: unknown flag, missing grant path, LD_* … */
#define EXIT_NOEXEC 126        /* the command is not executable (or not under this policy) */
#define EXIT_NOTFOUND 127      /* the command was not found */

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

extern const char *const nono_prog; /* "nono" */

/* Print "nono: <msg>\n" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "nono: <msg>\n" (+ a hint to use --help) and return EXIT_USAGE. */
int cli_usage_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parsers: return 0 or -1 (after printing why). */
int cli_parse_port(const char *opt, const char *s, uint16_t *out, bool allow_zero);
int cli_parse_seconds(const char *opt, const char *s, double *out);

/* A growable NULL-terminated vector of borrowed strings. */
struct strvec {
	const char **v;
	size_t n, cap;
};
int strvec_push(struct strvec *sv, const char *s);
void strvec_free(struct strvec *sv);

#endif
