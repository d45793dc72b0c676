/* _snapshot.c — _SnapshotStore: the native half of nono_py.SnapshotManager (nono_snap_* of the
 * library). It returns plain tuples; the classes users see (SnapshotManager, SnapshotManifest,
 * FileState, Change, ContentHash, ExclusionConfig, SessionMetadata) are in _undo.py. Depends on
 * _common.h only. Every store operation runs without the GIL (it walks, hashes and copies). */
#include "_snapshot.h"

#include <errno.h>
#include <string.h>

typedef struct {
	PyObject_HEAD
	nono_snap *snap;
} nono_py_snap;

/* A sequence of str/PathLike -> NULL-terminated vector of filesystem-encoded bytes. */
static int strvec_from_seq(PyObject *seq, const char *what, nono_py_strvec *out)
{
	out->keep = PyList_New(0);
	out->v = NULL;
	if (!out->keep)
		return -1;
	PyObject *fast = seq == Py_None ? PyTuple_New(0) : PySequence_Fast(seq, what);
	if (!fast)
		goto fail;
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
		PyObject *b = NULL;
		if (!nono_py_path_conv(PySequence_Fast_GET_ITEM(fast, i), &b) ||
		    PyList_Append(out->keep, b) < 0) {
			Py_XDECREF(b);
			Py_DECREF(fast);
			goto fail;
		}
		Py_DECREF(b);
	}
	Py_DECREF(fast);
	Py_ssize_t n = PyList_GET_SIZE(out->keep);
	if (!(out->v = PyMem_Calloc((size_t)n + 1, sizeof(char *)))) {
		PyErr_NoMemory();
		goto fail;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		out->v[i] = PyBytes_AS_STRING(PyList_GET_ITEM(out->keep, i));
	return 0;
fail:
	nono_py_strvec_clear(out);
	return -1;
}

static PyObject *snap_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"session_dir", "tracked_paths", "use_defaults", "use_gitignore",
				 "exclude_patterns", "exclude_globs", "force_include", "max_entries",
				 "max_bytes", NULL};
	PyObject *dir = NULL, *tracked, *pats = Py_None, *globs = Py_None, *force = Py_None;
	int use_defaults = 1, use_gitignore = 0;
	unsigned long long max_entries = 0, max_bytes = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|ppOOOKK", kwlist, nono_py_path_conv, &dir,
					 &tracked, &use_defaults, &use_gitignore, &pats, &globs,
					 &force, &max_entries, &max_bytes))
		return NULL;
	nono_py_strvec tv = {0}, pv = {0}, gv = {0}, fv = {0};
	PyObject *res = NULL;
	if (strvec_from_seq(tracked, "tracked_paths must be a sequence", &tv) < 0 ||
	    strvec_from_seq(pats, "exclude_patterns must be a sequence", &pv) < 0 ||
	    strvec_from_seq(globs, "exclude_globs must be a sequence", &gv) < 0 ||
	    strvec_from_seq(force, "force_include must be a sequence", &fv) < 0)
		goto out;
	nono_snap_options o;
	nono_snap_options_init(&o);
	o.exclusion.use_defaults = use_defaults;
	o.exclusion.use_gitignore = use_gitignore;
	o.exclusion.exclude_patterns = pv.v;
	o.exclusion.exclude_globs = gv.v;
	o.exclusion.force_include = fv.v;
	o.max_entries = max_entries; /* 0: the library default (the Python layer refuses 0) */
	o.max_bytes = max_bytes;
	nono_snap *s = NULL;
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_snap_open(PyBytes_AS_STRING(dir), tv.v, (size_t)PyList_GET_SIZE(tv.keep), &o, &s, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		nono_py_raise(rc, &err);
		goto out;
	}
	nono_py_snap *self = (nono_py_snap *)type->tp_alloc(type, 0);
	if (!self) {
		nono_snap_free(s);
		goto out;
	}
	self->snap = s;
	res = (PyObject *)self;
out:
	Py_XDECREF(dir);
	nono_py_strvec_clear(&tv);
	nono_py_strvec_clear(&pv);
	nono_py_strvec_clear(&gv);
	nono_py_strvec_clear(&fv);
	return res;
}

static void snap_dealloc(nono_py_snap *self)
{
	nono_snap_free(self->snap);
	NONO_PY_DEALLOC(self);
}

static PyObject *hex_of(const uint8_t h[32])
{
	char hex[65];
	nono_sha256_hex(h, hex);
	return PyUnicode_FromString(hex);
}

/* (path, type, hash hex or None, size, mtime, mode, target or None) */
static PyObject *entry_tuple(const nono_snap_entry *e)
{
	return Py_BuildValue("(NC" "NKLIN)", nono_py_text(e->path), (int)e->type,
			     e->type == NONO_SNAP_DIR ? Py_NewRef(Py_None) : hex_of(e->hash),
			     (unsigned long long)e->size, (long long)e->mtime_sec, (unsigned)e->mode,
			     e->target ? nono_py_text(e->target) : Py_NewRef(Py_None));
}

/* (number, parent or None, timestamp, merkle hex, [entry tuples], [roots]); frees m. */
static PyObject *manifest_tuple(nono_snap_manifest *m)
{
	PyObject *entries = PyList_New((Py_ssize_t)m->n_entries), *roots = PyList_New(0), *res = NULL;
	for (size_t i = 0; entries && i < m->n_entries; i++) {
		PyObject *t = entry_tuple(&m->entries[i]);
		if (!t) {
			Py_CLEAR(entries);
			break;
		}
		PyList_SET_ITEM(entries, (Py_ssize_t)i, t);
	}
	for (size_t i = 0; roots && i < m->n_roots; i++) {
		PyObject *r = nono_py_text(m->roots[i]);
		if (!r || PyList_Append(roots, r) < 0)
			Py_CLEAR(roots);
		Py_XDECREF(r);
	}
	if (entries && roots)
		res = Py_BuildValue("(INsNOO)", m->number,
				    m->parent < 0 ? Py_NewRef(Py_None) : PyLong_FromLongLong(m->parent),
				    m->timestamp, hex_of(m->merkle_root), entries, roots);
	Py_XDECREF(entries);
	Py_XDECREF(roots);
	nono_snap_manifest_free(m);
	return res;
}

/* [(path, change type, entry type, size delta or None)]; frees c. */
static PyObject *changes_list(nono_snap_change *c, size_t n)
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *t = Py_BuildValue("(NsCN)", nono_py_text(c[i].path),
					    nono_snap_change_name(c[i].type), (int)c[i].entry_type,
					    c[i].has_size_delta ? PyLong_FromLongLong(c[i].size_delta)
								: Py_NewRef(Py_None));
		if (!t)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	nono_snap_changes_free(c, n);
	return l;
}

static PyObject *snap_baseline(nono_py_snap *self, PyObject *unused)
{
	(void)unused;
	nono_snap_manifest *m = NULL;
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_snap_baseline(self->snap, &m, &err);
	Py_END_ALLOW_THREADS
	return rc < 0 ? nono_py_raise(rc, &err) : manifest_tuple(m);
}

static PyObject *snap_incremental(nono_py_snap *self, PyObject *unused)
{
	(void)unused;
	nono_snap_manifest *m = NULL;
	nono_snap_change *c = NULL;
	size_t n = 0;
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_snap_incremental(self->snap, &m, &c, &n, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return nono_py_raise(rc, &err);
	return Py_BuildValue("(NN)", manifest_tuple(m), changes_list(c, n));
}

static int number_arg(PyObject *arg, uint32_t *out)
{
	unsigned long long v = PyLong_AsUnsignedLongLong(arg);
	if (PyErr_Occurred())
		return -1;
	if (v >= UINT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "snapshot number out of range");
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static PyObject *snap_load(nono_py_snap *self, PyObject *arg)
{
	uint32_t n;
	nono_snap_manifest *m = NULL;
	nono_error err = {0};
	int rc;
	if (number_arg(arg, &n) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_snap_load_manifest(self->snap, n, &m, &err);
	Py_END_ALLOW_THREADS
	return rc < 0 ? nono_py_raise(rc, &err) : manifest_tuple(m);
}

static PyObject *restore_common(nono_py_snap *self, PyObject *arg, bool apply)
{
	uint32_t num;
	nono_snap_change *c = NULL;
	size_t n = 0;
	nono_error err = {0};
	int rc;
	if (number_arg(arg, &num) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = apply ? nono_snap_restore(self->snap, num, &c, &n, &err)
		   : nono_snap_restore_diff(self->snap, num, &c, &n, &err);
	Py_END_ALLOW_THREADS
	return rc < 0 ? nono_py_raise(rc, &err) : changes_list(c, n);
}

static PyObject *snap_restore(nono_py_snap *self, PyObject *arg)
{
	return restore_common(self, arg, true);
}

static PyObject *snap_restore_diff(nono_py_snap *self, PyObject *arg)
{
	return restore_common(self, arg, false);
}

static PyObject *snap_verify(nono_py_snap *self, PyObject *unused)
{
	(void)unused;
	nono_error err = {0};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_snap_verify(self->snap, &err);
	Py_END_ALLOW_THREADS
	return rc < 0 ? nono_py_raise(rc, &err) : Py_NewRef(Py_None);
}

static PyObject *snap_count(nono_py_snap *self, PyObject *unused)
{
	(void)unused;
	return PyLong_FromUnsignedLong(nono_snap_count(self->snap));
}

static PyObject *snap_dir(nono_py_snap *self, void *unused)
{
	(void)unused;
	return nono_py_text(nono_snap_session_dir(self->snap));
}

static PyMethodDef snap_methods[] = {
	{"baseline", (PyCFunction)snap_baseline, METH_NOARGS, NULL},
	{"incremental", (PyCFunction)snap_incremental, METH_NOARGS, NULL},
	{"load", (PyCFunction)snap_load, METH_O, NULL},
	{"restore", (PyCFunction)snap_restore, METH_O, NULL},
	{"restore_diff", (PyCFunction)snap_restore_diff, METH_O, NULL},
	{"verify", (PyCFunction)snap_verify, METH_NOARGS, NULL},
	{"count", (PyCFunction)snap_count, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef snap_getset[] = {
	{"session_dir", (getter)snap_dir, NULL, NULL, NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot snap_slots[] = {
	{Py_tp_new, snap_new},
	{Py_tp_dealloc, snap_dealloc},
	{Py_tp_methods, snap_methods},
	{Py_tp_getset, snap_getset},
	{Py_tp_doc, "Native snapshot store (use nono_py.SnapshotManager)."},
	{0, NULL},
};

PyType_Spec nono_py_snap_spec = {
	.name = "nono_py._SnapshotStore",
	.basicsize = sizeof(nono_py_snap),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = snap_slots,
};
