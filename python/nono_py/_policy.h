/* _policy.h — Policy, ResolvedPolicy and the policy functions (_policy.c) over libnono's policy
 * groups. Depends on _caps.h (resolve_groups fills a CapabilitySet). */
#ifndef NONO_PY_POLICY_H
#define NONO_PY_POLICY_H

#include "_caps.h"

extern PyType_Spec nono_py_policy_spec;
extern PyType_Spec nono_py_resolved_spec;
/* The module-level functions (load_policy, load_embedded_policy, embedded_policy_json,
 * validate_deny_overlaps, apply_unlink_overrides), NULL-terminated: _nono.c adds them at init. */
extern PyMethodDef nono_py_policy_functions[];

#endif /* NONO_PY_POLICY_H */
