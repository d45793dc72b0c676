/* setup.c — `nono setup --check`: what this kernel can enforce. Installs nothing. */
#include "commands.h"
#include "help.h"
#include "nono.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_setup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool check = false, json = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': check = true; break;
		case 'j': json = true; break;
		case 'h': help_setup(stdout); return 0;
		default:
			return cli_usage_error("setup ", "setup: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("setup ", "setup: unexpected argument '%s'", argv[optind]);
	if (!check)
		return cli_usage_error("setup ", "setup: only --check is supported (nono installs nothing)");
	nono_support s;
	nono_support_query(&s);
	char *txt = json ? nono_support_json(&s) : nono_support_text(&s);
	if (!txt) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	fputs(txt, stdout);
	if (json)
		fputc('\n', stdout);
	free(txt);
	return s.landlock_abi >= 1 && s.seccomp_filter ? 0 : EXIT_UNENFORCEABLE;
}
