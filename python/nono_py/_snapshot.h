/* _snapshot.h — the native snapshot store (_snapshot.c): _SnapshotStore. Depends on _common.h. */
#ifndef NONO_PY_SNAPSHOT_H
#define NONO_PY_SNAPSHOT_H

#include "_common.h"

extern PyType_Spec nono_py_snap_spec;

#endif /* NONO_PY_SNAPSHOT_H */
