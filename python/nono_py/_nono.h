/* _nono.h — shared between the files of the nono_py extension (_nono.c, _caps.c, _proxy.c).
 *
 * The extension is written over the public libnono API only (nono.h). It uses multi-phase init
 * (PEP 489), heap types created per module object (PEP 573 module state; no static PyObject
 * globals), and releases the GIL around every call that may block (nono_exec, nono_apply,
 * nono_proxy_start/stop). */
#ifndef NONO_PY_H
#define NONO_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "nono.h"

/* Everything the module object owns. Reached from a type with nono_py_state_of(). */
typedef struct {
	PyTypeObject *caps_type;         /* CapabilitySet */
	PyTypeObject *query_type;        /* QueryContext */
	PyTypeObject *state_type;        /* SandboxState */
	PyTypeObject *proxy_cfg_type;    /* _ProxyConfig (native half of nono_py.ProxyConfig) */
	PyTypeObject *proxy_type;        /* ProxyHandle */
	PyTypeObject *exec_result_type;  /* ExecResult (struct sequence) */
	PyTypeObject *fs_cap_type;       /* FsCapability (struct sequence) */
	PyTypeObject *support_type;      /* SupportInfo (struct sequence) */
	PyObject *access_mode;           /* AccessMode, an enum.IntEnum class */
	PyObject *access_member[4];      /* its members by value (1..3), cached: enum lookups are slow */
} nono_py_state;

extern PyModuleDef nono_py_module;

/* Module state for an object of a type defined by this module (walks the MRO). */
nono_py_state *nono_py_state_of(PyTypeObject *tp);

/* Raise the Python exception for a libnono failure `rc` (negative errno) and return NULL:
 * -ENOENT FileNotFoundError, -EACCES/-EPERM PermissionError, -EINVAL/-ENOTDIR/-EISDIR ValueError,
 * -ENOMEM MemoryError, anything else RuntimeError. The library's message is carried along. */
PyObject *nono_py_raise(int rc, const nono_error *err);

/* PyArg "O&" converter: str/bytes/os.PathLike to a bytes object (embedded NUL -> ValueError).
 * Same contract as PyUnicode_FSConverter (a cleanup call with NULL is supported). */
int nono_py_path_conv(PyObject *obj, void *out);

/* "O&" converter: an AccessMode member to nono_access (TypeError for anything else). */
typedef struct {
	nono_py_state *st;
	nono_access access;
} nono_py_access_arg;
int nono_py_access_conv(PyObject *obj, void *out);

/* An AccessMode member for `a` (new reference). */
PyObject *nono_py_access_obj(nono_py_state *st, nono_access a);

/* env (None, a dict, or an iterable of (name, value) pairs) -> NULL-terminated "NAME=VALUE"
 * vector in *vec (PyMem_Free it) pointing into *keep (a list to DECREF). Loader variables and bad
 * names -> ValueError. Returns 0 or -1 with an exception set. */
int nono_py_env_vec(PyObject *env, PyObject **keep, const char ***vec);

/* ---- _caps.c ---- */
typedef struct {
	PyObject_HEAD
	nono_caps *caps;
	PyObject *proxy; /* ProxyHandle set by proxy_only(), or NULL */
} nono_py_caps;

extern PyType_Spec nono_py_caps_spec;
extern PyType_Spec nono_py_query_spec;
extern PyType_Spec nono_py_state_spec;

/* ---- _proxy.c ---- */
typedef struct {
	PyObject_HEAD
	nono_proxy *proxy;  /* NULL once shut down */
	uint16_t port;
	PyObject *pending;  /* events drained at shutdown (list) or NULL */
} nono_py_proxy;

extern PyType_Spec nono_py_proxy_cfg_spec;
extern PyType_Spec nono_py_proxy_spec;
PyObject *nono_py_start_proxy(PyObject *module, PyObject *cfg);

/* Convert `n` audit events to a list of dicts, appended to `list`. Returns 0 or -1 (exception). */
int nono_py_events_extend(PyObject *list, const nono_audit_event *ev, size_t n);

#endif /* NONO_PY_H */
