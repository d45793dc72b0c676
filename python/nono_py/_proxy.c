/* _proxy.c — the filtering proxy from Python: _ProxyConfig (the native half of nono_py.ProxyConfig,
 * which validates through the library at construction) and ProxyHandle (a running proxy). */
#include "_proxy.h"

#include <string.h>

/* ------------------------------------------------------------------------------------------------
 * _ProxyConfig(allowed_hosts, allow_internal, bind_addr, bind_port, max_connections, allow_all_hosts,
 *              connect_only_hosts=())
 * Argument shapes are checked by nono_py.ProxyConfig; every pattern and address is validated here
 * by the library, so a bad one fails when the config is built, not when started. Combinations of
 * options are the library's to refuse (nono_proxy_start, -EINVAL): its message reaches Python as a
 * ValueError from start_proxy(), the same words the CLI prints.
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	nono_proxy_config *cfg;
} nono_py_proxy_cfg;

typedef int (*cfg_add_fn)(nono_proxy_config *, const char *, nono_error *);

static int cfg_add_all(nono_proxy_config *cfg, PyObject *seq_in, cfg_add_fn fn, const char *what)
{
	PyObject *seq = PySequence_Fast(seq_in, what);
	if (!seq)
		return -1;
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
		Py_ssize_t len;
		const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &len) : NULL;
		if (!s) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_TypeError, "%s entries must be str, not %.100s", what,
					     Py_TYPE(item)->tp_name);
			goto fail;
		}
		if ((size_t)len != strlen(s)) {
			PyErr_Format(PyExc_ValueError, "%s entry %R contains a NUL byte", what, item);
			goto fail;
		}
		nono_error err = {0};
		int rc = fn(cfg, s, &err);
		if (rc < 0) {
			nono_py_raise(rc, &err);
			goto fail;
		}
	}
	Py_DECREF(seq);
	return 0;
fail:
	Py_DECREF(seq);
	return -1;
}

/* One route from nono_py.RouteConfig._native_args(): (prefix, upstream, credential_key,
 * credential_value, inject_mode, inject_header, credential_format, path_pattern, path_replacement,
 * query_param_name, env_var, tls_ca, tls_client_cert, tls_client_key, ((method, path), ...)). */
static int cfg_add_route(nono_proxy_config *cfg, PyObject *t)
{
	nono_route_spec s;
	PyObject *rules;
	int mode;
	nono_route_spec_init(&s);
	if (!PyTuple_Check(t) ||
	    !PyArg_ParseTuple(t, "szzzizzzzzzzzzO:route", &s.prefix, &s.upstream, &s.credential_key,
			      &s.credential_value, &mode, &s.inject_header, &s.credential_format,
			      &s.path_pattern, &s.path_replacement, &s.query_param_name, &s.env_var, &s.tls_ca,
			      &s.tls_client_cert, &s.tls_client_key, &rules)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "routes entries must be route tuples");
		return -1;
	}
	s.inject_mode = (nono_inject_mode)mode;
	nono_error err = {0};
	int rc = nono_proxy_config_add_route(cfg, &s, &err);
	if (rc < 0) {
		nono_py_raise(rc, &err);
		return -1;
	}
	PyObject *seq = PySequence_Fast(rules, "endpoint_rules");
	if (!seq)
		return -1;
	for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
		const char *method, *path;
		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss:endpoint rule", &method, &path))
			rc = -1;
		else if ((rc = nono_proxy_config_add_endpoint_rule(cfg, s.prefix, method, path, &err)) < 0)
			nono_py_raise(rc, &err);
	}
	Py_DECREF(seq);
	return rc < 0 ? -1 : 0;
}

static int cfg_add_routes(nono_proxy_config *cfg, PyObject *routes)
{
	PyObject *seq = PySequence_Fast(routes, "routes");
	if (!seq)
		return -1;
	int rc = 0;
	for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++)
		rc = cfg_add_route(cfg, PySequence_Fast_GET_ITEM(seq, i));
	Py_DECREF(seq);
	return rc;
}

static PyObject *cfg_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"allowed_hosts", "allow_internal", "bind_addr", "bind_port",
				 "max_connections", "allow_all_hosts", "connect_only_hosts", "routes", NULL};
	PyObject *hosts, *internal, *connect_only = NULL, *routes = NULL;
	const char *addr;
	Py_ssize_t addr_len;
	long port, maxconn;
	int all;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOs#llp|OO:_ProxyConfig", kwlist, &hosts, &internal,
					 &addr, &addr_len, &port, &maxconn, &all, &connect_only, &routes))
		return NULL;
	if (port < 0 || port > 65535) {
		PyErr_Format(PyExc_ValueError, "bind_port must be in 0..65535 (0 = ephemeral), not %ld", port);
		return NULL;
	}
	if (maxconn < 1 || maxconn > 1000000) {
		PyErr_Format(PyExc_ValueError, "max_connections must be in 1..1000000, not %ld", maxconn);
		return NULL;
	}
	if ((size_t)addr_len != strlen(addr)) {
		PyErr_SetString(PyExc_ValueError, "bind_addr contains a NUL byte");
		return NULL;
	}
	nono_py_proxy_cfg *o = (nono_py_proxy_cfg *)type->tp_alloc(type, 0);
	if (!o)
		return NULL;
	o->cfg = nono_proxy_config_new();
	if (!o->cfg) {
		Py_DECREF(o);
		return PyErr_NoMemory();
	}
	nono_error err = {0};
	int rc = nono_proxy_config_set_listen(o->cfg, addr, (uint16_t)port, &err);
	if (rc < 0)
		goto fail_rc;
	if (cfg_add_all(o->cfg, hosts, nono_proxy_config_allow_host, "allowed_hosts") < 0 ||
	    cfg_add_all(o->cfg, internal, nono_proxy_config_allow_internal, "allow_internal") < 0 ||
	    (connect_only && cfg_add_all(o->cfg, connect_only, nono_proxy_config_allow_host_connect_only,
					 "connect_only_hosts") < 0) ||
	    (routes && cfg_add_routes(o->cfg, routes) < 0)) {
		Py_DECREF(o);
		return NULL;
	}
	nono_proxy_config_allow_all_hosts(o->cfg, all);
	nono_proxy_limits lim;
	memset(&lim, 0, sizeof lim); /* zero fields keep the library's defaults */
	lim.max_connections = (unsigned)maxconn;
	nono_proxy_config_set_limits(o->cfg, &lim);
	/* The library's combination rules, when the config is built (as ProxyConfig always has). */
	if ((rc = nono_proxy_config_check(o->cfg, &err)) < 0)
		goto fail_rc;
	return (PyObject *)o;
fail_rc:
	Py_DECREF(o);
	return nono_py_raise(rc, &err);
}

static void cfg_dealloc(nono_py_proxy_cfg *self)
{
	nono_proxy_config_free(self->cfg);
	NONO_PY_DEALLOC(self);
}

/* _set_external_proxy(address, bypass_hosts): nono_proxy_config_set_external_proxy and
 * nono_proxy_config_add_bypass_host (the library's messages; the address is never echoed). */
static PyObject *cfg_set_external_proxy(nono_py_proxy_cfg *self, PyObject *args)
{
	const char *addr;
	Py_ssize_t addr_len;
	PyObject *bypass;
	if (!PyArg_ParseTuple(args, "s#O:_set_external_proxy", &addr, &addr_len, &bypass))
		return NULL;
	if ((size_t)addr_len != strlen(addr)) {
		PyErr_SetString(PyExc_ValueError, "external proxy address contains a NUL byte");
		return NULL;
	}
	nono_error err = {0};
	int rc = nono_proxy_config_set_external_proxy(self->cfg, addr, &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	if (cfg_add_all(self->cfg, bypass, nono_proxy_config_add_bypass_host, "bypass_hosts") < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* _set_intercept_ca_dir(dir): nono_proxy_config_set_intercept_ca_dir. */
static PyObject *cfg_set_intercept_ca_dir(nono_py_proxy_cfg *self, PyObject *arg)
{
	PyObject *bytes = NULL;
	if (!PyUnicode_FSConverter(arg, &bytes))
		return NULL;
	nono_error err = {0};
	int rc = nono_proxy_config_set_intercept_ca_dir(self->cfg, PyBytes_AS_STRING(bytes), &err);
	Py_DECREF(bytes);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyMethodDef cfg_methods[] = {
	{"_set_external_proxy", (PyCFunction)cfg_set_external_proxy, METH_VARARGS, NULL},
	{"_set_intercept_ca_dir", (PyCFunction)cfg_set_intercept_ca_dir, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot cfg_slots[] = {
	{Py_tp_new, cfg_new},
	{Py_tp_dealloc, cfg_dealloc},
	{Py_tp_methods, cfg_methods},
	{Py_tp_doc, "Native proxy configuration; build it with nono_py.ProxyConfig."},
	{0, NULL},
};

PyType_Spec nono_py_proxy_cfg_spec = {
	.name = "nono_py._ProxyConfig",
	.basicsize = sizeof(nono_py_proxy_cfg),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = cfg_slots,
};

/* ------------------------------------------------------------------------------------------------
 * Audit events
 * ---------------------------------------------------------------------------------------------- */

/* Move everything in the proxy's ring into `list`. */
static int drain_into(nono_proxy *p, PyObject *list)
{
	nono_audit_event *ev = PyMem_Malloc(64 * sizeof *ev);
	if (!ev) {
		PyErr_NoMemory();
		return -1;
	}
	int rc = 0;
	size_t n;
	while (rc == 0 && (n = nono_audit_drain(nono_proxy_audit(p), ev, 64)) > 0)
		rc = nono_py_events_extend(list, ev, n);
	PyMem_Free(ev);
	return rc;
}

/* ------------------------------------------------------------------------------------------------
 * ProxyHandle
 * ---------------------------------------------------------------------------------------------- */

PyObject *nono_py_start_proxy(PyObject *module, PyObject *cfg)
{
	nono_py_state *st = PyModule_GetState(module);
	if (!PyObject_TypeCheck(cfg, st->proxy_cfg_type)) {
		PyErr_Format(PyExc_TypeError, "start_proxy() needs a ProxyConfig, not %.100s",
			     Py_TYPE(cfg)->tp_name);
		return NULL;
	}
	nono_py_proxy *h = (nono_py_proxy *)st->proxy_type->tp_alloc(st->proxy_type, 0);
	if (!h)
		return NULL;
	nono_error err = {0};
	nono_proxy *p = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = nono_proxy_start(((nono_py_proxy_cfg *)cfg)->cfg, &p, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(h);
		return nono_py_raise(rc, &err); /* -EINVAL (a refused combination) -> ValueError */
	}
	h->proxy = p;
	h->port = nono_proxy_port(p);
	return (PyObject *)h;
}

/* Keep undelivered events, then stop (joins the proxy thread: GIL released). Other threads see
 * self->proxy == NULL at once, before the stop starts. */
static int proxy_stop(nono_py_proxy *self)
{
	nono_proxy *p = self->proxy;
	if (!p)
		return 0;
	int rc = 0;
	if (!self->pending)
		self->pending = PyList_New(0);
	if (!self->pending || drain_into(p, self->pending) < 0)
		rc = -1;
	self->proxy = NULL;
	Py_BEGIN_ALLOW_THREADS
	nono_proxy_stop(p);
	Py_END_ALLOW_THREADS
	return rc;
}

static void proxy_dealloc(nono_py_proxy *self)
{
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	if (proxy_stop(self) < 0)
		PyErr_WriteUnraisable((PyObject *)self);
	PyErr_Restore(exc_type, exc_val, exc_tb);
	Py_CLEAR(self->pending);
	NONO_PY_DEALLOC(self);
}

static int running(nono_py_proxy *self)
{
	if (self->proxy)
		return 1;
	PyErr_SetString(PyExc_RuntimeError, "the proxy has been shut down");
	return 0;
}

static PyObject *proxy_shutdown(nono_py_proxy *self, PyObject *unused)
{
	(void)unused;
	if (proxy_stop(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *proxy_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	return Py_NewRef(self);
}

static PyObject *proxy_exit(nono_py_proxy *self, PyObject *args)
{
	(void)args;
	if (proxy_stop(self) < 0)
		return NULL;
	Py_RETURN_FALSE;
}

static PyObject *proxy_drain(nono_py_proxy *self, PyObject *unused)
{
	(void)unused;
	PyObject *list = self->pending ? self->pending : PyList_New(0);
	self->pending = NULL;
	if (list && self->proxy && drain_into(self->proxy, list) < 0)
		Py_CLEAR(list); /* events already taken from the ring are lost with the error */
	return list;
}

/* nono_proxy_env → vector; `extra` may be NULL. */
static char **proxy_env(nono_py_proxy *self, const char *const *extra)
{
	char **out = NULL;
	nono_error err = {0};
	int rc = nono_proxy_env(self->proxy, extra, &out, &err);
	if (rc < 0) {
		nono_py_raise(rc, &err);
		return NULL;
	}
	return out;
}

/* "NAME=VALUE" → (name, value) str pair (filesystem encoding: values can be arbitrary bytes). */
static PyObject *split_entry(const char *e)
{
	const char *eq = strchr(e, '=');
	if (!eq)
		eq = e + strlen(e);
	return Py_BuildValue("(NN)", PyUnicode_DecodeFSDefaultAndSize(e, eq - e),
			     PyUnicode_DecodeFSDefault(*eq ? eq + 1 : eq));
}

static PyObject *proxy_env_vars(nono_py_proxy *self, PyObject *unused)
{
	(void)unused;
	if (!running(self))
		return NULL;
	char **env = proxy_env(self, NULL);
	if (!env)
		return NULL;
	PyObject *d = PyDict_New();
	for (char **e = env; d && *e; e++) {
		PyObject *pair = split_entry(*e);
		if (!pair || PyDict_SetItem(d, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
			Py_CLEAR(d);
		Py_XDECREF(pair);
	}
	nono_strv_free(env);
	return d;
}

static PyObject *proxy_sandbox_env(nono_py_proxy *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"extra_env", NULL};
	PyObject *extra = Py_None, *list = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:sandbox_env", kwlist, &extra) || !running(self))
		return NULL;
	nono_py_strvec vec;
	if (nono_py_env_vec(extra, &vec) < 0)
		return NULL;
	nono_py_strvec_drop_proxy_vars(&vec);
	char **env = proxy_env(self, vec.v);
	if (env) {
		list = PyList_New(0);
		for (char **e = env; list && *e; e++) {
			PyObject *pair = split_entry(*e);
			if (!pair || PyList_Append(list, pair) < 0)
				Py_CLEAR(list);
			Py_XDECREF(pair);
		}
		nono_strv_free(env);
	}
	nono_py_strvec_clear(&vec);
	return list;
}

static PyObject *proxy_credential_env_vars(nono_py_proxy *self, PyObject *unused)
{
	(void)unused;
	if (!running(self))
		return NULL;
	char **env = NULL;
	nono_error err = {0};
	int rc = nono_proxy_credential_env(self->proxy, &env, &err);
	if (rc < 0)
		return nono_py_raise(rc, &err);
	PyObject *d = PyDict_New();
	for (char **e = env; d && *e; e++) {
		PyObject *pair = split_entry(*e);
		if (!pair || PyDict_SetItem(d, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
			Py_CLEAR(d);
		Py_XDECREF(pair);
	}
	nono_strv_free(env);
	return d;
}

static PyObject *proxy_port(nono_py_proxy *self, void *closure)
{
	(void)closure;
	return PyLong_FromLong(self->port);
}

static PyObject *proxy_url(nono_py_proxy *self, void *closure)
{
	(void)closure;
	if (!running(self))
		return NULL;
	return PyUnicode_FromString(nono_proxy_url(self->proxy));
}

static PyObject *proxy_running(nono_py_proxy *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->proxy != NULL);
}

static PyObject *proxy_dropped(nono_py_proxy *self, void *closure)
{
	(void)closure;
	if (!self->proxy)
		return PyLong_FromLong(0);
	return PyLong_FromUnsignedLongLong(nono_audit_dropped(nono_proxy_audit(self->proxy)));
}

static PyObject *proxy_ca_bundle(nono_py_proxy *self, void *closure)
{
	(void)closure;
	const char *b = self->proxy ? nono_proxy_ca_bundle(self->proxy) : NULL;
	if (!b)
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefault(b);
}

static PyObject *proxy_repr(nono_py_proxy *self)
{
	return PyUnicode_FromFormat("ProxyHandle(port=%u, %s)", (unsigned)self->port,
				    self->proxy ? "running" : "shut down");
}

static PyMethodDef proxy_methods[] = {
	{"env_vars", (PyCFunction)proxy_env_vars, METH_NOARGS,
	 "env_vars()\n--\n\nThe proxy variables for a child (HTTP_PROXY, …) as a dict."},
	{"sandbox_env", (PyCFunction)(void (*)(void))proxy_sandbox_env, METH_VARARGS | METH_KEYWORDS,
	 "sandbox_env(extra_env=None)\n--\n\n"
	 "extra_env (list of (name, value) pairs or a dict) merged with the proxy variables, which win."},
	{"credential_env_vars", (PyCFunction)proxy_credential_env_vars, METH_NOARGS,
	 "credential_env_vars()\n--\n\nThe credential routes' variables for a child as a dict: "
	 "{PREFIX}_BASE_URL for each route and the route's env_var holding this session's placeholder "
	 "(never the secret)."},
	{"drain_audit_events", (PyCFunction)proxy_drain, METH_NOARGS,
	 "drain_audit_events()\n--\n\nTake the decisions recorded since the last drain (list of dicts)."},
	{"shutdown", (PyCFunction)proxy_shutdown, METH_NOARGS,
	 "shutdown()\n--\n\nStop the proxy and close every connection (idempotent)."},
	{"__enter__", proxy_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)proxy_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef proxy_getset[] = {
	{"port", (getter)proxy_port, NULL, "the TCP port the proxy listens on", NULL},
	{"url", (getter)proxy_url, NULL, "http://nono:TOKEN@127.0.0.1:PORT", NULL},
	{"running", (getter)proxy_running, NULL, "False after shutdown()", NULL},
	{"audit_dropped", (getter)proxy_dropped, NULL, "events dropped because the ring was full", NULL},
	{"ca_bundle", (getter)proxy_ca_bundle, NULL,
	 "with intercept_ca_dir: the CA bundle (system roots + the session CA) the child trusts; else None",
	 NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot proxy_slots[] = {
	{Py_tp_dealloc, proxy_dealloc},
	{Py_tp_repr, proxy_repr},
	{Py_tp_methods, proxy_methods},
	{Py_tp_getset, proxy_getset},
	{Py_tp_doc, "A running filtering proxy (from start_proxy()); a context manager."},
	{0, NULL},
};

PyType_Spec nono_py_proxy_spec = {
	.name = "nono_py.ProxyHandle",
	.basicsize = sizeof(nono_py_proxy),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = proxy_slots,
};
