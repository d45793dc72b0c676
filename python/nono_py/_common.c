/* _common.c — the bottom layer of nono_py._nono (see _common.h): module state lookup, error
 * conversion, text and argument helpers, audit events as dicts. */
#include "_common.h"

#include <errno.h>
#include <string.h>

nono_py_state *nono_py_state_of(PyTypeObject *tp)
{
	/* Every type that asks was made by PyType_FromModuleAndSpec and none is subclassable, so the
	 * type's own module is the one: no walk of the MRO, and no reference to the module's
	 * definition (which lives in _nono.c, above this file). */
	return PyType_GetModuleState(tp);
}

PyObject *nono_py_text(const char *s)
{
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "backslashreplace");
}

static PyObject *exception_type(int code)
{
	switch (code) {
	case ENOENT:
		return PyExc_FileNotFoundError;
	case EACCES:
	case EPERM:
		return PyExc_PermissionError;
	case EINVAL:
	case ENOTDIR:
	case EISDIR:
		return PyExc_ValueError;
	default:
		return PyExc_RuntimeError;
	}
}

PyObject *nono_py_raise(int rc, const nono_error *err)
{
	int code = rc < 0 ? -rc : rc;
	if (code == ENOMEM)
		return PyErr_NoMemory();
	const char *msg = (err && err->message[0]) ? err->message : strerror(code);
	PyObject *exc = exception_type(code), *args, *inst;
	PyObject *m = nono_py_text(msg);
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

/* ------------------------------------------------------------------------------------------------
 * String vectors and the environment
 * ---------------------------------------------------------------------------------------------- */

void nono_py_strvec_clear(nono_py_strvec *s)
{
	Py_CLEAR(s->keep);
	PyMem_Free(s->v);
	s->v = NULL;
}

void nono_py_strvec_drop_proxy_vars(nono_py_strvec *s)
{
	const char *const *names = nono_proxy_env_names();
	size_t w = 0;
	for (size_t r = 0; s->v && s->v[r]; r++) {
		size_t n = strcspn(s->v[r], "=");
		bool proxy = false;
		for (size_t j = 0; names[j] && !proxy; j++)
			proxy = strlen(names[j]) == n && !memcmp(s->v[r], names[j], n);
		if (!proxy)
			s->v[w++] = s->v[r];
	}
	if (s->v)
		s->v[w] = NULL;
}

/* Point s->v at the bytes in s->keep, NULL-terminated. */
static int strvec_finish(nono_py_strvec *s)
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

/* One (name, value) pair -> b"NAME=VALUE" (new reference), or NULL with an exception set. */
static PyObject *env_entry(PyObject *item)
{
	PyObject *name = NULL, *value = NULL, *entry = NULL;
	PyObject *pair = PyTuple_Check(item) || PyList_Check(item) ? PySequence_Tuple(item) : NULL;
	if (!pair || PyTuple_GET_SIZE(pair) != 2) {
		Py_XDECREF(pair);
		PyErr_Clear();
		PyErr_SetString(PyExc_TypeError, "env entries must be (name, value) pairs");
		return NULL;
	}
	int ok = PyUnicode_FSConverter(PyTuple_GET_ITEM(pair, 0), &name) &&
		 PyUnicode_FSConverter(PyTuple_GET_ITEM(pair, 1), &value);
	Py_DECREF(pair);
	if (ok) {
		/* A name with '=' would silently become another variable: refused before joining. */
		const char *n = PyBytes_AS_STRING(name);
		if (n[0] == '\0' || strchr(n, '='))
			PyErr_Format(PyExc_ValueError, "invalid environment variable name %R", name);
		else
			entry = PyBytes_FromFormat("%s=%s", n, PyBytes_AS_STRING(value));
	}
	Py_XDECREF(name);
	Py_XDECREF(value);
	return entry;
}

/* Append every pair of the iterable `env` to out->keep. */
static int env_fill(PyObject *env, nono_py_strvec *out)
{
	PyObject *items = NULL, *it, *item;
	if (PyDict_Check(env) && !(env = items = PyDict_Items(env)))
		return -1;
	it = PyObject_GetIter(env);
	Py_XDECREF(items);
	if (!it)
		return -1;
	while ((item = PyIter_Next(it))) {
		PyObject *entry = env_entry(item);
		Py_DECREF(item);
		if (!entry || PyList_Append(out->keep, entry) < 0) {
			Py_XDECREF(entry);
			Py_DECREF(it);
			return -1;
		}
		Py_DECREF(entry);
	}
	Py_DECREF(it);
	return PyErr_Occurred() ? -1 : 0;
}

int nono_py_env_vec(PyObject *env, nono_py_strvec *out)
{
	out->v = NULL;
	out->keep = PyList_New(0);
	if (!out->keep)
		return -1;
	if (PyUnicode_Check(env) || PyBytes_Check(env)) {
		PyErr_SetString(PyExc_TypeError, "env must be a list of (name, value) pairs");
		goto fail;
	}
	if (env != Py_None && env_fill(env, out) < 0)
		goto fail;
	if (strvec_finish(out) == 0)
		return 0;
fail:
	nono_py_strvec_clear(out);
	return -1;
}

/* ------------------------------------------------------------------------------------------------
 * Audit events
 * ---------------------------------------------------------------------------------------------- */

static PyObject *str_or_none(const char *s, size_t size)
{
	if (!s[0])
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strnlen(s, size), "backslashreplace");
}

#define FIELD(e, f) str_or_none((e)->f, sizeof (e)->f)

static PyObject *event_dict_base(const nono_audit_event *e);

/* The credential-route fields (nono-py's NetworkAuditEvent), on routed events only. */
static int route_fields(PyObject *d, const nono_audit_event *e)
{
	PyObject *r = Py_BuildValue("{s:N,s:N,s:N,s:N,s:O,s:N,s:N}", "route_id", FIELD(e, route_id),
				    "injection_mode", FIELD(e, injection_mode), "auth_mechanism",
				    FIELD(e, auth_mechanism), "auth_outcome", FIELD(e, auth_outcome),
				    "managed_credential_active", e->managed_credential_active ? Py_True : Py_False,
				    "endpoint_decision", FIELD(e, endpoint_decision), "denial_category",
				    FIELD(e, denial_category));
	int rc = r ? PyDict_Update(d, r) : -1;
	Py_XDECREF(r);
	return rc;
}

static PyObject *event_dict(const nono_audit_event *e)
{
	PyObject *d = event_dict_base(e);
	if (d && e->route_id[0] && route_fields(d, e) < 0)
		Py_CLEAR(d);
	return d;
}

static PyObject *event_dict_base(const nono_audit_event *e)
{
	return Py_BuildValue(
		"{s:N,s:N,s:N,s:N,s:N,s:i,s:N,s:N,s:i,s:N,s:L,s:K,s:K}",
		"decision", FIELD(e, decision), "source", FIELD(e, source), "mode", FIELD(e, mode),
		"family", FIELD(e, family), "target", FIELD(e, target), "port", (int)e->port,
		"method", FIELD(e, method), "path", FIELD(e, path), "status", e->status,
		"reason", FIELD(e, reason), "timestamp_unix_ms", (long long)e->timestamp_unix_ms,
		"bytes_up", (unsigned long long)e->bytes_up,
		"bytes_down", (unsigned long long)e->bytes_down);
}

int nono_py_events_extend(PyObject *list, const nono_audit_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		PyObject *d = event_dict(&ev[i]);
		if (!d || PyList_Append(list, d) < 0) {
			Py_XDECREF(d);
			return -1;
		}
		Py_DECREF(d);
	}
	return 0;
}
