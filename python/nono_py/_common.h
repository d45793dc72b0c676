/* _common.h — the bottom layer of the nono_py extension: module state, error conversion, text and
 * argument helpers, audit events as dicts. It depends on Python.h and the public nono.h only, and
 * nothing here calls into another file of the extension.
 *
 * The files stack without a circle (each includes only headers below it):
 *   _common.c                     this layer
 *   _proxy.c  (_proxy.h)          _ProxyConfig, ProxyHandle, start_proxy
 *   _caps.c   (_caps.h)           CapabilitySet, QueryContext, AccessMode
 *   _sandbox_state.c (_caps.h)    SandboxState
 *   _exec.c   (_exec.h)           sandboxed_exec, apply
 *   _policy.c (_policy.h)         Policy, ResolvedPolicy, load_policy, ... (over _caps.h)
 *   _snapshot.c (_snapshot.h)     _SnapshotStore (SnapshotManager's native half; classes: _undo.py)
 *   _ledger.c (_snapshot.h)       _Ledger (the session ledger; record_exec: _undo.py)
 *   _nono.c                       the module: support_info, is_supported, init
 *
 * The extension is written over the public libnono API only (nono.h). It uses multi-phase init
 * (PEP 489), heap types created per module object (PEP 573 module state; no static PyObject
 * globals), and releases the GIL around every call that may block (nono_exec, nono_apply,
 * nono_proxy_start/stop, nono_support_query). */
#ifndef NONO_PY_COMMON_H
#define NONO_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "nono.h"

/* The library's macro lives in its private internal.h, which the binding does not include (it
 * builds over nono.h alone): the same definition under the same name. */
#ifndef N_ELEMENTS
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* Everything the module object owns. Filled in by _nono.c's module_exec. */
typedef struct {
	PyTypeObject *caps_type;         /* CapabilitySet */
	PyTypeObject *query_type;        /* QueryContext */
	PyTypeObject *state_type;        /* SandboxState */
	PyTypeObject *proxy_cfg_type;    /* _ProxyConfig (native half of nono_py.ProxyConfig) */
	PyTypeObject *proxy_type;        /* ProxyHandle */
	PyTypeObject *exec_result_type;  /* ExecResult (struct sequence) */
	PyTypeObject *fs_cap_type;       /* FsCapability (struct sequence) */
	PyTypeObject *support_type;      /* SupportInfo (struct sequence) */
	PyTypeObject *policy_type;       /* Policy (_policy.c) */
	PyTypeObject *resolved_type;     /* ResolvedPolicy (_policy.c) */
	PyTypeObject *snap_type;         /* _SnapshotStore (native half of SnapshotManager) */
	PyTypeObject *ledger_type;       /* _Ledger (native half of record_exec) */
	PyObject *access_mode;           /* AccessMode, an enum.IntEnum class */
	PyObject *access_member[4];      /* its members by value (1..3), cached: enum lookups are slow */
} nono_py_state;

/* Module state for an instance's type, or a class in a classmethod: any type created from this
 * module's specs (none of them can be subclassed). NULL with TypeError otherwise. */
nono_py_state *nono_py_state_of(PyTypeObject *tp);

/* Free the instance, then drop the reference a heap type's instance holds on its type. The last
 * statement of every tp_dealloc here, after the wrapped object is freed. */
#define NONO_PY_DEALLOC(self)                     \
	do {                                      \
		PyTypeObject *tp_ = Py_TYPE(self);  \
		tp_->tp_free((PyObject *)(self));   \
		Py_DECREF(tp_);                     \
	} while (0)

/* Library text as str. It is UTF-8 by convention but may embed arbitrary path bytes: those become
 * backslash escapes, so a decoding error never replaces the real one. */
PyObject *nono_py_text(const char *s);

/* Raise the Python exception for a libnono failure `rc` (negative errno) and return NULL:
 * -ENOENT FileNotFoundError, -EACCES/-EPERM PermissionError, -EINVAL/-ENOTDIR/-EISDIR ValueError,
 * -ENOMEM MemoryError, anything else RuntimeError (with .errno). The library's message is the
 * exception's text, unchanged: a refusal reads the same from the CLI, the C API and Python. */
PyObject *nono_py_raise(int rc, const nono_error *err);

/* PyArg "O&" converter: str/bytes/os.PathLike to a non-empty bytes object (embedded NUL ->
 * ValueError). Same contract as PyUnicode_FSConverter (a cleanup call with NULL is supported). */
int nono_py_path_conv(PyObject *obj, void *out);

/* A NULL-terminated char* vector pointing into a list of bytes objects that keeps them alive. */
typedef struct {
	PyObject *keep; /* list of bytes */
	const char **v;
} nono_py_strvec;

void nono_py_strvec_clear(nono_py_strvec *s);
/* Remove the variables the proxy sets (nono_proxy_env_names) from an env vector, in place:
 * nono-py's contract is that a proxy handle's values win over the caller's (sandbox_env's
 * extra_env, sandboxed_exec's env under proxy_only), where the library itself would refuse a
 * differing value. */
void nono_py_strvec_drop_proxy_vars(nono_py_strvec *s);

/* env (None, a dict, or an iterable of (name, value) pairs) -> "NAME=VALUE" vector. Shapes are
 * checked here (TypeError), and names that cannot be written as NAME=VALUE (empty, or with '=')
 * are a ValueError; which variables are refused (loader control) is the library's rule, applied
 * where the vector is used. Returns 0 or -1 with an exception set (`out` cleared). */
int nono_py_env_vec(PyObject *env, nono_py_strvec *out);

/* Append `n` audit events to `list` as dicts. Returns 0 or -1 (exception set). */
int nono_py_events_extend(PyObject *list, const nono_audit_event *ev, size_t n);

#endif /* NONO_PY_COMMON_H */
