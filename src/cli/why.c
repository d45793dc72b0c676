/* why.c — `nono why`: whether the policy built from the grant options (as `nono run` builds it)
 * allows an access, and which grant decides it. Nothing runs. */
#include "commands.h"
#include "policy.h"
#include "whyhost.h"
#include "profile.h"

#include <errno.h>
#include <stdio.h>

/* The library refuses meaningless grant combinations (-EINVAL) the same way for every front end;
 * that the kernel could not enforce the policy (-EOPNOTSUPP) does not change the answer. */
static int check_combination(const nono_caps *caps, const struct run_opts *o)
{
	nono_report rep;
	nono_error err = {0};
	if (policy_plan(caps, o, &rep, &err) == -EINVAL) {
		cli_err("%s", err.message);
		return EXIT_USAGE;
	}
	return -1;
}

static int why_path(const nono_caps *caps, const struct run_opts *o)
{
	nono_decision d = {0};
	nono_error err = {0};
	if (nono_caps_query_path(caps, o->why_path, o->why_access, &d, &err) < 0) {
		cli_err("--path %s: %s", o->why_path, err.message);
		return EXIT_USAGE;
	}
	printf("%s %s: %s: %s", nono_access_name(o->why_access), o->why_path,
	       d.allowed ? "allowed" : "denied", d.reason);
	const char *from = d.grant[0] ? profile_origin_of(o->prof, d.grant) : NULL;
	if (d.grant[0])
		printf(" (grant: %s%s%s)", d.grant, from ? ", from " : "", from ? from : "");
	putchar('\n');
	return d.allowed ? 0 : 1;
}

static int why_net(const nono_caps *caps)
{
	nono_decision d = {0};
	nono_caps_query_network(caps, &d);
	printf("network: %s: %s\n", d.allowed ? "allowed" : "denied", d.reason);
	return d.allowed ? 0 : 1;
}

int cmd_why(int argc, char **argv)
{
	struct run_opts o = {0};
	nono_caps *caps = NULL;
	int status = run_opts_parse(argc, argv, MODE_WHY, &o);
	if (status < 0) /* proxy port 0: chosen at start, as for a dry run */
		status = policy_build_caps(&o, o.proxy_port_set ? o.proxy_port : 0, &caps);
	if (status < 0)
		status = check_combination(caps, &o);
	if (status < 0)
		status = o.why_host ? why_host(caps, &o) : o.why_net ? why_net(caps) : why_path(caps, &o);
	nono_caps_free(caps);
	run_opts_free(&o);
	return status;
}
