/* run.c — `nono run`: options (options.c) become a policy (policy.c); --dry-run prints it
 * (dryrun.c); otherwise --allow-domain starts the in-process filtering proxy, the capability set
 * gets its port, and nono_exec runs the command. nono_exec itself passes the stop signals sent to
 * nono on to the command (forward_signals) and writes the supervisor's audit lines to the
 * --audit-log file (audit_fd): no thread of the CLI's own. Exit status: the command's own, or one
 * of nono's codes (util.h). */
#include "commands.h"
#include "denials.h"
#include "dryrun.h"
#include "policy.h"
#include "runenv.h"
#include "audit_run.h"
#include "rollback.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a real run holds, released by run_ctx_free. */
struct run_ctx {
	nono_caps *caps;
	nono_proxy_config *pcfg;
	nono_proxy *proxy;
	char **penv; /* the command's environment with the proxy's variables */
	int audit_fd;
	char **env;   /* the command's environment (runenv_build) */
	char *tmpdir; /* the private temp dir, NULL with --no-tmp */
	char *ca_tmp; /* --intercept: the session CA's directory (icpt.c) */
	bool keep_tmp;
	struct rb_run rb; /* --rollback */
	struct audit_run audit; /* the session ledger (audit_run.c) */
};

static void run_ctx_free(struct run_ctx *r)
{
	if (r->audit_fd >= 0)
		close(r->audit_fd);
	nono_proxy_stop(r->proxy); /* flushes the proxy's audit log */
	icpt_remove(&r->ca_tmp); /* its files went with the proxy */
	nono_proxy_config_free(r->pcfg);
	nono_strv_free(r->penv);
	nono_caps_free(r->caps);
	nono_strv_free(r->env);
	/* nono_exec's reaper removed it (eo.remove_dir) after the command and everything it
	 * started exited; what is left here is a run whose command never started, or what the
	 * reaper could not remove (runtmp_remove says so). */
	if (r->tmpdir && r->keep_tmp)
		cli_err("kept the private temp dir %s (--keep-tmp)", r->tmpdir);
	else if (r->tmpdir)
		runtmp_remove(r->tmpdir);
	free(r->tmpdir);
	rb_run_free(&r->rb);
	audit_run_free(&r->audit);
}

/* ---- the stop signals: SIGTERM, SIGHUP, SIGINT, SIGQUIT ----
 *
 * Blocked before any thread exists (the proxy's and the supervisor's inherit the mask). While the
 * command runs, nono_exec takes them from a signalfd and passes them to the command's process
 * group (through its reaper), so the whole group can clean up and nono exits with the command's
 * status (e.g. 143). When no command runs (before the fork, after it ended) they stay pending and
 * nono dies of them once it has cleaned up. Terminal ^C in foreground mode reaches the command's
 * group directly, never nono. */

static const int stop_signals[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

static void block_stop_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < N_ELEMENTS(stop_signals); i++)
		sigaddset(&set, stop_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* True when one is pending; with `die`, the default action is taken for it (nono ends). */
static bool stop_signal_pending(bool die)
{
	sigset_t pending;
	if (sigpending(&pending) < 0)
		return false;
	for (size_t i = 0; i < N_ELEMENTS(stop_signals); i++) {
		int sig = stop_signals[i];
		if (!sigismember(&pending, sig))
			continue;
		if (!die)
			return true;
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		signal(sig, SIG_DFL);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL); /* delivered here: nono dies of it */
		return true;
	}
	return false;
}

/* ---- the real run ---- */

/* Start the proxy and point the capability set and the command's environment at its port. */
static int start_proxy(const struct run_opts *o, struct run_ctx *r)
{
	nono_error err = {0};
	int ist = icpt_prepare(&o->icpt, r->pcfg, r->caps, &r->ca_tmp);
	if (ist >= 0)
		return ist;
	if (nono_proxy_start(r->pcfg, &r->proxy, &err) < 0) {
		cli_err("starting the proxy: %s", err.message);
		return EXIT_INTERNAL;
	}
	if ((ist = icpt_grant_bundle(r->proxy, r->caps)) >= 0)
		return ist;
	if (nono_caps_set_network(r->caps, NONO_NET_PROXY_ONLY, nono_proxy_port(r->proxy),
				  &err) < 0 ||
	    nono_proxy_env_for(r->proxy, r->caps, (const char *const *)r->env, &r->penv, &err) < 0) {
		cli_err("%s", err.message);
		return err.code == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
	}
	/* Credential routes: {PREFIX}_BASE_URL and the placeholders (never the secrets). */
	if (o->ro.routes.n) {
		route_scrub_env(&o->ro);
		char **merged = NULL;
		int st = route_env_merge(r->proxy, (const char *const *)r->penv, &merged);
		if (st >= 0)
			return st;
		nono_strv_free(r->penv);
		r->penv = merged;
	}
	return -1;
}

/* The supervisor appends its lines to the same file as the proxy (O_APPEND: whole lines).
 * O_NONBLOCK: a FIFO whose reader stalls must not stall the supervisor (and with it every
 * supervised call and nono's exit); such a line is lost and counted instead (execute). */
static int open_audit(const struct run_opts *o, struct run_ctx *r)
{
	r->audit_fd = open(o->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK,
			   0600);
	if (r->audit_fd < 0) {
		cli_err("--audit-log %s: %s", o->audit_log, strerror(errno));
		return EXIT_USAGE;
	}
	return -1;
}

/* nono_exec's failure as an exit status (after printing why). */
static int exec_status(int rc, const nono_error *err)
{
	const char *msg = err->message[0] ? err->message : strerror(-rc);
	switch (rc) {
	case -ENOENT:
		cli_err("%s", msg);
		return EXIT_NOTFOUND;
	case -EACCES:
		cli_err("%s", msg);
		return EXIT_NOEXEC;
	case -EOPNOTSUPP:
		cli_err("this kernel cannot enforce the policy: %s (see 'nono setup --check'; "
			"--best-effort downgrades)", msg);
		return EXIT_UNENFORCEABLE;
	case -EINVAL:
		cli_err("%s", msg);
		return EXIT_USAGE;
	default:
		cli_err("%s", msg);
		return EXIT_INTERNAL;
	}
}

static int execute(const struct run_opts *o, struct run_ctx *r)
{
	nono_exec_opts eo;
	nono_exec_opts_init(&eo);
	eo.cwd = o->workdir;
	eo.env = (const char *const *)(r->penv ? r->penv : r->env);
	eo.inherit_env = false; /* runenv_build composed it from nono's environment */
	eo.timeout_secs = o->timeout;
	eo.pass_stdin = true;
	eo.foreground = true;
	eo.forward_signals = true;
	eo.flags = o->best_effort ? NONO_FLAG_BEST_EFFORT : 0;
	eo.audit_fd = r->audit_fd;
	/* The denial report: the supervisor's ring and the proxy's, drained while the command runs
	 * (-v prints each decision at once; allowed calls too), summarised after it exits. */
	/* Filesystem denials come from the kernel audit after the command exits (where nono may
	 * read it): asked for unless nothing would show them (-q without --audit-log). */
	nono_net_mode net = nono_caps_network(r->caps, NULL);
	eo.fs_audit = !o->quiet || r->audit_fd >= 0;
	nono_audit *ring = nono_audit_new(denials_ring_capacity(o->verbose, r->proxy));
	struct denials *dn = ring ? denials_start(ring, r->proxy, o->verbose, net, r->audit.ring)
				   : NULL;
	eo.audit = ring;
	eo.audit_allowed = o->verbose;
	/* The reaper removes it when the command and all it started are gone, even if nono is
	 * SIGKILLed; run_ctx_free only sweeps up if the command never started. */
	eo.remove_dir = r->keep_tmp ? NULL : r->tmpdir;
	nono_exec_result res;
	nono_error err = {0};
	int rc = nono_exec(r->caps, (const char *const *)o->cmd, &eo, &res, &err);
	denials_finish(dn, stderr, o->quiet || rc < 0, rc < 0 ? 0 : res.fs_audit,
		       rc == 0 && res.exit_code != 0);
	/* What the denial ring lost never reached the ledger either: count it there. */
	r->audit.lost_before += ring ? nono_audit_dropped(ring) : 0;
	nono_audit_free(ring);
	if (rc < 0)
		return exec_status(rc, &err);
	int status = res.exit_code;
	if (res.timed_out) {
		cli_err("timeout: %s killed after %gs", o->cmd[0], o->timeout);
		status = EXIT_TIMEOUT;
	} else if (res.term_signal) {
		status = 128 + res.term_signal;
	}
	if (res.report.downgraded)
		cli_err("best effort: not everything was enforced:\n%s", res.report.text);
	if (res.audit_lost)
		cli_err("audit: %llu supervisor event(s) could not be written to %s",
			(unsigned long long)res.audit_lost, o->audit_log);
	nono_exec_result_free(&res);
	return status;
}

/* A proxy nono did not start (--proxy-port alone, --proxy-url) must be there. */
static int check_shared_proxy(const struct run_opts *o, struct run_ctx *r)
{
	nono_error err = {0};
	const char *addr = "127.0.0.1";
	uint16_t port = o->proxy_port;
	if (o->proxy_url && nono_proxy_url_parse(o->proxy_url, &addr, &port, &err) < 0) {
		cli_err("--proxy-url: %s", err.message);
		return EXIT_USAGE;
	}
	int status = runenv_check_listening(addr, port, o->proxy_url ? "--proxy-url" : "--proxy-port");
	if (status < 0 && o->proxy_url &&
	    nono_proxy_env_url(o->proxy_url, r->caps, (const char *const *)r->env, &r->penv,
			       &err) < 0) {
		cli_err("--proxy-url: %s", err.message);
		return err.code == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
	}
	return status;
}

/* The private temp dir (granted read-write) and the command's environment. */
static int prepare_env(const struct run_opts *o, struct run_ctx *r)
{
	r->keep_tmp = o->keep_tmp;
	if (!o->no_tmp) {
		int status = runtmp_create(&r->tmpdir);
		if (status >= 0)
			return status;
		nono_error err = {0};
		if (nono_caps_allow_path(r->caps, r->tmpdir, NONO_ACCESS_READ_WRITE, &err) < 0) {
			cli_err("private temp dir %s: %s", r->tmpdir, err.message);
			return EXIT_INTERNAL;
		}
	}
	return runenv_build(o, r->caps, r->tmpdir, false, &r->env);
}

static int run(const struct run_opts *o, struct run_ctx *r)
{
	block_stop_signals();
	int status = prepare_env(o, r);
	if (status < 0 && !r->pcfg && (o->proxy_url || o->proxy_port_set))
		status = check_shared_proxy(o, r);
	if (status < 0 && r->pcfg)
		status = start_proxy(o, r);
	if (status < 0 && o->audit_log)
		status = open_audit(o, r);
	if (status >= 0)
		return status;
	/* Asked to stop before there is a command: do not start one (cmd_run then dies of it). */
	if (stop_signal_pending(false))
		return EXIT_INTERNAL;
	if (o->rollback && (status = rb_run_begin(o, r->caps, r->tmpdir, &r->rb)) >= 0)
		return status;
	audit_run_begin(o, r->caps, (const char *const *)(r->penv ? r->penv : r->env), &r->rb,
			&r->audit);
	status = execute(o, r);
	if (o->rollback)
		rb_run_end(&r->rb, status);
	audit_run_end(&r->audit, r->proxy, status);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	struct run_ctx r = {.audit_fd = -1};
	int status = run_opts_parse(argc, argv, MODE_RUN, &o);
	/* With --allow-domain and no --proxy-port the port is chosen when the proxy starts: 0 until
	 * then (a dry run says so; a real run sets it before it executes anything). */
	if (status < 0)
		status = policy_build_caps(&o, o.proxy_port_set ? o.proxy_port : 0, &r.caps);
	if (status < 0 && (o.domains.n || o.ro.routes.n))
		status = policy_build_proxy_config(&o, &r.pcfg);
	if (status < 0 && o.audit_log)
		status = runenv_check_audit_log(r.caps, o.audit_log);
	if (status < 0)
		status = route_opts_check_files(&o.ro, r.caps);
	if (status < 0)
		status = icpt_check_grants(&o.icpt, r.caps);
	o.pcfg = r.pcfg;
	if (status < 0)
		status = o.dry_run ? dry_run(&o, r.caps) : run(&o, &r);
	run_ctx_free(&r);
	run_opts_free(&o);
	stop_signal_pending(true); /* arrived when no command ran: nono ends by it, as it would have */
	return status;
}
