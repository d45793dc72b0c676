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
		"  nono why [GRANTS] (--path PATH [--write-access] | --net)\n"
		"                                              explain whether a policy allows an access\n"
		"  nono rollback list | show ID | diff ID [N] | restore ID [N] | verify ID |\n"
		"                cleanup [--older-than D]     undo what a 'run --rollback' changed\n"
		"  nono audit list | show ID [--json] | verify ID | export ID\n"
		"                                              the session ledger every run records\n"
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
		"Rollback:\n"
		"      --rollback             snapshot every writable directory grant before and after\n"
		"                             the command, print what changed, keep the session for\n"
		"                             'nono rollback' (store: $XDG_STATE_HOME/nono/rollback,\n"
		"                             default ~/.local/state; refused if a grant can write it)\n"
		"      --rollback-exclude GLOB\n"
		"                             (repeatable) leave out entries whose name matches GLOB\n"
		"                             (or whose tree-relative path does, when GLOB has a '/')\n"
		"      --rollback-include GLOB\n"
		"                             (repeatable) keep matching entries whatever excludes them\n"
		"      --rollback-gitignore   honour .gitignore files in the tracked trees\n"
		"      --rollback-no-defaults also track node_modules, target, .venv, venv, __pycache__,\n"
		"                             build, dist, .tox, .gradle, .mypy_cache, .pytest_cache\n"
		"\n"
		"Ledger (every run records one: 'nono audit'):\n"
		"      --no-ledger            do not record this run in the session ledger\n"
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

void help_rollback(FILE *f)
{
	fprintf(f,
		"Usage: nono rollback list\n"
		"       nono rollback show SESSION\n"
		"       nono rollback diff SESSION [N]\n"
		"       nono rollback restore SESSION [N]\n"
		"       nono rollback verify SESSION\n"
		"       nono rollback cleanup [--older-than DURATION]\n"
		"\n"
		"The sessions 'nono run --rollback' kept ($XDG_STATE_HOME/nono/rollback, default\n"
		"~/.local/state/nono/rollback). Snapshot 0 is the state before the command, 1 after it.\n"
		"\n"
		"  list              every session: id, start, snapshots, exit status, command\n"
		"  show SESSION      its metadata and snapshots (time, entries, Merkle root)\n"
		"  diff SESSION [N]  what 'restore SESSION N' would change (N: default 0)\n"
		"  restore SESSION [N]\n"
		"                    bring the tracked trees back to snapshot N (default 0): contents,\n"
		"                    modes, mtimes and symlinks; entries created since are deleted.\n"
		"                    Interrupted, it is finished by running it again\n"
		"  verify SESSION    check every manifest's Merkle root and every stored object's hash\n"
		"  cleanup [--older-than DURATION]\n"
		"                    delete sessions older than DURATION (30d, 12h, 45m, 90s; default 30d)\n"
		"\n"
		"Exit status: 0 done (verify: intact); 1 verify found damage; 122 I/O failure;\n"
		"125 usage error or no such session.\n");
}

void help_audit(FILE *f)
{
	fprintf(f,
		"Usage: nono audit list\n"
		"       nono audit show SESSION [--json]\n"
		"       nono audit verify SESSION\n"
		"       nono audit export SESSION\n"
		"\n"
		"The session ledger every 'nono run' records ($XDG_STATE_HOME/nono/audit, default\n"
		"~/.local/state/nono/audit): the command, the resolved grants and their source, the\n"
		"network mode and proxy settings, the executable's path and SHA-256, the rollback\n"
		"session, every supervisor and proxy decision, the exit status. Each record holds the\n"
		"SHA-256 of the one before it; the last one a Merkle root over them all.\n"
		"\n"
		"  list              every session: id, start, decisions, exit status, command\n"
		"  show SESSION      its summary and records (--json: one JSON object)\n"
		"  verify SESSION    check every record's hash, the chain and the Merkle root; name the\n"
		"                    first edited, dropped, reordered or appended record\n"
		"  export SESSION    the records as JSON lines, each with \"session_id\" added\n"
		"\n"
		"Exit status: 0 done (verify: intact); 1 verify found damage; 122 I/O failure;\n"
		"125 usage error or no such session.\n");
}
