/* _exec.h — running under a capability set (_exec.c): sandboxed_exec and apply. Depends on
 * _common.h, _caps.h and _proxy.h. */
#ifndef NONO_PY_EXEC_H
#define NONO_PY_EXEC_H

#include "_common.h"

extern PyStructSequence_Desc nono_py_exec_result_desc;

/* Module-level functions (the module passed as `module`). */
PyObject *nono_py_sandboxed_exec(PyObject *module, PyObject *args, PyObject *kw);
PyObject *nono_py_apply(PyObject *module, PyObject *caps);

#endif /* NONO_PY_EXEC_H */
