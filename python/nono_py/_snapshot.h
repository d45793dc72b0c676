/* _snapshot.h — the native snapshot store (_snapshot.c: _SnapshotStore) and session ledger
 * (_ledger.c: _Ledger). Depends on _common.h. */
#ifndef NONO_PY_SNAPSHOT_H
#define NONO_PY_SNAPSHOT_H

#include "_common.h"

extern PyType_Spec nono_py_snap_spec;
extern PyType_Spec nono_py_ledger_spec; /* _ledger.c: _Ledger */

#endif /* NONO_PY_SNAPSHOT_H */
