/* _nono.c — the nono_py._nono module: module state, error mapping, argument converters, and the
 * module-level functions (sandboxed_exec, apply, is_supported, support_info, start_proxy).
 * The classes live in _caps.c (CapabilitySet, QueryContext, SandboxState) and _proxy.c. */
#include "_nono.h"

#include <errno.h>
#include <math.h>
#include <string.h>

PyMODINIT_FUNC PyInit__nono(void);

nono_py_state *nono_py_state_of(PyTypeObject *tp)
{
	PyObject *m = PyType_GetModuleByDef(tp, &nono_py_module);
	return m ? PyModule_GetState(m) : NULL;
}

/* Library text is UTF-8 by convention but may embed arbitrary path bytes: never let a decoding error
 * replace the real one. */
static PyObject *text(const char *s)
{
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "backslashreplace");
}

PyObject *nono_py_raise(int rc, const nono_error *err)
{
	int code = rc < 0 ? -rc : rc;
	const char *msg = (err && err->message[0]) ? err->message : strerror(code);
	PyObject *exc = PyExc_RuntimeError, *args = NULL, *inst = NULL;

	switch (code) {
	case ENOMEM:
		return PyErr_NoMemory();
	case ENOENT:
		exc = PyExc_FileNotFoundError;
		break;
	case EACCES:
	case EPERM:
		exc = PyExc_PermissionError;
		break;
	case EINVAL:
	case ENOTDIR:
	case EISDIR:
		exc = PyExc_ValueError;
		break;
	default:
		break;
	}
	PyObject *m = text(msg);
	if (!m)
		return NULL;
	if (PyType_IsSubtype((PyTypeObject *)exc, (PyTypeObject *)PyExc_OSError))
		args = Py_BuildValue("(iN)", code, m); /* OSError(errno, strerror): sets e.errno */
	else
		args = Py_BuildValue("(N)", m);
	if (!args)
		return NULL;
	inst = PyObject_Call(exc, args, NULL);
	Py_DECREF(args);
	if (!inst)
		return NULL;
	/* RuntimeError carries the errno too, so callers can tell -EOPNOTSUPP from -EBUSY. */
	if (exc == PyExc_RuntimeError) {
		PyObject *e = PyLong_FromLong(code);
		if (!e || PyObject_SetAttrString(inst, "errno", e) < 0) {
			Py_XDECREF(e);
			Py_DECREF(inst);
			return NULL;
		}
		Py_DECREF(e);
	}
	PyErr_SetObject(exc, inst);
	Py_DECREF(inst);
	return NULL;
}

int nono_py_path_conv(PyObject *obj, void *out)
{
	int r = PyUnicode_FSConverter(obj, out); /* embedded NUL -> ValueError */
	if (r && obj && PyBytes_GET_SIZE(*(PyObject **)out) == 0) {
		Py_CLEAR(*(PyObject **)out);
		PyErr_SetString(PyExc_ValueError, "path must not be empty");
		return 0;
	}
	return r;
}

int nono_py_access_conv(PyObject *obj, void *out)
{
	nono_py_access_arg *a = out;
	int ok = PyObject_IsInstance(obj, a->st->access_mode);
	if (ok < 0)
		return 0;
	if (!ok) {
		PyErr_Format(PyExc_TypeError, "mode must be an AccessMode member, not %.100s",
			     Py_TYPE(obj)->tp_name);
		return 0;
	}
	long v = PyLong_AsLong(obj);
	if (v == -1 && PyErr_Occurred())
		return 0;
	a->access = (nono_access)v;
	return 1;
}

PyObject *nono_py_access_obj(nono_py_state *st, nono_access a)
{
	if (a >= NONO_ACCESS_READ && a <= NONO_ACCESS_READ_WRITE)
		return Py_NewRef(st->access_member[a]);
	PyObject *v = PyLong_FromLong((long)a);
	if (!v)
		return NULL;
	PyObject *r = PyObject_CallOneArg(st->access_mode, v);
	Py_DECREF(v);
	return r;
}

/* ------------------------------------------------------------------------------------------------
 * sandboxed_exec
 * ---------------------------------------------------------------------------------------------- */

/* A NULL-terminated char* vector pointing into a list of bytes objects that keeps them alive. */
typedef struct {
	PyObject *keep; /* list of bytes */
	const char **v;
} strvec;

static void strvec_clear(strvec *s)
{
	Py_CLEAR(s->keep);
	PyMem_Free(s->v);
	s->v = NULL;
}

static int strvec_finish(strvec *s)
{
	Py_ssize_t n = PyList_GET_SIZE(s->keep);
	s->v = PyMem_Calloc((size_t)n + 1, sizeof(char *));
	if (!s->v) {
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		s->v[i] = PyBytes_AS_STRING(PyList_GET_ITEM(s->keep, i));
	return 0;
}

static int command_to_argv(PyObject *command, strvec *out)
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
		if (PyUnicode_Check(item) || PyBytes_Check(item) || PyObject_HasAttrString(item, "__fspath__")) {
			if (!PyUnicode_FSConverter(item, &b))
				goto fail;
		} else {
			PyErr_Format(PyExc_TypeError, "command[%zd] must be str, bytes or os.PathLike, not %.100s",
				     i, Py_TYPE(item)->tp_name);
			goto fail;
		}
		if (i == 0 && PyBytes_GET_SIZE(b) == 0) {
			Py_DECREF(b);
			PyErr_SetString(PyExc_ValueError, "command[0] (the program) must not be empty");
			goto fail;
		}
		PyList_SET_ITEM(out->keep, i, b);
	}
	Py_DECREF(seq);
	return out->keep ? strvec_finish(out) : -1;
fail:
	Py_DECREF(seq);
	strvec_clear(out);
	return -1;
}

/* env: iterable of (name, value) pairs, or a dict -> "NAME=VALUE" vector. Loader variables are
 * refused here with a ValueError naming them (the library refuses them too: belt and braces). */
static int env_to_vec(PyObject *env, strvec *out)
{
	PyObject *it = NULL, *item, *items = NULL;
	out->keep = PyList_New(0);
	if (!out->keep)
		return -1;
	if (env == Py_None)
		return strvec_finish(out);
	if (PyUnicode_Check(env) || PyBytes_Check(env)) {
		PyErr_SetString(PyExc_TypeError, "env must be a list of (name, value) pairs");
		goto fail;
	}
	if (PyDict_Check(env) && !(env = items = PyDict_Items(env)))
		goto fail;
	it = PyObject_GetIter(env);
	Py_XDECREF(items);
	if (!it)
		goto fail;
	while ((item = PyIter_Next(it))) {
		PyObject *name = NULL, *value = NULL, *entry = NULL;
		PyObject *pair = PyTuple_Check(item) || PyList_Check(item) ? PySequence_Tuple(item) : NULL;
		Py_DECREF(item);
		if (!pair || PyTuple_GET_SIZE(pair) != 2) {
			Py_XDECREF(pair);
			PyErr_Clear();
			PyErr_SetString(PyExc_TypeError, "env entries must be (name, value) pairs");
			goto fail;
		}
		int ok = PyUnicode_FSConverter(PyTuple_GET_ITEM(pair, 0), &name) &&
			 PyUnicode_FSConverter(PyTuple_GET_ITEM(pair, 1), &value);
		Py_DECREF(pair);
		if (!ok) {
			Py_XDECREF(name);
			goto fail;
		}
		const char *n = PyBytes_AS_STRING(name);
		if (n[0] == '\0' || strchr(n, '=')) {
			PyErr_Format(PyExc_ValueError, "invalid environment variable name %R", name);
		} else if (nono_env_name_is_loader(n)) {
			PyErr_Format(PyExc_ValueError,
				     "%s: loader-control variables (LD_*, DYLD_*) are not allowed in env", n);
		} else {
			entry = PyBytes_FromFormat("%s=%s", n, PyBytes_AS_STRING(value));
		}
		Py_DECREF(name);
		Py_DECREF(value);
		if (!entry || PyList_Append(out->keep, entry) < 0) {
			Py_XDECREF(entry);
			goto fail;
		}
		Py_DECREF(entry);
	}
	if (PyErr_Occurred())
		goto fail;
	Py_DECREF(it);
	return strvec_finish(out);
fail:
	Py_XDECREF(it);
	strvec_clear(out);
	return -1;
}

int nono_py_env_vec(PyObject *env, PyObject **keep, const char ***vec)
{
	strvec s = {0};
	if (env_to_vec(env, &s) < 0)
		return -1;
	*keep = s.keep;
	*vec = s.v;
	return 0;
}

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
		PyErr_SetString(PyExc_ValueError, "timeout_secs must be >= 0 (or None for no timeout)");
		return -1;
	}
	*out = isinf(t) ? 0 : t; /* 0 = none, as in nono_exec_opts */
	return 0;
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

/* Supervisor decisions kept per sandboxed_exec (the oldest are dropped and counted beyond this). */
#define EXEC_AUDIT_CAP 256

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
		text(r->report.text),
		events,
		PyLong_FromUnsignedLongLong(audit ? nono_audit_dropped(audit) : 0),
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		if (!v[i])
			bad = 1;
		PyStructSequence_SetItem(res, (Py_ssize_t)i, v[i]); /* steals; NULL allowed on error */
	}
	if (!bad && audit) {
		nono_audit_event ev[32];
		size_t n;
		while (!bad && (n = nono_audit_drain(audit, ev, 32)) > 0)
			bad = nono_py_events_extend(events, ev, n) < 0;
	}
	if (bad) {
		Py_DECREF(res);
		return NULL;
	}
	return res;
}

static PyObject *py_sandboxed_exec(PyObject *module, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"caps", "command", "cwd", "timeout_secs", "env", "inherit_env", NULL};
	nono_py_state *st = PyModule_GetState(module);
	PyObject *caps_obj, *command, *cwd = NULL, *timeout_obj = Py_None, *env = Py_None, *res = NULL;
	int inherit = 0;
	double timeout;
	strvec argv = {0}, envv = {0};
	nono_py_proxy *proxy;
	char **merged = NULL;
	nono_caps *clone = NULL;
	nono_audit *audit = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|O&OOp:sandboxed_exec", kwlist, st->caps_type,
					 &caps_obj, &command, nono_py_path_conv, &cwd, &timeout_obj,
					 &env, &inherit))
		return NULL;
	nono_py_caps *c = (nono_py_caps *)caps_obj;
	if (parse_timeout(timeout_obj, &timeout) < 0 || command_to_argv(command, &argv) < 0 ||
	    env_to_vec(env, &envv) < 0 || check_proxy(c, &proxy) < 0)
		goto out;

	nono_error err = {0};
	int rc;
	if (proxy) {
		/* The proxy's own variables (with its session token) are merged in and win over `env`;
		 * they come from the handle, never from os.environ. */
		rc = nono_proxy_env(proxy->proxy, envv.v, &merged, &err);
		if (rc < 0) {
			nono_py_raise(rc, &err);
			goto out;
		}
	}
	clone = nono_caps_clone(c->caps); /* the caller may mutate `caps` while the GIL is released */
	if (!clone) {
		PyErr_NoMemory();
		goto out;
	}
	if (nono_caps_network(clone, NULL) != NONO_NET_ALLOWED && !(audit = nono_audit_new(EXEC_AUDIT_CAP))) {
		PyErr_NoMemory();
		goto out;
	}

	nono_exec_opts opts;
	nono_exec_opts_init(&opts);
	opts.cwd = cwd ? PyBytes_AS_STRING(cwd) : NULL;
	opts.env = merged ? (const char *const *)merged : envv.v;
	opts.inherit_env = inherit;
	opts.timeout_secs = timeout;
	opts.capture = true;
	opts.audit = audit;
	nono_exec_result r;
	memset(&r, 0, sizeof r);
	Py_BEGIN_ALLOW_THREADS
	rc = nono_exec(clone, argv.v, &opts, &r, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		nono_py_raise(rc, &err);
	else
		res = build_exec_result(st, &r, audit);
	nono_exec_result_free(&r);
out:
	nono_audit_free(audit);
	nono_caps_free(clone);
	nono_strv_free(merged);
	strvec_clear(&argv);
	strvec_clear(&envv);
	Py_XDECREF(cwd);
	return res;
}

/* ------------------------------------------------------------------------------------------------
 * apply, is_supported, support_info
 * ---------------------------------------------------------------------------------------------- */

static PyObject *py_apply(PyObject *module, PyObject *arg)
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

static bool supported(const nono_support *s)
{
	/* Filesystem grants need Landlock; every network mode and the loader/arch checks need seccomp. */
	return s->landlock_fs && s->seccomp_filter;
}

/* The probe forks short-lived children and waits for them: not under the GIL. */
static void support_query(nono_support *s)
{
	Py_BEGIN_ALLOW_THREADS
	nono_support_query(s);
	Py_END_ALLOW_THREADS
}

static PyObject *py_is_supported(PyObject *module, PyObject *unused)
{
	(void)module;
	(void)unused;
	nono_support s;
	support_query(&s);
	return PyBool_FromLong(supported(&s));
}

static PyObject *py_support_info(PyObject *module, PyObject *unused)
{
	(void)unused;
	nono_py_state *st = PyModule_GetState(module);
	nono_support s;
	support_query(&s);
	char *details = nono_support_text(&s);
	if (!details)
		return PyErr_NoMemory();
	PyObject *res = PyStructSequence_New(st->support_type);
	if (!res) {
		free(details);
		return NULL;
	}
	PyObject *v[] = {
		PyBool_FromLong(supported(&s)),
		PyUnicode_FromString("linux"),
		text(details),
		text(s.kernel_release),
		PyLong_FromLong(s.landlock_abi),
		PyLong_FromLong(s.landlock_abi_kernel),
		PyLong_FromLong(s.landlock_abi_cap),
		PyBool_FromLong(s.landlock_fs),
		PyBool_FromLong(s.landlock_refer),
		PyBool_FromLong(s.landlock_truncate),
		PyBool_FromLong(s.landlock_tcp),
		PyBool_FromLong(s.landlock_ioctl_dev),
		PyBool_FromLong(s.landlock_scopes),
		PyBool_FromLong(s.landlock_log_flags),
		PyBool_FromLong(s.seccomp_filter),
		PyBool_FromLong(s.seccomp_user_notif),
		PyBool_FromLong(s.pidfd_getfd),
		PyBool_FromLong(s.wait_killable_recv),
		PyBool_FromLong(s.sync_wakeup),
		PyBool_FromLong(s.x86_64),
	};
	free(details);
	int bad = 0;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		bad |= !v[i];
		PyStructSequence_SetItem(res, (Py_ssize_t)i, v[i]);
	}
	if (bad)
		Py_CLEAR(res);
	return res;
}

static PyObject *py_start_proxy(PyObject *module, PyObject *cfg)
{
	return nono_py_start_proxy(module, cfg);
}

/* ------------------------------------------------------------------------------------------------
 * Result types (struct sequences: tuple-like, with named fields)
 * ---------------------------------------------------------------------------------------------- */

static PyStructSequence_Field exec_result_fields[] = {
	{"exit_code", "exit status; 124 on timeout; -signo when killed by a signal"},
	{"stdout", "captured standard output (bytes)"},
	{"stderr", "captured standard error (bytes)"},
	{"timed_out", "True when the timeout killed the command"},
	{"term_signal", "signal that ended the command, 0 if it exited"},
	{"enforcement", "what the kernel enforced, one line a layer"},
	{"audit_events", "network supervisor decisions during the run (list of dicts)"},
	{"audit_dropped", "supervisor decisions dropped because more than 256 were recorded"},
	{NULL, NULL},
};
static PyStructSequence_Desc exec_result_desc = {
	"nono_py.ExecResult", "Result of sandboxed_exec(): (exit_code, stdout, stderr) + details.",
	exec_result_fields, 3,
};

static PyStructSequence_Field fs_cap_fields[] = {
	{"original", "the path as given"},
	{"resolved", "canonical absolute path"},
	{"access", "AccessMode"},
	{"is_file", "True for a single-file grant"},
	{NULL, NULL},
};
static PyStructSequence_Desc fs_cap_desc = {
	"nono_py.FsCapability", "One filesystem grant of a CapabilitySet.", fs_cap_fields, 4,
};

static PyStructSequence_Field support_fields[] = {
	{"is_supported", "this kernel can enforce filesystem grants and network modes"},
	{"platform", "operating system"},
	{"details", "human-readable report"},
	{"kernel_release", NULL},
	{"landlock_abi", "Landlock ABI the library uses (kernel ABI, capped)"},
	{"landlock_abi_kernel", NULL},
	{"landlock_abi_cap", "0 = no cap"},
	{"landlock_fs", NULL},
	{"landlock_refer", NULL},
	{"landlock_truncate", NULL},
	{"landlock_tcp", NULL},
	{"landlock_ioctl_dev", NULL},
	{"landlock_scopes", NULL},
	{"landlock_log_flags", NULL},
	{"seccomp_filter", NULL},
	{"seccomp_user_notif", NULL},
	{"pidfd_getfd", NULL},
	{"wait_killable_recv", NULL},
	{"sync_wakeup", NULL},
	{"x86_64", NULL},
	{NULL, NULL},
};
static PyStructSequence_Desc support_desc = {
	"nono_py.SupportInfo", "What this kernel can enforce (support_info()).", support_fields, 3,
};

/* ------------------------------------------------------------------------------------------------
 * Module definition (PEP 489 multi-phase init)
 * ---------------------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
	{"sandboxed_exec", (PyCFunction)(void (*)(void))py_sandboxed_exec, METH_VARARGS | METH_KEYWORDS,
	 "sandboxed_exec(caps, command, cwd=None, timeout_secs=None, env=None, inherit_env=False)\n--\n\n"
	 "Run command under caps and return ExecResult(exit_code, stdout, stderr).\n\n"
	 "The environment is empty unless inherit_env (loader variables are never passed); env is a\n"
	 "list of (name, value) pairs or a dict. When caps is proxy-only through a proxy handle, the\n"
	 "proxy's variables are added and win. exit_code is 124 on timeout, -signo on a signal."},
	{"apply", py_apply, METH_O, "apply(caps)\n--\n\nSandbox this process, irreversibly."},
	{"is_supported", py_is_supported, METH_NOARGS, "is_supported()\n--\n\n"},
	{"support_info", py_support_info, METH_NOARGS, "support_info()\n--\n\n"},
	{"_start_proxy", py_start_proxy, METH_O, "_start_proxy(native_config)\n--\n\n"},
	{NULL, NULL, 0, NULL},
};

static int add_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot)
{
	*slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, NULL);
	return *slot ? PyModule_AddType(m, *slot) : -1;
}

static int add_structseq(PyObject *m, PyStructSequence_Desc *desc, PyTypeObject **slot)
{
	*slot = PyStructSequence_NewType(desc);
	return *slot ? PyModule_AddType(m, *slot) : -1;
}

static int make_access_mode(PyObject *m, nono_py_state *st)
{
	PyObject *mod = PyImport_ImportModule("enum");
	if (!mod)
		return -1;
	PyObject *intenum = PyObject_GetAttrString(mod, "IntEnum");
	Py_DECREF(mod);
	if (!intenum)
		return -1;
	PyObject *args = Py_BuildValue("(s[(si)(si)(si)])", "AccessMode", "READ", NONO_ACCESS_READ,
				       "WRITE", NONO_ACCESS_WRITE, "READ_WRITE", NONO_ACCESS_READ_WRITE);
	PyObject *kw = Py_BuildValue("{ss}", "module", "nono_py");
	if (args && kw)
		st->access_mode = PyObject_Call(intenum, args, kw);
	Py_XDECREF(args);
	Py_XDECREF(kw);
	Py_DECREF(intenum);
	if (!st->access_mode)
		return -1;
	for (long v = NONO_ACCESS_READ; v <= NONO_ACCESS_READ_WRITE; v++) {
		PyObject *n = PyLong_FromLong(v);
		st->access_member[v] = n ? PyObject_CallOneArg(st->access_mode, n) : NULL;
		Py_XDECREF(n);
		if (!st->access_member[v])
			return -1;
	}
	return PyModule_AddObjectRef(m, "AccessMode", st->access_mode);
}

static int module_exec(PyObject *m)
{
	nono_py_state *st = PyModule_GetState(m);
	if (add_type(m, &nono_py_caps_spec, &st->caps_type) < 0 ||
	    add_type(m, &nono_py_query_spec, &st->query_type) < 0 ||
	    add_type(m, &nono_py_state_spec, &st->state_type) < 0 ||
	    add_type(m, &nono_py_proxy_cfg_spec, &st->proxy_cfg_type) < 0 ||
	    add_type(m, &nono_py_proxy_spec, &st->proxy_type) < 0 ||
	    add_structseq(m, &exec_result_desc, &st->exec_result_type) < 0 ||
	    add_structseq(m, &fs_cap_desc, &st->fs_cap_type) < 0 ||
	    add_structseq(m, &support_desc, &st->support_type) < 0 || make_access_mode(m, st) < 0)
		return -1;
	return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
	nono_py_state *st = PyModule_GetState(m);
	if (!st)
		return 0;
	Py_VISIT(st->caps_type);
	Py_VISIT(st->query_type);
	Py_VISIT(st->state_type);
	Py_VISIT(st->proxy_cfg_type);
	Py_VISIT(st->proxy_type);
	Py_VISIT(st->exec_result_type);
	Py_VISIT(st->fs_cap_type);
	Py_VISIT(st->support_type);
	Py_VISIT(st->access_mode);
	for (int i = 0; i < 4; i++)
		Py_VISIT(st->access_member[i]);
	return 0;
}

static int module_clear(PyObject *m)
{
	nono_py_state *st = PyModule_GetState(m);
	if (!st)
		return 0;
	Py_CLEAR(st->caps_type);
	Py_CLEAR(st->query_type);
	Py_CLEAR(st->state_type);
	Py_CLEAR(st->proxy_cfg_type);
	Py_CLEAR(st->proxy_type);
	Py_CLEAR(st->exec_result_type);
	Py_CLEAR(st->fs_cap_type);
	Py_CLEAR(st->support_type);
	Py_CLEAR(st->access_mode);
	for (int i = 0; i < 4; i++)
		Py_CLEAR(st->access_member[i]);
	return 0;
}

static void module_free(void *m)
{
	module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
	{Py_mod_exec, (void *)module_exec},
	{0, NULL},
};

PyModuleDef nono_py_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "nono_py._nono",
	.m_doc = "C extension over libnono (use the nono_py package).",
	.m_size = sizeof(nono_py_state),
	.m_methods = module_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__nono(void)
{
	return PyModuleDef_Init(&nono_py_module);
}
