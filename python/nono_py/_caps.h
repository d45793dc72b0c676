/* _caps.h — CapabilitySet, QueryContext and AccessMode (_caps.c), SandboxState (_sandbox_state.c):
 * thin wrappers over nono_caps. Depends on _common.h (_caps.c also on _proxy.h, for proxy_only's
 * handle). */
#ifndef NONO_PY_CAPS_H
#define NONO_PY_CAPS_H

#include "_common.h"

typedef struct {
	PyObject_HEAD
	nono_caps *caps;
	PyObject *proxy; /* ProxyHandle set by proxy_only(), or NULL */
} nono_py_caps;

extern PyType_Spec nono_py_caps_spec;
extern PyType_Spec nono_py_query_spec;
extern PyType_Spec nono_py_state_spec; /* _sandbox_state.c */
extern PyStructSequence_Desc nono_py_fs_cap_desc;

/* A new CapabilitySet owning `caps` (taken even on failure; NULL `caps` -> MemoryError). */
PyObject *nono_py_caps_wrap(nono_py_state *st, nono_caps *caps);

/* Create the AccessMode IntEnum (member names from nono_access_name), cache its members in the
 * state and add it to module `m`. Returns 0 or -1 (exception set). */
int nono_py_access_mode_init(PyObject *m, nono_py_state *st);

#endif /* NONO_PY_CAPS_H */
