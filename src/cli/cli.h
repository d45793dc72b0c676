/* cli.h — shared by the nono CLI's files. The CLI uses only the public header (nono.h). */
#ifndef NONO_CLI_H
#define NONO_CLI_H

#include "nono.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* nono's own exit codes (docs/cli.md "Exit status"). Anything else is the command's own status;
 * a command killed by signal N gives 128+N. */
#define EXIT_INTERNAL 122      /* nono failed at run time: fork, proxy start, I/O, capture limit */
#define EXIT_UNENFORCEABLE 123 /* this kernel cannot enforce the policy (see --best-effort) */
#define EXIT_TIMEOUT 124       /* --timeout expired; the command's whole process group was killed */
#define EXIT_USAGE 125         /* bad usage or policy: unknown flag, missing grant path, LD_* … */
#define EXIT_NOEXEC 126        /* the command is not executable (or not under this policy) */
#define EXIT_NOTFOUND 127      /* the command was not found */

extern const char *nono_prog; /* "nono" */

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

/* Subcommands: argc/argv start at the subcommand's name. Return the exit status. */
int cmd_run(int argc, char **argv);
int cmd_why(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_setup(int argc, char **argv);

void help_main(FILE *f);
void help_run(FILE *f);
void help_proxy(FILE *f);
void help_setup(FILE *f);
void help_why(FILE *f);

#endif
