/* report.c — a plan's report, rendered from its structured fields: the text (one line a layer) and
 * the JSON object. Nothing here decides anything; plan.c fills the fields. */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

void nono_report_downgrade(nono_report *r, const char *fmt, ...)
{
	r->downgraded = true;
	if (r->n_downgrades >= NONO_REPORT_DOWNGRADES_MAX) {
		/* Never silently: the last slot says that more were cut (plan.c makes at most 4). */
		snprintf(r->downgrades[NONO_REPORT_DOWNGRADES_MAX - 1], NONO_REASON_MAX,
			 "more downgrades than the report holds (%d)", NONO_REPORT_DOWNGRADES_MAX);
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->downgrades[r->n_downgrades++], NONO_REASON_MAX, fmt, ap);
	va_end(ap);
	r->downgraded = true;
}

static void port_text(uint16_t port, char *buf, size_t len)
{
	if (port)
		snprintf(buf, len, "%u", (unsigned)port);
	else
		snprintf(buf, len, "port chosen at start");
}

static void landlock_lines(const nono_report *r, char *t, size_t len)
{
	if (r->landlock_abi == 0) {
		append(t, len, "landlock: NOT APPLIED (kernel offers ABI %d): filesystem unrestricted\n",
		       r->landlock_abi_kernel);
		return;
	}
	char un[200];
	nono_landlock_rights_text(r->fs_unenforced, un, sizeof un);
	append(t, len, "landlock: ABI %d", r->landlock_abi);
	if (r->landlock_abi_kernel > r->landlock_abi && r->landlock_cap[0])
		append(t, len, " (kernel offers %d, capped by %s)", r->landlock_abi_kernel,
		       r->landlock_cap);
	else if (r->landlock_abi_kernel > r->landlock_abi)
		append(t, len, " (kernel offers %d; this library knows up to %d)",
		       r->landlock_abi_kernel, r->landlock_abi);
	append(t, len, ", %zu grant(s), fs rights handled 0x%llx, not enforceable: %s", r->grants,
	       (unsigned long long)r->fs_handled, un);
	if (r->truncate_by_filter)
		/* no "truncate" in this text: the enforceable list before it is what tests read */
		append(t, len, " (below ABI 3 seccomp closes truncation without a write fd: by path "
			       "and by read-mode O_TRUNC opens → EACCES, openat2 → ENOSYS)");
	append(t, len, "\n");
	if (r->landlock_tcp) {
		char port[32] = "none";
		if (r->net_enforced == NONO_NET_PROXY_ONLY)
			port_text(r->proxy_port, port, sizeof port);
		append(t, len, "landlock net: TCP connect/bind by port (connect: %s%s, bind: %zu "
			       "port(s))\n",
		       r->net_enforced == NONO_NET_PROXY_ONLY && r->proxy_port ? "port " : "", port,
		       r->net_enforced == NONO_NET_PROXY_ONLY ? r->bind_ports : 0);
	}
}

void nono_report_render(nono_report *r)
{
	char *t = r->text;
	size_t len = sizeof r->text;
	t[0] = '\0';
	landlock_lines(r, t, len);
	if (r->landlock_scopes)
		append(t, len, "landlock scopes: signal%s\n",
		       r->scope_abstract_unix ? ", abstract unix sockets" : "");
	else
		/* Scopes arrived with ABI 6 (6.12). Below it the command may signal any process of
		 * the same user, and abstract unix sockets are left to the supervisor (blocked and
		 * proxy-only only): say so rather than imply it is enforced. */
		append(t, len, "landlock scopes: NOT ENFORCED (ABI < 6): signals to processes "
			       "outside the sandbox are not scoped\n");
	append(t, len, "seccomp: %s\n",
	       r->seccomp ? (r->supervisor ? "filter + user-notification supervisor" : "filter")
			  : "NOT APPLIED");
	if (r->seccomp)
		append(t, len, "keyring: refused; user namespaces: %s\n",
		       r->userns_refused ? "refused" : "ALLOWED (--allow-userns)");
	/* Issue 11: with Landlock on, a supervisor decides metadata writes and watches (plan.c
	 * decide_meta); without one they are refused. */
	if (r->seccomp && r->landlock_abi >= 1)
		append(t, len, "metadata writes, watches: %s\n",
		       r->supervisor ? "inside write grants / read grants only (supervisor)"
				     : "refused (no supervisor)");
	append(t, len, "no_new_privs: %s\n", r->no_new_privs ? "yes" : "no");
	if (r->deny_mounts || r->ro_binds)
		append(t, len, "mounts: %zu denied path(s) inside grants covered, %zu read-only "
			       "grant(s) inside writable grants bound read-only (private mount "
			       "namespace)\n", r->deny_mounts, r->ro_binds);
	append(t, len, "network: requested %s", nono_net_mode_name(r->net_requested));
	if (r->net_requested == NONO_NET_PROXY_ONLY) {
		char port[32];
		port_text(r->proxy_port, port, sizeof port);
		append(t, len, "(%s)", port);
	}
	append(t, len, ", enforced %s\n", nono_net_mode_name(r->net_enforced));
	if (r->platform_rules)
		/* Seatbelt rules have no Linux equivalent: say so rather than drop them silently. */
		append(t, len, "platform rules: %zu recorded, NOT ENFORCED on Linux (macOS Seatbelt)\n",
		       r->platform_rules);
	for (unsigned i = 0; i < r->n_downgrades; i++)
		append(t, len, "%s%s", i ? "; " : "downgraded: ", r->downgrades[i]);
	size_t l = strlen(t);
	if (l && t[l - 1] == '\n')
		t[l - 1] = '\0';
}

static json_t *rights_json(uint64_t rights)
{
	char buf[256];
	json_t *a = json_array();
	if (!a || !rights)
		return a;
	nono_landlock_rights_text(rights, buf, sizeof buf);
	for (char *save = NULL, *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(n));
	return a;
}

static json_t *lines_json(const char *text)
{
	json_t *a = json_array();
	char buf[sizeof((nono_report *)0)->text];
	snprintf(buf, sizeof buf, "%s", text);
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); a && l;
	     l = strtok_r(NULL, "\n", &save))
		json_array_append_new(a, json_string(l));
	return a;
}

char *nono_report_json(const nono_report *r)
{
	if (!r)
		return NULL;
	json_t *down = json_array();
	for (unsigned i = 0; down && i < r->n_downgrades; i++)
		json_array_append_new(down, json_string(r->downgrades[i]));
	json_t *o = json_pack(
		"{s:i, s:i, s:s?, s:o, s:o, s:I, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:s, s:o, "
		"s:I, s:I, s:b, s:o, s:o}",
		"landlock_abi", r->landlock_abi, "landlock_abi_kernel", r->landlock_abi_kernel,
		"landlock_cap", r->landlock_cap[0] ? r->landlock_cap : NULL, "fs_handled",
		rights_json(r->fs_handled), "fs_unenforced", rights_json(r->fs_unenforced), "grants",
		(json_int_t)r->grants, "landlock_tcp", r->landlock_tcp, "landlock_scopes",
		r->landlock_scopes, "scope_abstract_unix", r->scope_abstract_unix, "seccomp",
		r->seccomp, "truncate_by_filter", r->truncate_by_filter, "supervisor", r->supervisor,
		"no_new_privs", r->no_new_privs, "net_requested", nono_net_mode_name(r->net_requested),
		"net_enforced", nono_net_mode_name(r->net_enforced), "proxy_port",
		r->proxy_port ? json_integer(r->proxy_port) : json_null(), "bind_ports",
		(json_int_t)r->bind_ports, "unix_sockets", (json_int_t)r->unix_sockets, "downgraded",
		r->downgraded, "downgrades", down, "text", lines_json(r->text));
	if (o && json_object_set_new(o, "platform_rules", json_integer((json_int_t)r->platform_rules))) {
		json_decref(o);
		return NULL;
	}
	if (!o)
		return NULL;
	json_object_set_new(o, "deny_mounts", json_integer((json_int_t)r->deny_mounts));
	json_object_set_new(o, "ro_binds", json_integer((json_int_t)r->ro_binds));
	if (json_object_set_new(o, "userns_refused", json_boolean(r->userns_refused)) != 0) {
		json_decref(o);
		return NULL;
	}
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}
