/* _nono.c — the nono_py._nono module: its definition and initialisation (PEP 489 multi-phase),
 * and the support probe (is_supported, support_info). The top of the extension: it includes every
 * other file's header, and nothing includes it (the layers are listed in _common.h). */
#include "_caps.h"
#include "_common.h"
#include "_exec.h"
#include "_policy.h"
#include "_proxy.h"
#include "_snapshot.h"

#include <stdlib.h>

PyMODINIT_FUNC PyInit__nono(void);

/* ------------------------------------------------------------------------------------------------
 * is_supported, support_info
 * ---------------------------------------------------------------------------------------------- */

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
		nono_py_text(details),
		nono_py_text(s.kernel_release),
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
	for (size_t i = 0; i < N_ELEMENTS(v); i++) {
		bad |= !v[i];
		PyStructSequence_SetItem(res, (Py_ssize_t)i, v[i]);
	}
	if (bad)
		Py_CLEAR(res);
	return res;
}

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
	{"sandboxed_exec", (PyCFunction)(void (*)(void))nono_py_sandboxed_exec, METH_VARARGS | METH_KEYWORDS,
	 "sandboxed_exec(caps, command, cwd=None, timeout_secs=None, env=None, inherit_env=False, *,\n"
	 "               audit_allowed=False)\n--\n\n"
	 "Run command under caps and return ExecResult(exit_code, stdout, stderr).\n\n"
	 "The environment is empty unless inherit_env (loader variables are never passed); env is a\n"
	 "list of (name, value) pairs or a dict. When caps is proxy-only through a proxy handle, the\n"
	 "proxy's variables are added (one of them in env is a ValueError: it would be overwritten).\n"
	 "exit_code is 124 on timeout, -signo on a signal.\n"
	 "audit_events holds the supervisor's denials, and its allowed calls too with audit_allowed."},
	{"apply", nono_py_apply, METH_O, "apply(caps)\n--\n\nSandbox this process, irreversibly."},
	{"is_supported", py_is_supported, METH_NOARGS, "is_supported()\n--\n\n"},
	{"support_info", py_support_info, METH_NOARGS, "support_info()\n--\n\n"},
	{"_start_proxy", nono_py_start_proxy, METH_O, "_start_proxy(native_config)\n--\n\n"},
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

static int module_exec(PyObject *m)
{
	nono_py_state *st = PyModule_GetState(m);
	if (add_type(m, &nono_py_caps_spec, &st->caps_type) < 0 ||
	    add_type(m, &nono_py_query_spec, &st->query_type) < 0 ||
	    add_type(m, &nono_py_state_spec, &st->state_type) < 0 ||
	    add_type(m, &nono_py_proxy_cfg_spec, &st->proxy_cfg_type) < 0 ||
	    add_type(m, &nono_py_proxy_spec, &st->proxy_type) < 0 ||
	    add_type(m, &nono_py_snap_spec, &st->snap_type) < 0 ||
	    add_type(m, &nono_py_ledger_spec, &st->ledger_type) < 0 ||
	    add_structseq(m, &nono_py_exec_result_desc, &st->exec_result_type) < 0 ||
	    add_structseq(m, &nono_py_fs_cap_desc, &st->fs_cap_type) < 0 ||
	    add_structseq(m, &support_desc, &st->support_type) < 0 || nono_py_access_mode_init(m, st) < 0)
		return -1;
	if (add_type(m, &nono_py_policy_spec, &st->policy_type) < 0 ||
	    add_type(m, &nono_py_resolved_spec, &st->resolved_type) < 0 ||
	    PyModule_AddFunctions(m, nono_py_policy_functions) < 0)
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
	Py_VISIT(st->policy_type);
	Py_VISIT(st->resolved_type);
	Py_VISIT(st->snap_type);
	Py_VISIT(st->ledger_type);
	Py_VISIT(st->access_mode);
	for (size_t i = 0; i < N_ELEMENTS(st->access_member); i++)
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
	Py_CLEAR(st->policy_type);
	Py_CLEAR(st->resolved_type);
	Py_CLEAR(st->snap_type);
	Py_CLEAR(st->ledger_type);
	Py_CLEAR(st->access_mode);
	for (size_t i = 0; i < N_ELEMENTS(st->access_member); i++)
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

static PyModuleDef nono_py_module = {
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
