/* _policy.c — policy documents for nono_py: Policy (a parsed document), ResolvedPolicy (what
 * resolve_groups did, each grant with its group), and load_policy, load_embedded_policy,
 * embedded_policy_json, validate_deny_overlaps, apply_unlink_overrides. Everything is decided by
 * libnono (nono_policy_*); this file converts arguments and results. */
#include "_policy.h"

#include <stddef.h>
#include <structmember.h>

typedef struct {
	PyObject_HEAD
	nono_policy *policy;
} nono_py_policy;

typedef struct {
	PyObject_HEAD
	PyObject *names, *deny_paths, *grants, *allowed_domains;
	int needs_unlink;
	int network_block;
} nono_py_resolved;

/* A list of str (or a tuple) -> a vector of UTF-8 pointers kept alive by `keep` (a list). */
static int names_vec(PyObject *seq, const char *what, nono_py_strvec *out)
{
	out->keep = NULL;
	out->v = NULL;
	if (PyUnicode_Check(seq)) {
		PyErr_Format(PyExc_TypeError, "%s must be a list of str, not a single str", what);
		return -1;
	}
	PyObject *fast = PySequence_Fast(seq, "group names must be a list of str");
	if (!fast)
		return -1;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
	out->keep = PyList_New(0);
	out->v = PyMem_Calloc((size_t)n + 1, sizeof *out->v);
	for (Py_ssize_t i = 0; out->keep && out->v && i < n; i++) {
		PyObject *it = PySequence_Fast_GET_ITEM(fast, i);
		if (!PyUnicode_Check(it)) {
			PyErr_Format(PyExc_TypeError, "%s entries must be str", what);
			goto fail;
		}
		PyObject *b = PyUnicode_AsUTF8String(it);
		if (!b || PyList_Append(out->keep, b) < 0) {
			Py_XDECREF(b);
			goto fail;
		}
		Py_DECREF(b);
		if (strlen(PyBytes_AS_STRING(b)) != (size_t)PyBytes_GET_SIZE(b)) {
			PyErr_Format(PyExc_ValueError, "%s entries must not contain NUL", what);
			goto fail;
		}
		out->v[i] = PyBytes_AS_STRING(b);
	}
	Py_DECREF(fast);
	if (!out->keep || !out->v) {
		nono_py_strvec_clear(out);
		PyErr_NoMemory();
		return -1;
	}
	return 0;
fail:
	Py_DECREF(fast);
	nono_py_strvec_clear(out);
	return -1;
}

static size_t vec_len(const nono_py_strvec *v)
{
	return (size_t)PyList_GET_SIZE(v->keep);
}

static PyObject *wrap_policy(nono_py_state *st, nono_policy *p, const nono_error *err)
{
	if (!p)
		return nono_py_raise(err->code ? err->code : -ENOMEM, err);
	nono_py_policy *self = PyObject_New(nono_py_policy, st->policy_type);
	if (!self) {
		nono_policy_free(p);
		return NULL;
	}
	self->policy = p;
	return (PyObject *)self;
}

static void policy_dealloc(nono_py_policy *self)
{
	nono_policy_free(self->policy);
	NONO_PY_DEALLOC(self);
}

static PyObject *name_list(const nono_policy *p, size_t n,
			   const char *(*get)(const nono_policy *, size_t))
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *s = nono_py_text(get(p, i));
		if (!s)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

static PyObject *policy_group_names(nono_py_policy *self, PyObject *unused)
{
	(void)unused;
	return name_list(self->policy, nono_policy_group_count(self->policy),
			 nono_policy_group_name);
}

static PyObject *policy_base_groups(nono_py_policy *self, PyObject *unused)
{
	(void)unused;
	return name_list(self->policy, nono_policy_base_group_count(self->policy),
			 nono_policy_base_group);
}

static PyObject *policy_group_description(nono_py_policy *self, PyObject *name)
{
	const char *n = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
	if (!n) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "group name must be a str");
		return NULL;
	}
	const char *d = nono_policy_group_description(self->policy, n);
	if (!d)
		Py_RETURN_NONE;
	return nono_py_text(d);
}

static PyObject *policy_group_required(nono_py_policy *self, PyObject *name)
{
	const char *n = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
	if (!n) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "group name must be a str");
		return NULL;
	}
	return PyBool_FromLong(nono_policy_group_required(self->policy, n));
}

static PyObject *text_list(size_t n, const char *(*get)(const nono_policy_resolved *, size_t),
			   const nono_policy_resolved *r)
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *s = nono_py_text(get(r, i));
		if (!s)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

static const char *deny_path_at(const nono_policy_resolved *r, size_t i)
{
	nono_policy_deny d;
	return nono_policy_resolved_deny(r, i, &d) ? "" : d.path;
}

static PyObject *grant_dict(const nono_py_state *st, const nono_policy_grant *g)
{
	PyObject *access = st->access_member[g->access];
	return Py_BuildValue("{s:N,s:N,s:O,s:O,s:O}", "path", nono_py_text(g->path), "group",
			     nono_py_text(g->group), "access", access, "is_file",
			     g->is_file ? Py_True : Py_False, "skipped",
			     g->skipped ? Py_True : Py_False);
}

static PyObject *grant_list(const nono_py_state *st, const nono_policy_resolved *r)
{
	size_t n = nono_policy_resolved_grant_count(r);
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		nono_policy_grant g;
		nono_policy_resolved_grant(r, i, &g);
		PyObject *d = grant_dict(st, &g);
		if (!d)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, d);
	}
	return l;
}

static PyObject *wrap_resolved(nono_py_state *st, const nono_policy_resolved *r)
{
	nono_py_resolved *o = PyObject_New(nono_py_resolved, st->resolved_type);
	if (!o)
		return NULL;
	o->names = text_list(nono_policy_resolved_group_count(r), nono_policy_resolved_group, r);
	o->deny_paths = text_list(nono_policy_resolved_deny_count(r), deny_path_at, r);
	o->allowed_domains =
		text_list(nono_policy_resolved_domain_count(r), nono_policy_resolved_domain, r);
	o->grants = grant_list(st, r);
	o->needs_unlink = nono_policy_resolved_needs_unlink_overrides(r);
	o->network_block = nono_policy_resolved_network_block(r);
	if (!o->names || !o->deny_paths || !o->allowed_domains || !o->grants)
		Py_CLEAR(o);
	return (PyObject *)o;
}

static PyObject *policy_resolve_groups(nono_py_policy *self, PyObject *args)
{
	nono_py_state *st = nono_py_state_of(Py_TYPE(self));
	PyObject *names, *caps;
	if (!st || !PyArg_ParseTuple(args, "OO!:resolve_groups", &names, st->caps_type, &caps))
		return NULL;
	nono_py_strvec v;
	if (names_vec(names, "group_names", &v) < 0)
		return NULL;
	nono_policy_resolved *r = NULL;
	nono_error err = {0};
	int rc = nono_policy_resolve(self->policy, v.v, vec_len(&v), ((nono_py_caps *)caps)->caps,
				     &r, &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	PyObject *res = wrap_resolved(st, r);
	nono_policy_resolved_free(r);
	return res;
}

static PyObject *policy_resolve_deny_paths(nono_py_policy *self, PyObject *names)
{
	nono_py_strvec v;
	if (names_vec(names, "group_names", &v) < 0)
		return NULL;
	char **paths = NULL;
	nono_error err = {0};
	int rc = nono_policy_deny_paths(self->policy, v.v, vec_len(&v), &paths, &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	PyObject *l = PyList_New(0);
	for (size_t i = 0; l && paths[i]; i++) {
		PyObject *s = nono_py_text(paths[i]);
		if (!s || PyList_Append(l, s) < 0)
			Py_CLEAR(l);
		Py_XDECREF(s);
	}
	nono_strv_free(paths);
	return l;
}

static PyObject *policy_validate_exclusions(nono_py_policy *self, PyObject *names)
{
	nono_py_strvec v;
	if (names_vec(names, "excluded_groups", &v) < 0)
		return NULL;
	nono_error err = {0};
	int rc = nono_policy_validate_exclusions(self->policy, v.v, vec_len(&v), &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

/* nono_py.ProxyConfig / RouteConfig live in the package (__init__.py): looked up at call time. */
static PyObject *package_attr(const char *name)
{
	PyObject *pkg = PyImport_ImportModule("nono_py");
	PyObject *a = pkg ? PyObject_GetAttrString(pkg, name) : NULL;
	Py_XDECREF(pkg);
	return a;
}

static int set_opt(PyObject *kw, const char *key, const char *val)
{
	if (!val)
		return 0;
	PyObject *s = nono_py_text(val);
	int rc = s ? PyDict_SetItemString(kw, key, s) : -1;
	Py_XDECREF(s);
	return rc;
}

static PyObject *route_obj(PyObject *cls, const nono_policy_route *r)
{
	PyObject *kw = PyDict_New();
	if (!kw || set_opt(kw, "prefix", r->prefix) || set_opt(kw, "upstream", r->upstream) ||
	    set_opt(kw, "credential_key", r->credential_key) ||
	    set_opt(kw, "inject_header", r->inject_header) ||
	    set_opt(kw, "credential_format", r->credential_format) ||
	    set_opt(kw, "env_var", r->env_var)) {
		Py_XDECREF(kw);
		return NULL;
	}
	PyObject *empty = PyTuple_New(0);
	PyObject *o = empty ? PyObject_Call(cls, empty, kw) : NULL;
	Py_XDECREF(empty);
	Py_DECREF(kw);
	return o;
}

static PyObject *string_list(char **v, size_t n)
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *s = nono_py_text(v[i]);
		if (!s)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

static PyObject *proxy_kwargs(const nono_policy_proxy *px)
{
	PyObject *kw = PyDict_New(), *hosts = string_list(px->hosts, px->nhosts);
	PyObject *routes = PyList_New(0), *rcls = px->nroutes ? package_attr("RouteConfig") : NULL;
	bool ok = kw && hosts && routes && (!px->nroutes || rcls);
	for (size_t i = 0; ok && i < px->nroutes; i++) {
		PyObject *r = route_obj(rcls, &px->routes[i]);
		ok = r && PyList_Append(routes, r) == 0;
		Py_XDECREF(r);
	}
	ok = ok && PyDict_SetItemString(kw, "allowed_hosts", hosts) == 0;
	ok = ok && (!px->nroutes || PyDict_SetItemString(kw, "routes", routes) == 0);
	if (ok && px->max_connections) {
		PyObject *mc = PyLong_FromUnsignedLong(px->max_connections);
		ok = mc && PyDict_SetItemString(kw, "max_connections", mc) == 0;
		Py_XDECREF(mc);
	}
	Py_XDECREF(hosts);
	Py_XDECREF(routes);
	Py_XDECREF(rcls);
	if (!ok)
		Py_CLEAR(kw);
	return kw;
}

static PyObject *policy_resolve_proxy_config(nono_py_policy *self, PyObject *names)
{
	nono_py_strvec v;
	if (names_vec(names, "group_names", &v) < 0)
		return NULL;
	nono_policy_proxy *px = NULL;
	nono_error err = {0};
	int rc = nono_policy_resolve_proxy(self->policy, v.v, vec_len(&v), &px, &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	if (!px)
		Py_RETURN_NONE;
	if (px->upstream_proxy) {
		/* Never dropped silently: nono's proxy does not chain to another proxy. */
		PyErr_Format(PyExc_ValueError,
			     "external_proxy %s: nono's proxy does not chain to an upstream proxy",
			     px->upstream_proxy);
		nono_policy_proxy_free(px);
		return NULL;
	}
	PyObject *kw = proxy_kwargs(px), *cls = kw ? package_attr("ProxyConfig") : NULL;
	nono_policy_proxy_free(px);
	PyObject *empty = cls ? PyTuple_New(0) : NULL;
	PyObject *res = empty ? PyObject_Call(cls, empty, kw) : NULL;
	Py_XDECREF(empty);
	Py_XDECREF(cls);
	Py_XDECREF(kw);
	return res;
}

static PyObject *policy_repr(nono_py_policy *self)
{
	return PyUnicode_FromFormat("Policy(groups=%zu)", nono_policy_group_count(self->policy));
}

static PyMethodDef policy_methods[] = {
	{"group_names", (PyCFunction)policy_group_names, METH_NOARGS,
	 "group_names()\n--\n\nAll group names, sorted."},
	{"base_groups", (PyCFunction)policy_base_groups, METH_NOARGS,
	 "base_groups()\n--\n\nThe document's base_groups, in order."},
	{"group_description", (PyCFunction)policy_group_description, METH_O,
	 "group_description(name)\n--\n\nThe group's description, or None."},
	{"is_group_required", (PyCFunction)policy_group_required, METH_O,
	 "is_group_required(name)\n--\n\nTrue when the group may not be excluded."},
	{"resolve_groups", (PyCFunction)policy_resolve_groups, METH_VARARGS,
	 "resolve_groups(group_names, caps)\n--\n\nAdd the groups' grants to caps (all or nothing) "
	 "and return a ResolvedPolicy. Unknown groups raise ValueError."},
	{"resolve_deny_paths", (PyCFunction)policy_resolve_deny_paths, METH_O,
	 "resolve_deny_paths(group_names)\n--\n\nThe groups' expanded deny.access paths."},
	{"resolve_proxy_config", (PyCFunction)policy_resolve_proxy_config, METH_O,
	 "resolve_proxy_config(group_names)\n--\n\nA ProxyConfig from the groups' network "
	 "sections, or None when they have none."},
	{"validate_group_exclusions", (PyCFunction)policy_validate_exclusions, METH_O,
	 "validate_group_exclusions(excluded_groups)\n--\n\nValueError when one is required."},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot policy_slots[] = {
	{Py_tp_dealloc, policy_dealloc},
	{Py_tp_repr, policy_repr},
	{Py_tp_methods, policy_methods},
	{Py_tp_doc, "A parsed policy document (load_policy, load_embedded_policy)."},
	{0, NULL},
};

PyType_Spec nono_py_policy_spec = {
	.name = "nono_py.Policy",
	.basicsize = sizeof(nono_py_policy),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = policy_slots,
};

/* ---- ResolvedPolicy ---- */

static void resolved_dealloc(nono_py_resolved *self)
{
	Py_CLEAR(self->names);
	Py_CLEAR(self->deny_paths);
	Py_CLEAR(self->grants);
	Py_CLEAR(self->allowed_domains);
	NONO_PY_DEALLOC(self);
}

static PyObject *resolved_repr(nono_py_resolved *self)
{
	return PyUnicode_FromFormat("ResolvedPolicy(names=%R, needs_unlink_overrides=%s, "
				    "deny_paths=%R)",
				    self->names, self->needs_unlink ? "True" : "False",
				    self->deny_paths);
}

/* Copies, so a caller changing the list does not change the result. */
static PyObject *get_list(nono_py_resolved *self, void *off)
{
	PyObject *l = *(PyObject **)((char *)self + (size_t)off);
	return PyList_GetSlice(l, 0, PyList_GET_SIZE(l));
}

static PyObject *get_flag(nono_py_resolved *self, void *off)
{
	return PyBool_FromLong(*(int *)((char *)self + (size_t)off));
}

static PyGetSetDef resolved_getset[] = {
	{"names", (getter)get_list, NULL, "groups resolved, after platform filtering",
	 (void *)offsetof(nono_py_resolved, names)},
	{"deny_paths", (getter)get_list, NULL, "expanded deny.access paths",
	 (void *)offsetof(nono_py_resolved, deny_paths)},
	{"grants", (getter)get_list, NULL,
	 "each grant made or skipped: {path, group, access, is_file, skipped}",
	 (void *)offsetof(nono_py_resolved, grants)},
	{"allowed_domains", (getter)get_list, NULL, "domains the groups allow through a proxy",
	 (void *)offsetof(nono_py_resolved, allowed_domains)},
	{"needs_unlink_overrides", (getter)get_flag, NULL,
	 "a group asked for unlink overrides (apply_unlink_overrides)",
	 (void *)offsetof(nono_py_resolved, needs_unlink)},
	{"network_blocked_by_group", (getter)get_flag, NULL, "a group set network.block",
	 (void *)offsetof(nono_py_resolved, network_block)},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot resolved_slots[] = {
	{Py_tp_dealloc, resolved_dealloc},
	{Py_tp_repr, resolved_repr},
	{Py_tp_getset, resolved_getset},
	{Py_tp_doc, "What Policy.resolve_groups did."},
	{0, NULL},
};

PyType_Spec nono_py_resolved_spec = {
	.name = "nono_py.ResolvedPolicy",
	.basicsize = sizeof(nono_py_resolved),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = resolved_slots,
};

/* ---- module functions ---- */

static PyObject *py_load_policy(PyObject *module, PyObject *arg)
{
	Py_ssize_t len;
	const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &len) : NULL;
	if (!s) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "load_policy() takes the JSON text as a str");
		return NULL;
	}
	nono_error err = {0};
	nono_policy *p = nono_policy_load(s, (size_t)len, &err);
	return wrap_policy(PyModule_GetState(module), p, &err);
}

static PyObject *py_load_embedded(PyObject *module, PyObject *unused)
{
	(void)unused;
	nono_error err = {0};
	nono_policy *p = nono_policy_load_embedded(&err);
	return wrap_policy(PyModule_GetState(module), p, &err);
}

static PyObject *py_embedded_json(PyObject *module, PyObject *unused)
{
	(void)module;
	(void)unused;
	return nono_py_text(nono_policy_embedded_json());
}

static nono_caps *caps_arg(PyObject *module, PyObject *obj)
{
	nono_py_state *st = PyModule_GetState(module);
	if (!PyObject_TypeCheck(obj, st->caps_type)) {
		PyErr_SetString(PyExc_TypeError, "caps must be a CapabilitySet");
		return NULL;
	}
	return ((nono_py_caps *)obj)->caps;
}

static PyObject *py_validate_deny_overlaps(PyObject *module, PyObject *args)
{
	PyObject *paths, *caps_obj;
	if (!PyArg_ParseTuple(args, "OO:validate_deny_overlaps", &paths, &caps_obj))
		return NULL;
	nono_caps *caps = caps_arg(module, caps_obj);
	nono_py_strvec v;
	if (!caps || names_vec(paths, "deny_paths", &v) < 0)
		return NULL;
	nono_error err = {0};
	int rc = nono_policy_validate_deny_overlaps(v.v, vec_len(&v), caps, &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *py_apply_unlink_overrides(PyObject *module, PyObject *caps_obj)
{
	nono_caps *caps = caps_arg(module, caps_obj);
	nono_error err = {0};
	int rc = caps ? nono_policy_apply_unlink_overrides(caps, &err) : -1;
	if (rc == -1 && PyErr_Occurred())
		return NULL;
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *py_enforce_deny_paths(PyObject *module, PyObject *args)
{
	PyObject *caps_obj, *paths;
	if (!PyArg_ParseTuple(args, "OO:enforce_deny_paths", &caps_obj, &paths))
		return NULL;
	nono_caps *caps = caps_arg(module, caps_obj);
	nono_py_strvec v;
	if (!caps || names_vec(paths, "deny_paths", &v) < 0)
		return NULL;
	nono_error err = {0};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < vec_len(&v); i++)
		rc = nono_caps_deny_path(caps, v.v[i], &err);
	nono_py_strvec_clear(&v);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *py_deny_paths_of(PyObject *module, PyObject *caps_obj)
{
	nono_caps *caps = caps_arg(module, caps_obj);
	if (!caps)
		return NULL;
	size_t n = nono_caps_deny_count(caps);
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *s = nono_py_text(nono_caps_deny(caps, i));
		if (!s)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

PyMethodDef nono_py_policy_functions[] = {
	{"enforce_deny_paths", py_enforce_deny_paths, METH_VARARGS,
	 "enforce_deny_paths(caps, deny_paths)\n--\n\nDeny these paths even inside grants: "
	 "sandboxed_exec covers each one inside a grant in the command's private mount namespace "
	 "(RuntimeError from sandboxed_exec where none can be made; apply() refuses them)."},
	{"deny_paths_of", py_deny_paths_of, METH_O,
	 "deny_paths_of(caps)\n--\n\nThe deny paths of caps (canonical where they existed)."},
	{"load_policy", py_load_policy, METH_O,
	 "load_policy(json)\n--\n\nParse a policy document strictly (unknown fields are a "
	 "ValueError naming the field)."},
	{"load_embedded_policy", py_load_embedded, METH_NOARGS,
	 "load_embedded_policy()\n--\n\nnono's own policy (docs/policy.md)."},
	{"embedded_policy_json", py_embedded_json, METH_NOARGS,
	 "embedded_policy_json()\n--\n\nThe embedded policy's JSON text."},
	{"validate_deny_overlaps", py_validate_deny_overlaps, METH_VARARGS,
	 "validate_deny_overlaps(deny_paths, caps)\n--\n\nRuntimeError when a deny path lies "
	 "inside a grant of caps (Landlock cannot take it back out)."},
	{"apply_unlink_overrides", py_apply_unlink_overrides, METH_O,
	 "apply_unlink_overrides(caps)\n--\n\nA no-op on Linux (write grants include removal); "
	 "kept for nono-py compatibility."},
	{NULL, NULL, 0, NULL},
};
