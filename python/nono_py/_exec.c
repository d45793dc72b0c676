/* _exec.c — running under a capability set: sandboxed_exec (a child, via nono_exec) and apply (this
 * process, via nono_apply). Values the library validates itself (timeout, loader variables in env)
 * are passed through unchecked, so its refusal and message are the ones Python sees. */
#include "_exec.h"

#include "_caps.h"
#include "_proxy.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* Supervisor decisions kept per sandboxed_exec (the oldest are dropped and counted beyond this). */
#define EXEC_AUDIT_CAP 256

static PyStructSequence_Field exec_result_fields[] = {
	{"exit_code", "exit status; 124 on timeout; -signo when killed by a signal"},
	{"stdout", "captured standard output (bytes)"},
	{"stderr", "captured standard error (bytes)"},
	{"timed_out", "True when the timeout killed the command"},
	{"term_signal", "signal that ended the command, 0 if it exited"},
	{"enforcement", "what the kernel enforced, one line a layer"},
	{"audit_events", "network supervisor decisions during the run (list of dicts)"},
	{"audit_dropped", "supervisor decisions dropped because more than 256 were recorded"},
	{"report", "what the kernel enforced, as fields (dict: nono_report_json)"},
	{NULL, NULL},
};
PyStructSequence_Desc nono_py_exec_result_desc = {
	"nono_py.ExecResult", "Result of sandboxed_exec(): (exit_code, stdout, stderr) + details.",
	exec_result_fields, 3,
};

/* command (a sequence of str/bytes/os.PathLike, not a string) -> argv. */
static int command_to_argv(PyObject *command, nono_py_strvec *out)
{
	if (PyUnicode_Check(command) || PyBytes_Check(command)) {
		PyErr_SetString(PyExc_TypeError, "command must be a sequence of arguments, not a string");
		return -1;
	}
	PyObject *seq = PySequence_Fast(command, "command must be a sequence of arguments");
	if (!seq)
		return -1;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	if (n == 0) {
		Py_DECREF(seq);
		PyErr_SetString(PyExc_ValueError, "command must not be empty");
		return -1;
	}
	out->keep = PyList_New(n);
	for (Py_ssize_t i = 0; out->keep && i < n; i++) {
		PyObject *b = NULL, *item = PySequence_Fast_GET_ITEM(seq, i);
		if (!(PyUnicode_Check(item) || PyBytes_Check(item) || PyObject_HasAttrString(item, "__fspath__"))) {
			PyErr_Format(PyExc_TypeError, "command[%zd] must be str, bytes or os.PathLike, not %.100s",
				     i, Py_TYPE(item)->tp_name);
			goto fail;
		}
		if (!PyUnicode_FSConverter(item, &b))
			goto fail;
		if (i == 0 && PyBytes_GET_SIZE(b) == 0) {
			Py_DECREF(b);
			PyErr_SetString(PyExc_ValueError, "command[0] (the program) must not be empty");
			goto fail;
		}
		PyList_SET_ITEM(out->keep, i, b);
	}
	Py_DECREF(seq);
	if (!out->keep)
		return -1;
	out->v = PyMem_Calloc((size_t)n + 1, sizeof(char *));
	if (!out->v) {
		PyErr_NoMemory();
		goto fail_vec;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		out->v[i] = PyBytes_AS_STRING(PyList_GET_ITEM(out->keep, i));
	return 0;
fail:
	Py_DECREF(seq);
fail_vec:
	nono_py_strvec_clear(out);
	return -1;
}

/* None or a number -> seconds for nono_exec_opts (0 = none). Negative and NaN are refused here in
 * nono-py's words (naming the argument); the library refuses them too. Infinity means "no timeout". */
static int parse_timeout(PyObject *obj, double *out)
{
	*out = 0;
	if (obj == Py_None)
		return 0;
	if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
		PyErr_Format(PyExc_TypeError, "timeout_secs must be a number or None, not %.100s",
			     Py_TYPE(obj)->tp_name);
		return -1;
	}
	double t = PyFloat_AsDouble(obj);
	if (t == -1.0 && PyErr_Occurred())
		return -1;
	if (isnan(t) || t < 0) {
		PyErr_Format(PyExc_ValueError, "timeout_secs must be non-negative, not %R", obj);
		return -1;
	}
	*out = isinf(t) && t > 0 ? 0 : t;
	return 0;
}

/* With inherit_env, loader-control variables in this process's environment (LD_PRELOAD, …) are
 * refused by name instead of being dropped silently: the caller asked for "my environment" and
 * would not get it. Unset them (os.environ.pop) or pass env= explicitly. */
static int check_inherited_loader_vars(void)
{
	extern char **environ;
	PyObject *names = PyList_New(0);
	for (char **p = environ; names && p && *p; p++) {
		const char *eq = strchr(*p, '=');
		if (!eq || eq == *p)
			continue;
		PyObject *n = PyUnicode_DecodeFSDefaultAndSize(*p, eq - *p);
		PyObject *b = n ? PyUnicode_EncodeFSDefault(n) : NULL;
		if (b && nono_env_name_is_loader(PyBytes_AS_STRING(b)) && PyList_Append(names, n) < 0)
			Py_CLEAR(names);
		if (!n || !b)
			Py_CLEAR(names);
		Py_XDECREF(n);
		Py_XDECREF(b);
	}
	if (!names)
		return -1;
	int rc = 0;
	if (PyList_GET_SIZE(names)) {
		PyObject *sep = PyUnicode_FromString(", ");
		PyObject *joined = sep ? PyUnicode_Join(sep, names) : NULL;
		if (joined)
			PyErr_Format(PyExc_ValueError, "inherit_env: the environment holds loader-control "
				     "variables (%U); the child would not get them: unset them or pass "
				     "env= explicitly", joined);
		Py_XDECREF(sep);
		Py_XDECREF(joined);
		rc = -1;
	}
	Py_DECREF(names);
	return rc;
}

/* A cwd that does not exist is FileNotFoundError (the library reports any bad cwd as -EINVAL,
 * keeping -ENOENT for "program not found"). */
static int check_cwd(PyObject *cwd)
{
	struct stat st;
	if (!cwd || stat(PyBytes_AS_STRING(cwd), &st) == 0 || errno != ENOENT)
		return 0;
	PyObject *name = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(cwd));
	PyObject *exc = name ? PyObject_CallFunction(PyExc_FileNotFoundError, "isO", ENOENT,
						     "cwd does not exist", name)
			     : NULL;
	if (exc)
		PyErr_SetObject(PyExc_FileNotFoundError, exc);
	Py_XDECREF(exc);
	Py_XDECREF(name);
	return -1;
}

/* -ENOENT from nono_exec: nono_py._errors.ProgramNotFoundError (FileNotFoundError and RuntimeError),
 * the library's message with a capital letter ("Program not found in PATH: …"). */
static PyObject *raise_not_found(const nono_error *err)
{
	PyObject *mod = PyImport_ImportModule("nono_py._errors");
	PyObject *cls = mod ? PyObject_GetAttrString(mod, "ProgramNotFoundError") : NULL;
	Py_XDECREF(mod);
	if (!cls)
		return NULL;
	PyObject *msg = nono_py_text(err->message);
	if (msg && PyUnicode_GET_LENGTH(msg) > 0) {
		PyObject *head = PyUnicode_Substring(msg, 0, 1), *tail = PyUnicode_Substring(msg, 1,
											PY_SSIZE_T_MAX);
		PyObject *up = head ? PyObject_CallMethod(head, "upper", NULL) : NULL;
		Py_SETREF(msg, up && tail ? PyUnicode_Concat(up, tail) : NULL);
		Py_XDECREF(head);
		Py_XDECREF(tail);
		Py_XDECREF(up);
	}
	PyObject *exc = msg ? PyObject_CallFunction(cls, "iO", ENOENT, msg) : NULL;
	if (exc)
		PyErr_SetObject(cls, exc);
	Py_XDECREF(exc);
	Py_XDECREF(msg);
	Py_DECREF(cls);
	return NULL;
}

/* The proxy attached by proxy_only(), if any, must still be running: a stopped proxy's port could be
 * taken by anyone, and the child may reach exactly that port. */
static int check_proxy(nono_py_caps *c, nono_py_proxy **out)
{
	*out = NULL;
	if (!c->proxy)
		return 0;
	nono_py_proxy *p = (nono_py_proxy *)c->proxy;
	if (!p->proxy) {
		PyErr_SetString(PyExc_RuntimeError,
				"the proxy given to proxy_only() has been shut down; start a new one");
		return -1;
	}
	*out = p;
	return 0;
}

/* The report's structured fields (the library's nono_report_json) as a dict: callers and tests read
 * fields, never the prose of `enforcement`. */
static PyObject *report_dict(const nono_report *r)
{
	char *j = nono_report_json(r);
	if (!j)
		return PyErr_NoMemory();
	PyObject *json = PyImport_ImportModule("json");
	PyObject *d = json ? PyObject_CallMethod(json, "loads", "s", j) : NULL;
	Py_XDECREF(json);
	free(j);
	return d;
}

static PyObject *build_exec_result(nono_py_state *st, const nono_exec_result *r, nono_audit *audit)
{
	PyObject *res = PyStructSequence_New(st->exec_result_type);
	if (!res)
		return NULL;
	PyObject *events = PyList_New(0);
	PyObject *v[] = {
		PyLong_FromLong(r->exit_code),
		PyBytes_FromStringAndSize((const char *)r->out, r->out ? (Py_ssize_t)r->out_len : 0),
		PyBytes_FromStringAndSize((const char *)r->err, r->err ? (Py_ssize_t)r->err_len : 0),
		PyBool_FromLong(r->timed_out),
		PyLong_FromLong(r->term_signal),
		nono_py_text(r->report.text),
		events,
		PyLong_FromUnsignedLongLong(audit ? nono_audit_dropped(audit) : 0),
		report_dict(&r->report),
	};
	int bad = 0;
	for (size_t i = 0; i < N_ELEMENTS(v); i++) {
		bad |= !v[i];
		PyStructSequence_SetItem(res, (Py_ssize_t)i, v[i]); /* steals; NULL allowed on error */
	}
	if (!bad && audit) {
		nono_audit_event ev[32];
		size_t n;
		while (!bad && (n = nono_audit_drain(audit, ev, N_ELEMENTS(ev))) > 0)
			bad = nono_py_events_extend(events, ev, n) < 0;
	}
	if (bad)
		Py_CLEAR(res);
	return res;
}

/* Everything one sandboxed_exec call owns; exec_args_clear releases it. */
typedef struct {
	nono_py_caps *caps;
	nono_py_strvec argv, env;
	PyObject *cwd; /* bytes or NULL */
	double timeout;
	int inherit_env, audit_allowed;
	char **merged;       /* env with the proxy's variables, or NULL */
	nono_caps *clone;
	nono_audit *audit;
} exec_args;

static void exec_args_clear(exec_args *a)
{
	nono_audit_free(a->audit);
	nono_caps_free(a->clone);
	nono_strv_free(a->merged);
	nono_py_strvec_clear(&a->argv);
	nono_py_strvec_clear(&a->env);
	Py_XDECREF(a->cwd);
}

/* The environment for the child: with proxy_only(handle), the proxy's variables (with its session
 * token) are merged in (nono_proxy_env_for refuses one of them in `env`: it would be
 * overwritten); they come from the handle, never from os.environ. NO_PROXY lists exactly what the
 * set lets the child reach directly: nothing by default, so a client reaches an allow_internal
 * service through the proxy, never into a refused direct connect. */
static int merge_proxy_env(exec_args *a)
{
	nono_py_proxy *proxy;
	if (check_proxy(a->caps, &proxy) < 0)
		return -1;
	if (!proxy)
		return 0;
	nono_error err = {0};
	nono_py_strvec_drop_proxy_vars(&a->env);
	int rc = nono_proxy_env_for(proxy->proxy, a->caps->caps, a->env.v, &a->merged, &err);
	if (rc < 0) {
		nono_py_raise(rc, &err);
		return -1;
	}
	return 0;
}

/* Parse and convert the arguments; take a private copy of the set (the caller may mutate `caps`
 * while the GIL is released) and an audit ring when a supervisor may run. */
static int exec_args_parse(nono_py_state *st, PyObject *args, PyObject *kw, exec_args *a)
{
	static char *kwlist[] = {"caps", "command", "cwd", "timeout_secs", "env", "inherit_env",
				 "audit_allowed", NULL};
	PyObject *command, *timeout_obj = Py_None, *env = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|O&OOp$p:sandboxed_exec", kwlist, st->caps_type,
					 &a->caps, &command, nono_py_path_conv, &a->cwd, &timeout_obj,
					 &env, &a->inherit_env, &a->audit_allowed))
		return -1;
	if (parse_timeout(timeout_obj, &a->timeout) < 0 || command_to_argv(command, &a->argv) < 0 ||
	    nono_py_env_vec(env, &a->env) < 0 || merge_proxy_env(a) < 0 || check_cwd(a->cwd) < 0 ||
	    (a->inherit_env && check_inherited_loader_vars() < 0))
		return -1;
	a->clone = nono_caps_clone(a->caps->caps);
	if (!a->clone) {
		PyErr_NoMemory();
		return -1;
	}
	if (nono_caps_network(a->clone, NULL) != NONO_NET_ALLOWED &&
	    !(a->audit = nono_audit_new(EXEC_AUDIT_CAP))) {
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}

/* -EFBIG (a captured stream passed the cap; the command was killed): RuntimeError with .errno and
 * .result, the ExecResult of what was captured, up to the cap. */
static void raise_with_partial(nono_py_state *st, const nono_exec_result *r, exec_args *a,
			       const nono_error *err)
{
	PyObject *partial = build_exec_result(st, r, a->audit);
	nono_py_raise(-EFBIG, err);
	if (!partial)
		return;
	PyObject *t, *v, *tb;
	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (v && PyObject_SetAttrString(v, "result", partial) < 0)
		PyErr_Clear();
	Py_DECREF(partial);
	PyErr_Restore(t, v, tb);
}

PyObject *nono_py_sandboxed_exec(PyObject *module, PyObject *args, PyObject *kw)
{
	nono_py_state *st = PyModule_GetState(module);
	exec_args a;
	memset(&a, 0, sizeof a);
	PyObject *res = NULL;
	if (exec_args_parse(st, args, kw, &a) < 0)
		goto out;

	nono_exec_opts opts;
	nono_exec_opts_init(&opts);
	opts.cwd = a.cwd ? PyBytes_AS_STRING(a.cwd) : NULL;
	opts.env = a.merged ? (const char *const *)a.merged : a.env.v;
	opts.inherit_env = a.inherit_env;
	opts.timeout_secs = a.timeout;
	opts.capture = true;
	opts.audit = a.audit;
	opts.audit_allowed = a.audit_allowed;
	nono_exec_result r;
	memset(&r, 0, sizeof r);
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_exec(a.clone, a.argv.v, &opts, &r, &err);
	Py_END_ALLOW_THREADS
	if (rc == -ENOENT)
		raise_not_found(&err);
	else if (rc == -EFBIG)
		raise_with_partial(st, &r, &a, &err);
	else if (rc < 0)
		nono_py_raise(rc, &err);
	else
		res = build_exec_result(st, &r, a.audit);
	nono_exec_result_free(&r);
out:
	exec_args_clear(&a);
	return res;
}

PyObject *nono_py_apply(PyObject *module, PyObject *arg)
{
	nono_py_state *st = PyModule_GetState(module);
	if (!PyObject_TypeCheck(arg, st->caps_type)) {
		PyErr_Format(PyExc_TypeError, "apply() needs a CapabilitySet, not %.100s", Py_TYPE(arg)->tp_name);
		return NULL;
	}
	nono_py_proxy *proxy;
	if (check_proxy((nono_py_caps *)arg, &proxy) < 0)
		return NULL;
	nono_caps *clone = nono_caps_clone(((nono_py_caps *)arg)->caps);
	if (!clone)
		return PyErr_NoMemory();
	nono_error err = {0};
	nono_report rep;
	int rc;
	/* nono_apply may fork the supervisor helper: never hold the GIL across fork. */
	Py_BEGIN_ALLOW_THREADS
	rc = nono_apply(clone, 0, &rep, &err);
	Py_END_ALLOW_THREADS
	nono_caps_free(clone);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}
