/* help.h — the --help texts (help.c; docs/cli.md is the long form: keep both in step). */
#ifndef NONO_CLI_HELP_H
#define NONO_CLI_HELP_H

#include <stdio.h>

void help_main(FILE *f);
void help_run(FILE *f);
void help_proxy(FILE *f);
void help_setup(FILE *f);
void help_why(FILE *f);
void help_profile(FILE *f);
void help_rollback(FILE *f);
void help_audit(FILE *f);

#endif
