/* _sandbox_state.c — SandboxState: a serialisable snapshot of a CapabilitySet (JSON through the
 * library's strict parser). Depends on _caps.h (and _common.h). */
#include "_caps.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------
 * SandboxState: a serialisable snapshot (JSON through the library's strict parser)
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	nono_caps *caps;
} nono_py_sstate;

static PyObject *sstate_wrap(PyTypeObject *type, nono_caps *caps)
{
	nono_py_sstate *o = (nono_py_sstate *)type->tp_alloc(type, 0);
	if (!o) {
		nono_caps_free(caps);
		return NULL;
	}
	o->caps = caps;
	return (PyObject *)o;
}

static void sstate_dealloc(nono_py_sstate *self)
{
	nono_caps_free(self->caps);
	NONO_PY_DEALLOC(self);
}

static PyObject *sstate_from_caps(PyObject *cls, PyObject *caps)
{
	nono_py_state *st = nono_py_state_of((PyTypeObject *)cls);
	if (!PyObject_TypeCheck(caps, st->caps_type)) {
		PyErr_Format(PyExc_TypeError, "from_caps() needs a CapabilitySet, not %.100s",
			     Py_TYPE(caps)->tp_name);
		return NULL;
	}
	nono_caps *c = nono_caps_clone(((nono_py_caps *)caps)->caps);
	if (!c)
		return PyErr_NoMemory();
	return sstate_wrap((PyTypeObject *)cls, c);
}

static PyObject *sstate_from_json(PyObject *cls, PyObject *arg)
{
	const char *s;
	Py_ssize_t len;
	if (PyUnicode_Check(arg)) {
		s = PyUnicode_AsUTF8AndSize(arg, &len);
		if (!s)
			return NULL;
	} else if (PyBytes_Check(arg)) {
		s = PyBytes_AS_STRING(arg);
		len = PyBytes_GET_SIZE(arg);
	} else {
		PyErr_Format(PyExc_TypeError, "from_json() needs str or bytes, not %.100s", Py_TYPE(arg)->tp_name);
		return NULL;
	}
	nono_error err = {0};
	nono_caps *c = nono_caps_from_json(s, (size_t)len, &err);
	if (!c)
		return nono_py_raise(err.code ? err.code : -EINVAL, &err);
	return sstate_wrap((PyTypeObject *)cls, c);
}

static PyObject *sstate_to_json(nono_py_sstate *self, PyObject *unused)
{
	(void)unused;
	nono_error err = {0};
	char *s = nono_caps_to_json(self->caps, &err);
	if (!s)
		return nono_py_raise(err.code ? err.code : -ENOMEM, &err);
	PyObject *r = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "strict");
	free(s);
	return r;
}

static PyObject *sstate_to_caps(nono_py_sstate *self, PyObject *unused)
{
	(void)unused;
	return nono_py_caps_wrap(nono_py_state_of(Py_TYPE(self)), nono_caps_clone(self->caps));
}

static PyMethodDef sstate_methods[] = {
	{"from_caps", sstate_from_caps, METH_O | METH_CLASS,
	 "from_caps(caps)\n--\n\nSnapshot a CapabilitySet."},
	{"from_json", sstate_from_json, METH_O | METH_CLASS,
	 "from_json(s)\n--\n\nParse and strictly validate a JSON capability set."},
	{"to_json", (PyCFunction)sstate_to_json, METH_NOARGS, "to_json()\n--\n\n"},
	{"to_caps", (PyCFunction)sstate_to_caps, METH_NOARGS,
	 "to_caps()\n--\n\nA new CapabilitySet (proxy-only keeps the port, not a proxy handle)."},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot sstate_slots[] = {
	{Py_tp_dealloc, sstate_dealloc},
	{Py_tp_methods, sstate_methods},
	{Py_tp_doc, "Serialisable capability set: SandboxState.from_caps(caps) / from_json(s)."},
	{0, NULL},
};

PyType_Spec nono_py_state_spec = {
	.name = "nono_py.SandboxState",
	.basicsize = sizeof(nono_py_sstate),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = sstate_slots,
};
