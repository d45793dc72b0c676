/* util.c — see util.h. */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *const nono_prog = "nono";

void cli_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", nono_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *sub, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", nono_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s %s--help')\n", nono_prog, sub ? sub : "");
	return EXIT_USAGE;
}

int cli_parse_port(const char *opt, const char *s, uint16_t *out, bool allow_zero)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < (allow_zero ? 0 : 1) || v > 65535) {
		cli_err("%s: '%s' is not a port number (%d..65535)", opt, s, allow_zero ? 0 : 1);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int cli_parse_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e9) {
		cli_err("%s: '%s' is not a positive number of seconds", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int strvec_push(struct strvec *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		size_t ncap = sv->cap ? sv->cap * 2 : 8;
		const char **nv = realloc(sv->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		sv->v = nv;
		sv->cap = ncap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return 0;
}

void strvec_free(struct strvec *sv)
{
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}
