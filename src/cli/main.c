/* main.c — the nono CLI: subcommand dispatch, help texts (kept in step with docs/cli.md), shared
 * helpers and `nono setup --check`. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef NONO_VERSION
#define NONO_VERSION "unknown"
#endif

const char *nono_prog = "nono";

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

/* ---- help (docs/cli.md is the long form; keep both in step) ---- */

static const char exit_codes_text[] =
	"Exit status:\n"
	"  the command's own exit status (0..255); 128+N when it was killed by signal N\n"
	"  122  nono failed at run time (fork, proxy start, I/O, captured output limit)\n"
	"  123  this kernel cannot enforce the policy (use --best-effort to downgrade)\n"
	"  124  --timeout expired: the command and every process it started were killed\n"
	"  125  usage or policy error (unknown option, missing grant path, loader variable, ...)\n"
	"  126  the command is not executable (or not executable under this policy)\n"
	"  127  the command was not found\n";

void help_main(FILE *f)
{
	fprintf(f,
		"nono %s - run untrusted commands in a capability sandbox (Landlock + seccomp)\n"
		"\n"
		"Usage:\n"
		"  nono run [OPTIONS] [--] COMMAND [ARGS...]   run COMMAND under a policy\n"
		"  nono proxy --allow-domain HOST[:PORT]... [--listen ADDR:PORT]\n"
		"                                              run the filtering proxy standalone\n"
		"  nono setup --check [--json]                 what this kernel can enforce\n"
		"  nono why [GRANTS] (--path PATH [--write-access] | --net)\n"
		"                                              explain whether a policy allows an access\n"
		"  nono --help | --version | nono SUBCOMMAND --help\n"
		"\n"
		"Example:\n"
		"  nono run --allow . --read ~/.cache --net-block -- make test\n"
		"  nono run --allow . --allow-domain api.example.com -- agent\n"
		"\n"
		"%s"
		"\n"
		"Reference: docs/cli.md; guide: docs/guide.md.\n",
		NONO_VERSION, exit_codes_text);
}

void help_run(FILE *f)
{
	fprintf(f,
		"Usage: nono run [OPTIONS] [--] COMMAND [ARGS...]\n"
		"\n"
		"Run COMMAND with only the access granted below; the kernel enforces it. Options stop at\n"
		"the first non-option word or at '--'. Every path must exist (symlinks are resolved).\n"
		"\n"
		"Filesystem (repeatable):\n"
		"  -a, --allow DIR            read-write access to DIR and everything below it\n"
		"  -r, --read DIR             read-only access to DIR (read, list, execute)\n"
		"  -w, --write DIR            write-only access to DIR (create, write, remove)\n"
		"      --allow-file FILE      read-write access to one file\n"
		"      --read-file FILE       read-only access to one file\n"
		"      --write-file FILE      write-only access to one file\n"
		"      --no-system-paths      do not add the default system set: read /usr /bin /sbin\n"
		"                             /lib /lib32 /lib64 /etc /dev/urandom /dev/random;\n"
		"                             read-write /dev/null /dev/zero /dev/full /dev/tty\n"
		"                             (each only when present)\n"
		"\n"
		"Network (default: not restricted):\n"
		"      --net-block            no network: no IP socket of any kind, no packet sockets\n"
		"      --allow-domain HOST[:PORT]\n"
		"                             (repeatable) proxy-only: start nono's filtering proxy,\n"
		"                             allow HOST (\"*.example.com\" = subdomains) through it, and\n"
		"                             let the command reach nothing but the proxy; the command\n"
		"                             gets HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY set\n"
		"      --allow-internal HOST:PORT\n"
		"                             (repeatable, with --allow-domain) let the proxy reach this\n"
		"                             loopback/private address; metadata endpoints never\n"
		"      --proxy-port PORT      with --allow-domain: the proxy's listening port (default:\n"
		"                             ephemeral); alone: proxy-only to a proxy already listening\n"
		"                             on 127.0.0.1:PORT (e.g. 'nono proxy'); pass its URL with\n"
		"                             --env HTTPS_PROXY=...\n"
		"      --allow-unix-socket PATH\n"
		"                             (repeatable) allow connect() to this unix socket, or to any\n"
		"                             socket in this directory (with --net-block or proxy-only)\n"
		"      --allow-bind PORT      (repeatable) allow bind/listen on this TCP port, loopback only\n"
		"                             (proxy-only; --net-block allows no IP socket at all)\n"
		"      --audit-log FILE       append the proxy's and the network supervisor's decisions as\n"
		"                             JSON lines (with --net-block or proxy-only)\n"
		"\n"
		"Process:\n"
		"      --workdir DIR          run in DIR (not a grant: grant it too if needed)\n"
		"      --timeout SECS         after SECS kill the command and every process it started;\n"
		"                             exit 124\n"
		"  -e, --env NAME=VALUE       (repeatable) set a variable; the environment is otherwise\n"
		"                             empty. Loader variables (LD_*, DYLD_*, GLIBC_TUNABLES, ...)\n"
		"                             are refused (exit 125)\n"
		"      --inherit-env          start from nono's environment (loader variables dropped)\n"
		"\n"
		"Enforcement and output:\n"
		"      --best-effort          if the kernel lacks a layer, downgrade instead of refusing\n"
		"                             (never widens the network: proxy-only becomes blocked)\n"
		"      --dry-run              print the policy and the enforcement this kernel gives it;\n"
		"                             run nothing\n"
		"      --json                 with --dry-run: print JSON\n"
		"  -h, --help                 this text\n"
		"\n"
		"The command gets stdin, stdout, stderr and the terminal (its own foreground process\n"
		"group: ^C reaches it, ^Z stops it and nono); no other file descriptor. SIGTERM,\n"
		"SIGHUP, SIGINT and SIGQUIT sent to nono are forwarded to the command's process group.\n"
		"When the command exits, every process it started that is still running is killed, also\n"
		"one that left the process group or session (setsid); if nono dies (even by SIGKILL),\n"
		"all of them are killed. Below Landlock ABI 6 (kernels before 6.12) the command can\n"
		"defeat this by killing nono's helper process (same user); see docs/cli.md.\n"
		"\n"
		"%s",
		exit_codes_text);
}

void help_proxy(FILE *f)
{
	fprintf(f,
		"Usage: nono proxy [OPTIONS]\n"
		"\n"
		"Run nono's filtering HTTP proxy (CONNECT and absolute-form HTTP) until SIGINT or SIGTERM.\n"
		"Prints its URL (with the session token) on the first line of stdout; decisions are\n"
		"printed on stderr, one line each.\n"
		"\n"
		"  --allow-domain HOST[:PORT]   (repeatable) allow HOST; \"*.suffix\" matches subdomains\n"
		"  --allow-all-hosts            allow every public host (internal addresses stay denied);\n"
		"                               not together with --allow-domain\n"
		"  --allow-internal HOST:PORT   (repeatable) allow one loopback/private address\n"
		"  --listen ADDR:PORT           listen address (default 127.0.0.1, ephemeral port);\n"
		"                               [::1]:PORT for IPv6; PORT alone means 127.0.0.1:PORT\n"
		"  --audit-log FILE             append every decision as a JSON line\n"
		"  --connect-without-token      accept CONNECT without the token (compatibility)\n"
		"  --max-connections N          client connections held at once (default 256, up to\n"
		"                               1000000); more are answered 503\n"
		"  -q, --quiet                  do not print decisions on stderr\n"
		"  -h, --help                   this text\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM; 125 usage error; 122 the proxy could not start.\n");
}

void help_setup(FILE *f)
{
	fprintf(f,
		"Usage: nono setup --check [--json]\n"
		"\n"
		"Print what this kernel can enforce: the Landlock ABI (and any NONO_MAX_LANDLOCK_ABI cap),\n"
		"seccomp filters, user notification, pidfd_getfd, sync wake-up. Installs nothing.\n"
		"\n"
		"Exit status: 0 when Landlock and seccomp filters are available; 123 when either is\n"
		"missing (most policies would be refused); 125 usage error.\n");
}

void help_why(FILE *f)
{
	fprintf(f,
		"Usage: nono why [GRANT OPTIONS] --path PATH [--write-access | --read-write]\n"
		"       nono why [GRANT OPTIONS] --net\n"
		"\n"
		"Explain, without running anything, whether the policy built from the grant options\n"
		"(the same as 'nono run', system paths included) allows reading PATH (writing it with\n"
		"--write-access, both with --read-write), or general network access, and which grant\n"
		"decides it.\n"
		"\n"
		"Exit status: 0 allowed, 1 denied, 125 usage or policy error.\n");
}

/* ---- nono setup --check ---- */

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

int main(int argc, char **argv)
{
	/* The proxy thread writes to sockets that peers may close: a write error, not a signal.
	 * (The sandboxed command gets default dispositions back before execve.) */
	signal(SIGPIPE, SIG_IGN);
	/* Started with fd 0, 1 or 2 closed, the next file we open (an audit log, the proxy's listening
	 * socket) would take that number and be handed to the command as its stdio: park /dev/null
	 * there first. */
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n != fd) {
			fprintf(stderr, "nono: cannot reopen closed fd %d on /dev/null\n", fd);
			return EXIT_INTERNAL;
		}
	}
	if (argc < 2) {
		help_main(stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		if (argc > 2) {
			const char *t = argv[2];
			if (!strcmp(t, "run")) help_run(stdout);
			else if (!strcmp(t, "proxy")) help_proxy(stdout);
			else if (!strcmp(t, "setup")) help_setup(stdout);
			else if (!strcmp(t, "why")) help_why(stdout);
			else return cli_usage_error(NULL, "no help for '%s'", t);
			return 0;
		}
		help_main(stdout);
		return 0;
	}
	if (!strcmp(sub, "--version") || !strcmp(sub, "-V")) {
		printf("nono %s\n", NONO_VERSION);
		return 0;
	}
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(sub, "proxy"))
		return cmd_proxy(argc - 1, argv + 1);
	if (!strcmp(sub, "setup"))
		return cmd_setup(argc - 1, argv + 1);
	if (!strcmp(sub, "why"))
		return cmd_why(argc - 1, argv + 1);
	return cli_usage_error(NULL, "unknown command '%s'", sub);
}
