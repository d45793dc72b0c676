/* _proxy.h — the filtering proxy from Python (_proxy.c): the native half of nono_py.ProxyConfig and
 * ProxyHandle. Depends on _common.h only. */
#ifndef NONO_PY_PROXY_H
#define NONO_PY_PROXY_H

#include "_common.h"

/* A ProxyHandle. Other files read `proxy` (NULL once shut down: refuse to use it) and `port`. */
typedef struct {
	PyObject_HEAD
	nono_proxy *proxy;  /* NULL once shut down */
	uint16_t port;
	PyObject *pending;  /* events drained at shutdown (list) or NULL */
} nono_py_proxy;

extern PyType_Spec nono_py_proxy_cfg_spec;
extern PyType_Spec nono_py_proxy_spec;

/* _start_proxy(native_config): a running ProxyHandle. */
PyObject *nono_py_start_proxy(PyObject *module, PyObject *cfg);

#endif /* NONO_PY_PROXY_H */
