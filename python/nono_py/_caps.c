/* _caps.c — CapabilitySet and QueryContext: thin wrappers over nono_caps; and
 * AccessMode, the IntEnum of nono_access. Names of modes come from the library (nono_access_name,
 * nono_net_mode_name), so Python shows the same words as the CLI and the JSON. */
#include "_caps.h"
#include "_proxy.h"

#include <ctype.h>

/* The library's name of a network mode: "allowed", "blocked" or "proxy-only". */
static PyObject *net_mode_str(nono_net_mode m)
{
	const char *n = nono_net_mode_name(m);
	return PyUnicode_FromString(n ? n : "unknown");
}

/* ------------------------------------------------------------------------------------------------
 * AccessMode
 * ---------------------------------------------------------------------------------------------- */

/* The member name for `a`: the library's name in Python's spelling ("read-write" -> READ_WRITE). */
static PyObject *access_member_name(nono_access a)
{
	const char *n = nono_access_name(a);
	char buf[32];
	size_t i = 0;
	for (; n && n[i] && i < sizeof buf - 1; i++)
		buf[i] = n[i] == '-' ? '_' : (char)toupper((unsigned char)n[i]);
	buf[i] = '\0';
	return PyUnicode_FromString(buf);
}

/* [(name, value), ...] for enum.IntEnum's functional API. */
static PyObject *access_members(void)
{
	static const nono_access all[] = {NONO_ACCESS_READ, NONO_ACCESS_WRITE, NONO_ACCESS_READ_WRITE};
	PyObject *list = PyList_New(0);
	for (size_t i = 0; list && i < N_ELEMENTS(all); i++) {
		PyObject *pair = Py_BuildValue("(Ni)", access_member_name(all[i]), (int)all[i]);
		if (!pair || PyList_Append(list, pair) < 0)
			Py_CLEAR(list);
		Py_XDECREF(pair);
	}
	return list;
}

static PyObject *make_access_enum(void)
{
	PyObject *mod = PyImport_ImportModule("enum");
	PyObject *intenum = mod ? PyObject_GetAttrString(mod, "IntEnum") : NULL;
	Py_XDECREF(mod);
	if (!intenum)
		return NULL;
	PyObject *members = access_members(), *r = NULL;
	PyObject *args = members ? Py_BuildValue("(sN)", "AccessMode", members) : NULL;
	PyObject *kw = Py_BuildValue("{ss}", "module", "nono_py");
	if (args && kw)
		r = PyObject_Call(intenum, args, kw);
	Py_XDECREF(args);
	Py_XDECREF(kw);
	Py_DECREF(intenum);
	return r;
}

/* nono-py's spellings: repr "AccessMode.READ", str "read" / "write" / "read+write" (f-strings too). An
 * IntEnum's own repr is "<AccessMode.READ: 1>" and its str the number. */
static int access_set_text(PyObject *cls)
{
	static const char code[] =
		"_TEXT = {1: 'read', 2: 'write', 3: 'read+write'}\n"
		"def __repr__(self):\n    return 'AccessMode.' + self.name\n"
		"def __str__(self):\n    return _TEXT[self._value_]\n"
		"def __format__(self, spec):\n    return format(str(self), spec)\n"
		"for _n in ('__repr__', '__str__', '__format__'):\n    setattr(cls, _n, globals()[_n])\n";
	PyObject *g = Py_BuildValue("{s:O,s:O}", "cls", cls, "__builtins__", PyEval_GetBuiltins());
	PyObject *r = g ? PyRun_String(code, Py_file_input, g, g) : NULL;
	int rc = r ? 0 : -1;
	Py_XDECREF(g);
	Py_XDECREF(r);
	return rc;
}

int nono_py_access_mode_init(PyObject *m, nono_py_state *st)
{
	st->access_mode = make_access_enum();
	if (!st->access_mode || access_set_text(st->access_mode) < 0)
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

/* "O&" converter: an AccessMode member to nono_access (TypeError for anything else). */
typedef struct {
	nono_py_state *st;
	nono_access access;
} access_arg;

static int access_conv(PyObject *obj, void *out)
{
	access_arg *a = out;
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

/* An AccessMode member for `a` (new reference). */
static PyObject *access_obj(nono_py_state *st, nono_access a)
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

static int no_args(const char *name, PyObject *args, PyObject *kw)
{
	if ((args && PyTuple_GET_SIZE(args)) || (kw && PyDict_GET_SIZE(kw))) {
		PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
		return -1;
	}
	return 0;
}

PyObject *nono_py_caps_wrap(nono_py_state *st, nono_caps *caps)
{
	if (!caps)
		return PyErr_NoMemory();
	nono_py_caps *o = (nono_py_caps *)st->caps_type->tp_alloc(st->caps_type, 0);
	if (!o) {
		nono_caps_free(caps);
		return NULL;
	}
	o->caps = caps;
	return (PyObject *)o;
}

/* ------------------------------------------------------------------------------------------------
 * CapabilitySet
 * ---------------------------------------------------------------------------------------------- */

static PyObject *caps_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	if (no_args("CapabilitySet", args, kw) < 0)
		return NULL;
	nono_py_caps *o = (nono_py_caps *)type->tp_alloc(type, 0);
	if (!o)
		return NULL;
	o->caps = nono_caps_new();
	if (!o->caps) {
		Py_DECREF(o);
		return PyErr_NoMemory();
	}
	return (PyObject *)o;
}

static void caps_dealloc(nono_py_caps *self)
{
	nono_caps_free(self->caps);
	Py_CLEAR(self->proxy);
	NONO_PY_DEALLOC(self);
}

typedef int (*grant_fn)(nono_caps *, const char *, nono_access, nono_error *);

static PyObject *caps_grant(nono_py_caps *self, PyObject *args, PyObject *kw, grant_fn fn,
			    const char *fmt)
{
	static char *kwlist[] = {"path", "mode", NULL};
	PyObject *path = NULL;
	access_arg mode = {.st = nono_py_state_of(Py_TYPE(self))};
	if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, nono_py_path_conv, &path,
					 access_conv, &mode))
		return NULL;
	nono_error err = {0};
	int rc = fn(self->caps, PyBytes_AS_STRING(path), mode.access, &err);
	Py_DECREF(path);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *caps_allow_path(nono_py_caps *self, PyObject *args, PyObject *kw)
{
	return caps_grant(self, args, kw, nono_caps_allow_path, "O&O&:allow_path");
}

static PyObject *caps_allow_file(nono_py_caps *self, PyObject *args, PyObject *kw)
{
	return caps_grant(self, args, kw, nono_caps_allow_file, "O&O&:allow_file");
}

static PyObject *caps_block_network(nono_py_caps *self, PyObject *unused)
{
	(void)unused;
	nono_error err = {0};
	int rc = nono_caps_set_network(self->caps, NONO_NET_BLOCKED, 0, &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_CLEAR(self->proxy); /* the later of block_network / proxy_only wins */
	Py_RETURN_NONE;
}

/* allow_user_namespaces(allow=True): nono_caps_set_user_namespaces (refused by default). */
static PyObject *caps_allow_userns(nono_py_caps *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"allow", NULL};
	int allow = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:allow_user_namespaces", kwlist, &allow))
		return NULL;
	nono_caps_set_user_namespaces(self->caps, allow);
	Py_RETURN_NONE;
}

/* The loopback address the proxy listens on, from its URL ("http://nono:TOKEN@HOST:PORT", HOST
 * bracketed for IPv6): the sandbox may reach that address alone. */
static const char *proxy_loopback(const nono_proxy *p)
{
	const char *u = nono_proxy_url(p), *at = u ? strrchr(u, '@') : NULL;
	return at && !strncmp(at + 1, "[::1]:", 6) ? "::1" : "127.0.0.1";
}

static PyObject *caps_proxy_only(nono_py_caps *self, PyObject *proxy)
{
	nono_py_state *st = nono_py_state_of(Py_TYPE(self));
	if (!PyObject_TypeCheck(proxy, st->proxy_type)) {
		PyErr_Format(PyExc_TypeError,
			     "proxy_only() needs a running proxy handle from start_proxy(), not %.100s",
			     Py_TYPE(proxy)->tp_name);
		return NULL;
	}
	nono_py_proxy *p = (nono_py_proxy *)proxy;
	if (!p->proxy) {
		PyErr_SetString(PyExc_ValueError, "proxy_only(): this proxy has been shut down");
		return NULL;
	}
	nono_error err = {0};
	int rc = nono_caps_set_network(self->caps, NONO_NET_PROXY_ONLY, p->port, &err);
	if (rc == 0)
		rc = nono_caps_set_proxy_address(self->caps, proxy_loopback(p->proxy), &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	/* Keep the handle: sandboxed_exec merges its environment and refuses once it is shut down. */
	Py_INCREF(proxy);
	Py_XSETREF(self->proxy, proxy);
	Py_RETURN_NONE;
}

static PyObject *caps_allow_unix_socket(nono_py_caps *self, PyObject *arg)
{
	PyObject *path = NULL;
	if (!nono_py_path_conv(arg, &path))
		return NULL;
	nono_error err = {0};
	int rc = nono_caps_allow_unix_socket(self->caps, PyBytes_AS_STRING(path), &err);
	Py_DECREF(path);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *caps_deduplicate(nono_py_caps *self, PyObject *unused)
{
	(void)unused;
	nono_caps_deduplicate(self->caps);
	Py_RETURN_NONE;
}

static PyObject *caps_path_covered(nono_py_caps *self, PyObject *arg)
{
	PyObject *path = NULL;
	if (!nono_py_path_conv(arg, &path))
		return NULL;
	bool r = nono_caps_path_covered(self->caps, PyBytes_AS_STRING(path));
	Py_DECREF(path);
	return PyBool_FromLong(r);
}

/* A CapabilitySource (nono_py/_source.py) for a grant's source. */
static PyObject *source_obj(const nono_grant *g)
{
	PyObject *mod = PyImport_ImportModule("nono_py._source");
	if (!mod)
		return NULL;
	PyObject *r = PyObject_CallMethod(mod, "_from_lib", "sz", nono_source_name(g->source),
					  g->source == NONO_SOURCE_GROUP ? g->group : NULL);
	Py_DECREF(mod);
	return r;
}

static PyObject *caps_fs_capabilities(nono_py_caps *self, PyObject *unused)
{
	(void)unused;
	nono_py_state *st = nono_py_state_of(Py_TYPE(self));
	size_t n = nono_caps_grant_count(self->caps);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		nono_grant g;
		nono_error err = {0};
		int rc = nono_caps_grant(self->caps, i, &g);
		PyObject *item = rc < 0 ? nono_py_raise(rc, &err) : PyStructSequence_New(st->fs_cap_type);
		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
		PyObject *v[] = {
			PyUnicode_DecodeFSDefault(g.original),
			PyUnicode_DecodeFSDefault(g.resolved),
			access_obj(st, g.access),
			PyBool_FromLong(g.is_file),
			source_obj(&g),
		};
		int bad = 0;
		for (size_t k = 0; k < N_ELEMENTS(v); k++) {
			bad |= !v[k];
			PyStructSequence_SetItem(item, (Py_ssize_t)k, v[k]);
		}
		if (bad)
			Py_CLEAR(list);
	}
	return list;
}

static PyStructSequence_Field fs_cap_fields[] = {
	{"original", "the path as given"},
	{"resolved", "canonical absolute path"},
	{"access", "AccessMode"},
	{"is_file", "True for a single-file grant"},
	{"source", "CapabilitySource: where the grant came from (user, group or system)"},
	{NULL, NULL},
};
PyStructSequence_Desc nono_py_fs_cap_desc = {
	"nono_py.FsCapability", "One filesystem grant of a CapabilitySet.", fs_cap_fields, 4,
};

static PyObject *caps_unix_sockets(nono_py_caps *self, void *closure)
{
	(void)closure;
	size_t n = nono_caps_unix_socket_count(self->caps);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *s = PyUnicode_DecodeFSDefault(nono_caps_unix_socket(self->caps, i));
		if (!s)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, s);
	}
	return list;
}

/* The library's one-line summary, then one line a grant ("  read-write  /work (dir)") and a line a
 * platform rule, so the summary names what it grants. */
static PyObject *caps_summary(nono_py_caps *self, PyObject *unused)
{
	(void)unused;
	char *s = nono_caps_summary(self->caps);
	if (!s)
		return PyErr_NoMemory();
	PyObject *r = nono_py_text(s);
	free(s);
	for (size_t i = 0; r && i < nono_caps_grant_count(self->caps); i++) {
		nono_grant g;
		if (nono_caps_grant(self->caps, i, &g) < 0)
			break;
		char acc[16]; /* PyUnicode_FromFormat has no field widths */
		snprintf(acc, sizeof acc, "%-10s", nono_access_name(g.access));
		PyObject *path = PyUnicode_DecodeFSDefault(g.resolved);
		PyObject *line = path ? PyUnicode_FromFormat("\n  %s  %U (%s)", acc, path,
							     g.is_file ? "file" : "dir")
				      : NULL;
		Py_XDECREF(path);
		if (line)
			PyUnicode_Append(&r, line);
		else
			Py_CLEAR(r);
		Py_XDECREF(line);
	}
	for (size_t i = 0; r && i < nono_caps_platform_rule_count(self->caps); i++) {
		PyObject *line = PyUnicode_FromFormat("\n  platform rule (not enforced on Linux): %s",
						      nono_caps_platform_rule(self->caps, i));
		if (line)
			PyUnicode_Append(&r, line);
		else
			Py_CLEAR(r);
		Py_XDECREF(line);
	}
	return r;
}

static PyObject *caps_platform_rule(nono_py_caps *self, PyObject *arg)
{
	if (!PyUnicode_Check(arg)) {
		PyErr_Format(PyExc_TypeError, "platform_rule() needs a str, not %.100s",
			     Py_TYPE(arg)->tp_name);
		return NULL;
	}
	Py_ssize_t n;
	const char *rule = PyUnicode_AsUTF8AndSize(arg, &n);
	if (!rule)
		return NULL;
	if ((size_t)n != strlen(rule)) {
		PyErr_SetString(PyExc_ValueError, "platform rule must not contain NUL");
		return NULL;
	}
	nono_error err = {0};
	int rc = nono_caps_add_platform_rule(self->caps, rule, &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *caps_platform_rules(nono_py_caps *self, void *closure)
{
	(void)closure;
	size_t n = nono_caps_platform_rule_count(self->caps);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *s = PyUnicode_FromString(nono_caps_platform_rule(self->caps, i));
		if (!s)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, s);
	}
	return list;
}

static PyObject *caps_is_network_blocked(nono_py_caps *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(nono_caps_network(self->caps, NULL) != NONO_NET_ALLOWED);
}

static PyObject *caps_network_mode(nono_py_caps *self, void *closure)
{
	(void)closure;
	return net_mode_str(nono_caps_network(self->caps, NULL));
}

static PyObject *caps_proxy_port(nono_py_caps *self, void *closure)
{
	(void)closure;
	uint16_t port = 0;
	if (nono_caps_network(self->caps, &port) != NONO_NET_PROXY_ONLY)
		Py_RETURN_NONE;
	return PyLong_FromLong(port);
}

static PyObject *caps_repr(nono_py_caps *self)
{
	uint16_t port = 0;
	nono_net_mode m = nono_caps_network(self->caps, &port);
	const char *name = nono_net_mode_name(m);
	size_t n = nono_caps_grant_count(self->caps), u = nono_caps_unix_socket_count(self->caps);
	if (m == NONO_NET_PROXY_ONLY)
		return PyUnicode_FromFormat("CapabilitySet(fs=%zu, unix_sockets=%zu, network=%s, "
					    "proxy_port=%u)", n, u, name, (unsigned)port);
	return PyUnicode_FromFormat("CapabilitySet(fs=%zu, unix_sockets=%zu, network=%s)", n, u,
				    name ? name : "unknown");
}

static PyMethodDef caps_methods[] = {
	{"allow_path", (PyCFunction)(void (*)(void))caps_allow_path, METH_VARARGS | METH_KEYWORDS,
	 "allow_path(path, mode)\n--\n\nGrant a directory and everything below it."},
	{"allow_file", (PyCFunction)(void (*)(void))caps_allow_file, METH_VARARGS | METH_KEYWORDS,
	 "allow_file(path, mode)\n--\n\nGrant one non-directory file."},
	{"allow_user_namespaces", (PyCFunction)(void (*)(void))caps_allow_userns,
	 METH_VARARGS | METH_KEYWORDS,
	 "allow_user_namespaces(allow=True)\n--\n\nLet the command create user namespaces (refused by "
	 "default: unshare/clone CLONE_NEWUSER and setns EPERM, clone3 ENOSYS); for tools that sandbox "
	 "themselves."},
	{"block_network", (PyCFunction)caps_block_network, METH_NOARGS,
	 "block_network()\n--\n\nNo network at all (the later of block_network/proxy_only wins)."},
	{"proxy_only", (PyCFunction)caps_proxy_only, METH_O,
	 "proxy_only(proxy)\n--\n\nNetwork only through this running proxy (from start_proxy())."},
	{"allow_unix_socket", (PyCFunction)caps_allow_unix_socket, METH_O,
	 "allow_unix_socket(path)\n--\n\nAllow connect() to one unix socket, or any inside a directory."},
	{"deduplicate", (PyCFunction)caps_deduplicate, METH_NOARGS, "deduplicate()\n--\n\n"},
	{"path_covered", (PyCFunction)caps_path_covered, METH_O, "path_covered(path)\n--\n\n"},
	{"fs_capabilities", (PyCFunction)caps_fs_capabilities, METH_NOARGS,
	 "fs_capabilities()\n--\n\nList of FsCapability(original, resolved, access, is_file)."},
	{"summary", (PyCFunction)caps_summary, METH_NOARGS,
	 "summary()\n--\n\nOne line of counts and the network mode, then one line a grant."},
	{"platform_rule", (PyCFunction)caps_platform_rule, METH_O,
	 "platform_rule(rule)\n--\n\nA raw macOS Seatbelt rule: validated (ValueError when malformed or "
	 "dangerous), recorded and reported; not enforced on Linux."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef caps_getset[] = {
	{"is_network_blocked", (getter)caps_is_network_blocked, NULL,
	 "True when the network is blocked or proxy-only", NULL},
	{"network_mode", (getter)caps_network_mode, NULL, "'allowed', 'blocked' or 'proxy-only'", NULL},
	{"proxy_port", (getter)caps_proxy_port, NULL, "the proxy port when proxy-only, else None", NULL},
	{"unix_sockets", (getter)caps_unix_sockets, NULL, "allowed unix socket paths", NULL},
	{"platform_rules", (getter)caps_platform_rules, NULL, "recorded platform rules (list of str)",
	 NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot caps_slots[] = {
	{Py_tp_new, caps_new},
	{Py_tp_dealloc, caps_dealloc},
	{Py_tp_repr, caps_repr},
	{Py_tp_methods, caps_methods},
	{Py_tp_getset, caps_getset},
	{Py_tp_doc, "CapabilitySet()\n--\n\nWhat a sandboxed process may touch: paths and network mode."},
	{0, NULL},
};

PyType_Spec nono_py_caps_spec = {
	.name = "nono_py.CapabilitySet",
	.basicsize = sizeof(nono_py_caps),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = caps_slots,
};

/* ------------------------------------------------------------------------------------------------
 * QueryContext: a snapshot of a CapabilitySet, asked pure-policy questions
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	nono_caps *caps;
} nono_py_query;

static PyObject *query_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"caps", NULL};
	nono_py_state *st = nono_py_state_of(type);
	PyObject *caps;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!:QueryContext", kwlist, st->caps_type, &caps))
		return NULL;
	nono_py_query *o = (nono_py_query *)type->tp_alloc(type, 0);
	if (!o)
		return NULL;
	o->caps = nono_caps_clone(((nono_py_caps *)caps)->caps);
	if (!o->caps) {
		Py_DECREF(o);
		return PyErr_NoMemory();
	}
	return (PyObject *)o;
}

static void query_dealloc(nono_py_query *self)
{
	nono_caps_free(self->caps);
	NONO_PY_DEALLOC(self);
}

/* nono-py's spelling of an access in query results: "read", "write", "read+write". */
static const char *access_text(nono_access a)
{
	return a == NONO_ACCESS_READ_WRITE ? "read+write" : nono_access_name(a);
}

/* {"status": "allowed"|"denied", "reason": <tag>, "message": <prose>} plus one extra key. */
static PyObject *decision_dict(const nono_decision *d, PyObject *extra_key, PyObject *extra_val)
{
	PyObject *msg = nono_py_text(d->reason);
	PyObject *r = msg ? Py_BuildValue("{s:s,s:s,s:N}", "status", d->allowed ? "allowed" : "denied",
					  "reason", d->code ? d->code : "unknown", "message", msg)
			  : NULL;
	if (r && extra_key && PyDict_SetItem(r, extra_key, extra_val) < 0)
		Py_CLEAR(r);
	return r;
}

/* Path results carry what nono-py's do: allowed -> granted_path, access; insufficient_access ->
 * granted, requested (and granted_path, the nearest covering grant); path_not_granted ->
 * requested. */
static int set_text(PyObject *r, const char *key, const char *val)
{
	PyObject *k = PyUnicode_FromString(key), *v = PyUnicode_FromString(val);
	int rc = k && v ? PyDict_SetItem(r, k, v) : -1;
	Py_XDECREF(k);
	Py_XDECREF(v);
	return rc;
}

static int path_fields(PyObject *r, const nono_decision *d)
{
	if (d->allowed)
		return d->granted ? set_text(r, "access", access_text(d->granted)) : 0;
	if (d->granted && set_text(r, "granted", access_text(d->granted)) < 0)
		return -1;
	return set_text(r, "requested", access_text(d->requested));
}

static PyObject *query_path(nono_py_query *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "mode", NULL};
	PyObject *path = NULL;
	access_arg mode = {.st = nono_py_state_of(Py_TYPE(self))};
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&:query_path", kwlist, nono_py_path_conv, &path,
					 access_conv, &mode))
		return NULL;
	nono_decision *d = PyMem_Calloc(1, sizeof *d); /* ~4.4 KiB: not on the stack */
	if (!d) {
		Py_DECREF(path);
		return PyErr_NoMemory();
	}
	nono_error err = {0};
	PyObject *r = NULL;
	int rc = nono_caps_query_path(self->caps, PyBytes_AS_STRING(path), mode.access, d, &err);
	Py_DECREF(path);
	if (rc < 0) {
		nono_py_raise(rc, &err);
	} else {
		PyObject *key = PyUnicode_FromString("granted_path");
		PyObject *val = !key ? NULL : d->grant[0] ? PyUnicode_DecodeFSDefault(d->grant) : Py_NewRef(Py_None);
		if (val)
			r = decision_dict(d, key, val);
		if (r && path_fields(r, d) < 0)
			Py_CLEAR(r);
		Py_XDECREF(key);
		Py_XDECREF(val);
	}
	PyMem_Free(d);
	return r;
}

static PyObject *query_network(nono_py_query *self, PyObject *unused)
{
	(void)unused;
	nono_decision *d = PyMem_Calloc(1, sizeof *d);
	if (!d)
		return PyErr_NoMemory();
	nono_caps_query_network(self->caps, d);
	uint16_t port = 0;
	PyObject *key = PyUnicode_FromString("mode");
	PyObject *val = net_mode_str(nono_caps_network(self->caps, &port));
	PyObject *r = key && val ? decision_dict(d, key, val) : NULL;
	Py_XDECREF(key);
	Py_XDECREF(val);
	PyMem_Free(d);
	if (r && port) {
		PyObject *p = PyLong_FromLong(port);
		if (!p || PyDict_SetItemString(r, "proxy_port", p) < 0)
			Py_CLEAR(r);
		Py_XDECREF(p);
	}
	return r;
}

static PyMethodDef query_methods[] = {
	{"query_path", (PyCFunction)(void (*)(void))query_path, METH_VARARGS | METH_KEYWORDS,
	 "query_path(path, mode)\n--\n\n{'status': 'allowed'|'denied', 'reason': ..., 'granted_path': ...}"},
	{"query_network", (PyCFunction)query_network, METH_NOARGS,
	 "query_network()\n--\n\n{'status': 'allowed'|'denied', 'reason': ..., 'mode': ...}"},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot query_slots[] = {
	{Py_tp_new, query_new},
	{Py_tp_dealloc, query_dealloc},
	{Py_tp_methods, query_methods},
	{Py_tp_doc, "QueryContext(caps)\n--\n\nAsk what a snapshot of caps allows (no enforcement)."},
	{0, NULL},
};

PyType_Spec nono_py_query_spec = {
	.name = "nono_py.QueryContext",
	.basicsize = sizeof(nono_py_query),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = query_slots,
};
