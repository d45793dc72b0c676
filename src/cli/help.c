/* help.c — the --help texts. docs/cli.md is the long form and docs/nono.1 the man page: keep all
 * three in step (tests/integration/test_cli.py checks that every option appears in each). */
#include "help.h"

#ifndef NONO_VERSION
#define NONO_VERSION "unknown"
#endif

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
		"  nono why [GRANTS] (--path PATH [--write-access] | --net | --host HOST[:PORT])\n"
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
		"                             /lib /lib32 /lib64 /dev/urandom /dev/random and /etc\n"
		"                             without its secrets (shadow, gshadow, sudoers*, SSH host\n"
		"                             keys, ssl/private, ...: --dry-run lists them);\n"
		"                             read-write /dev/null /dev/zero /dev/full /dev/tty\n"
		"                             (each only when present)\n"
		"\n"
		"Network (default: not restricted):\n"
		"      --net-block            no network: TCP sockets connect/bind/listen nowhere (EACCES);\n"
		"                             no UDP, raw or packet sockets\n"
		"      --allow-domain HOST[:PORT]\n"
		"                             (repeatable) proxy-only: start nono's filtering proxy,\n"
		"                             allow HOST (\"*.example.com\" = subdomains) through it, and\n"
		"                             let the command reach nothing but the proxy; the command\n"
		"                             gets HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY set\n"
		"      --allow-internal HOST:PORT\n"
		"                             (repeatable, with --allow-domain) let the command reach\n"
		"                             this loopback/private address directly and through the\n"
		"                             proxy (localhost = 127.0.0.1 and ::1); NO_PROXY lists\n"
		"                             exactly these hosts; metadata endpoints never\n"
		"      --proxy-port PORT      with --allow-domain: the proxy's listening port (default:\n"
		"                             ephemeral); alone: proxy-only to a proxy already listening\n"
		"                             on 127.0.0.1:PORT (checked), setting no proxy variable\n"
		"      --proxy-url URL        proxy-only to a running proxy ('nono proxy' prints the URL\n"
		"                             with its token: http://nono:TOKEN@127.0.0.1:PORT); sets\n"
		"                             HTTP(S)_PROXY, ALL_PROXY (both cases), NO_PROXY from it\n"
		"      --allow-unix-socket PATH\n"
		"                             (repeatable) allow connect() to this unix socket, or to any\n"
		"                             socket in this directory (with --net-block or proxy-only)\n"
		"      --allow-bind PORT      (repeatable) allow bind/listen on this TCP port, loopback only\n"
		"                             (proxy-only; --net-block lets no IP socket bind)\n"
		"      --audit-log FILE       append the proxy's and the network supervisor's decisions as\n"
		"                             JSON lines (with --net-block or proxy-only); FILE must lie\n"
		"                             outside every writable grant\n"
		"\n"
		"Process:\n"
		"      --workdir DIR          run in DIR (not a grant: grant it too if needed)\n"
		"      --timeout SECS         after SECS kill the command and every process it started;\n"
		"                             exit 124\n"
		"\n"
		"Environment (default: PATH HOME USER LOGNAME SHELL TERM COLORTERM LANG LANGUAGE LC_*\n"
		"TZ from nono's; loader variables (LD_*, DYLD_*, GLIBC_TUNABLES, ...) never pass):\n"
		"  -e, --env NAME=VALUE       (repeatable) set a variable\n"
		"  -e, --env NAME             (repeatable) copy NAME from nono's environment\n"
		"      --clear-env            pass nothing from nono's environment\n"
		"      --inherit-env          pass all of it but the loader variables (names what it\n"
		"                             withheld); a variable nono sets itself (proxy, TMPDIR) given\n"
		"                             with --env is an error (exit 125)\n"
		"      --no-tmp               no private temp dir. By default each run gets a fresh one,\n"
		"                             read-write, in TMPDIR/TMP/TEMP, removed when the command and\n"
		"                             all it started have exited; it also stands in for a HOME the\n"
		"                             policy cannot read. /tmp itself stays ungranted\n"
		"      --keep-tmp             keep the private temp dir afterwards (its path is printed)\n"
		"\n"
		"Enforcement and output:\n"
		"      --allow-userns         let the command create user namespaces (tools that sandbox\n"
		"                             themselves: Chromium, bubblewrap); refused by default\n"
		"      --best-effort          if the kernel lacks a layer, downgrade instead of refusing\n"
		"                             (never widens the network: proxy-only becomes blocked)\n"
		"      --dry-run              print the policy and the enforcement this kernel gives it;\n"
		"                             run nothing\n"
		"      --json                 with --dry-run: print JSON\n"
		"  -q, --quiet                do not print the report of denials after the run\n"
		"  -v, --verbose              print every network decision on stderr as it happens\n"
		"  -h, --help                 this text\n"
		"\n"
		"After a run with a restricted network, what was denied is listed on stderr, one line\n"
		"each, with the flag that would allow it (filesystem denials are not visible to nono).\n"
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
		"                               [::1]:PORT for IPv6; PORT alone means 127.0.0.1:PORT;\n"
		"                               a non-loopback address is warned about, by its real\n"
		"                               address\n"
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
		"  --check      print the report (required)\n"
		"  --json       print it as JSON\n"
		"  -h, --help   this text\n"
		"\n"
		"Exit status: 0 when Landlock and seccomp filters are available; 123 when either is\n"
		"missing (most policies would be refused); 125 usage error.\n");
}

void help_why(FILE *f)
{
	fprintf(f,
		"Usage: nono why [GRANT OPTIONS] --path PATH [--write-access | --read-write]\n"
		"       nono why [GRANT OPTIONS] --net\n"
		"       nono why [GRANT OPTIONS] --host HOST[:PORT] [--json]\n"
		"\n"
		"Explain, without running anything, whether the policy built from the grant options\n"
		"(the same as 'nono run', system paths included) allows reading PATH (writing it with\n"
		"--write-access, both with --read-write), or general network access, and which grant\n"
		"decides it. --host: may the command reach HOST (directly through an --allow-internal\n"
		"grant, or through the proxy)? Prints allowed/denied, the reason (off-list, internal,\n"
		"metadata, port, network blocked) and the flag that would allow it; --json for JSON.\n"
		"\n"
		"Exit status: 0 allowed, 1 denied, 125 usage or policy error.\n");
}
