/* _ledger.c — _Ledger: the native half of nono_py's session ledger (record_exec in _undo.py) over
 * libnono's nono_ledger_*. Depends on _common.h only. */
#include "_snapshot.h"

#include <errno.h>

typedef struct {
	PyObject_HEAD
	nono_ledger *ledger;
	bool finished;
} nono_py_ledger;

static PyObject *ledger_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", NULL};
	PyObject *path = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, nono_py_path_conv, &path))
		return NULL;
	nono_ledger *l = NULL;
	nono_error err = {0};
	int rc = nono_ledger_create(PyBytes_AS_STRING(path), &l, &err);
	Py_DECREF(path);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	nono_py_ledger *self = (nono_py_ledger *)type->tp_alloc(type, 0);
	if (!self) {
		nono_ledger_free(l);
		return NULL;
	}
	self->ledger = l;
	return (PyObject *)self;
}

static void ledger_dealloc(nono_py_ledger *self)
{
	nono_ledger_free(self->ledger);
	NONO_PY_DEALLOC(self);
}

/* append(kind, data_json) */
static PyObject *ledger_append(nono_py_ledger *self, PyObject *args)
{
	const char *kind, *data;
	if (!PyArg_ParseTuple(args, "ss:append", &kind, &data))
		return NULL;
	if (self->finished) {
		PyErr_SetString(PyExc_ValueError, "the ledger is finished");
		return NULL;
	}
	nono_error err = {0};
	int rc = nono_ledger_append(self->ledger, kind, data, &err);
	return rc < 0 ? nono_py_raise(rc, &err) : Py_NewRef(Py_None);
}

static PyObject *summary(const nono_ledger_summary *s)
{
	return Py_BuildValue("{s:K, s:O, s:s, s:s}", "records", (unsigned long long)s->records,
			     "finished", s->finished ? Py_True : Py_False, "chain_head", s->chain_head,
			     "merkle_root", s->merkle_root);
}

/* finish(data_json) -> summary dict */
static PyObject *ledger_finish(nono_py_ledger *self, PyObject *arg)
{
	const char *data = PyUnicode_AsUTF8(arg);
	if (!data)
		return NULL;
	if (self->finished) {
		PyErr_SetString(PyExc_ValueError, "the ledger is finished");
		return NULL;
	}
	nono_ledger_summary s;
	nono_error err = {0};
	int rc = nono_ledger_finish(self->ledger, data, &s, &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	self->finished = true;
	return summary(&s);
}

/* verify(path) -> summary dict; RuntimeError (errno EBADMSG) naming the first bad record. */
static PyObject *ledger_verify(PyObject *cls, PyObject *arg)
{
	(void)cls;
	PyObject *path = NULL;
	if (!nono_py_path_conv(arg, &path))
		return NULL;
	nono_ledger_summary s;
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_ledger_verify(PyBytes_AS_STRING(path), &s, &err);
	Py_END_ALLOW_THREADS
	Py_DECREF(path);
	return rc < 0 ? nono_py_raise(rc, &err) : summary(&s);
}

static PyMethodDef ledger_methods[] = {
	{"append", (PyCFunction)ledger_append, METH_VARARGS, NULL},
	{"finish", (PyCFunction)ledger_finish, METH_O, NULL},
	{"verify", (PyCFunction)ledger_verify, METH_O | METH_CLASS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot ledger_slots[] = {
	{Py_tp_new, ledger_new},
	{Py_tp_dealloc, ledger_dealloc},
	{Py_tp_methods, ledger_methods},
	{Py_tp_doc, "Native session ledger (use nono_py.record_exec / verify_ledger)."},
	{0, NULL},
};

PyType_Spec nono_py_ledger_spec = {
	.name = "nono_py._Ledger",
	.basicsize = sizeof(nono_py_ledger),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = ledger_slots,
};
