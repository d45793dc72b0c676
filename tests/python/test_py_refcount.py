"""Reference counting and memory: 10,000 calls of each representative method (fewer for the ones that
fork) must not grow the Python heap (tracemalloc), the C heap (glibc mallinfo2, all arenas), the
reference counts of the objects passed in, or the open file descriptors. A release build has no
sys.gettotalrefcount, hence these measurements."""
import ctypes
import gc
import os
import sys
import tracemalloc

import pytest

from nono_py_testlib import ASAN_BUILD, make_base_caps

N = 10_000
PY_BOUND = 64 * 1024   # bytes of Python heap growth allowed over N iterations (< 7 bytes a call)
C_BOUND = 256 * 1024   # bytes of C heap growth allowed over N iterations (< 27 bytes a call)
# Calls that fork (sandboxed_exec, the support probe): ~4 ms each here, ~80 ms under ASan (fork
# copies ASan's shadow mappings). Under ASan these loops check memory safety, not growth.
N_FORK = 200 if ASAN_BUILD else 2000


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def c_heap_in_use():
    """Bytes allocated with malloc and not freed (every arena, mmapped chunks included)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    m = libc.mallinfo2()
    return m.uordblks + m.hblkhd


def measure(fn, n=N):
    """(Python heap growth, C heap growth) in bytes over n calls, after a warm-up. tracemalloc's own
    bookkeeping is malloc'd too, but only grows with the Python heap, which is bounded anyway."""
    tracemalloc.start()
    for _ in range(max(n // 10, 50)):  # warm caches, free lists, interned strings
        fn()
    gc.collect()
    p0, c0 = tracemalloc.get_traced_memory()[0], c_heap_in_use()
    for _ in range(n):
        fn()
    gc.collect()
    p1, c1 = tracemalloc.get_traced_memory()[0], c_heap_in_use()
    tracemalloc.stop()
    return p1 - p0, c1 - c0


def open_fds():
    """Open descriptors. No grace period: nono_proxy_stop closes the resolver's eventfd itself."""
    return len(os.listdir("/proc/self/fd"))


def check(fn, n=N, watch=()):
    before = [sys.getrefcount(o) for o in watch]
    fn()
    fds = open_fds()
    py_growth, c_growth = measure(fn, n)
    after = [sys.getrefcount(o) for o in watch]
    assert after == before, f"reference counts changed: {before} -> {after}"
    assert open_fds() <= fds, "file descriptors leaked"
    assert py_growth < PY_BOUND, f"Python heap grew {py_growth} bytes over {n} calls"
    if not ASAN_BUILD:  # ASan replaces malloc: mallinfo2 is meaningless there (ASan checks instead)
        assert c_growth < C_BOUND, f"C heap grew {c_growth} bytes over {n} calls"


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    return str(tmp_path / "d"), str(tmp_path / "f"), str(tmp_path / "missing")


def test_measurement_detects_a_python_leak():
    """The harness itself: a deliberate leak of one small Python object a call is caught."""
    keep = []
    py_growth, _ = measure(lambda: keep.append(object()), N)
    assert py_growth >= PY_BOUND


@pytest.mark.skipif(ASAN_BUILD, reason="ASan replaces malloc: mallinfo2 does not see its heap")
def test_measurement_detects_a_c_leak():
    """The harness itself: 64 bytes malloc'd a call and never freed (by C, invisible to tracemalloc,
    as a leak in the extension would be) are caught by the C heap measurement alone."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    held = []
    try:
        _, c_growth = measure(lambda: held.append(libc.malloc(64)), N)
    finally:
        for p in held:
            libc.free(p)
    assert None not in held
    assert c_growth >= C_BOUND, f"a leak of 64 bytes a call grew the C heap by only {c_growth} bytes"


def test_capability_set_methods(nono_py, paths):
    A = nono_py.AccessMode
    d, f, missing = paths

    def once():
        caps = nono_py.CapabilitySet()
        caps.allow_path(d, A.READ)
        caps.allow_file(f, A.READ_WRITE)
        caps.allow_unix_socket(d)
        caps.fs_capabilities()
        caps.path_covered(d + "/x")
        caps.summary()
        repr(caps)
        caps.is_network_blocked
        caps.network_mode
        caps.unix_sockets
        caps.deduplicate()
        caps.block_network()
        caps.proxy_port

    check(once, watch=(d, f, A.READ, A.READ_WRITE, nono_py.CapabilitySet))


def test_error_paths(nono_py, paths):
    A = nono_py.AccessMode
    d, f, missing = paths
    caps = nono_py.CapabilitySet()
    bad = d + "\0x"

    def once():
        for call, exc in ((lambda: caps.allow_path(missing, A.READ), FileNotFoundError),
                          (lambda: caps.allow_path(f, A.READ), ValueError),
                          (lambda: caps.allow_file(d, A.READ), ValueError),
                          (lambda: caps.allow_path(bad, A.READ), ValueError),
                          (lambda: caps.allow_path(d, 1), TypeError),
                          (lambda: nono_py.SandboxState.from_json("{bad"), ValueError),
                          (lambda: nono_py.sandboxed_exec(caps, []), ValueError),
                          (lambda: nono_py.sandboxed_exec(caps, ["/bin/true"], env=[("LD_PRELOAD", "x")]),
                           ValueError),
                          (lambda: nono_py.sandboxed_exec(caps, ["/bin/true"], timeout_secs=-1), ValueError)):
            try:
                call()
            except exc:
                pass
            else:
                raise AssertionError("no exception")

    check(once, watch=(caps, d, f, missing, bad))


def test_query_state_support(nono_py, paths):
    A = nono_py.AccessMode
    d, f, _ = paths
    caps = nono_py.CapabilitySet()
    caps.allow_path(d, A.READ)
    js = nono_py.SandboxState.from_caps(caps).to_json()

    def once():
        q = nono_py.QueryContext(caps)
        q.query_path(d, A.WRITE)
        q.query_path("/etc", A.READ)
        q.query_network()
        nono_py.SandboxState.from_caps(caps).to_json()
        nono_py.SandboxState.from_json(js).to_caps()

    check(once, watch=(caps, js, d, A.READ, A.WRITE))


def test_support_info(nono_py):
    # each probe forks a short-lived child (~2 ms): fewer calls
    check(lambda: (nono_py.support_info(), nono_py.is_supported()), n=N_FORK // 2)


def test_proxy_handle_methods(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig(allowed_hosts=["example.com"])) as proxy:
        caps = nono_py.CapabilitySet()
        extra = [("A", "1")]

        def once():
            proxy.env_vars()
            proxy.sandbox_env(extra)
            proxy.drain_audit_events()
            proxy.port
            proxy.url
            repr(proxy)
            caps.proxy_only(proxy)
            caps.block_network()
            nono_py.ProxyConfig(allowed_hosts=["a.example", "*.b.example:443"],
                                routes=[nono_py.RouteConfig("/r", "https://r.example")])
            try:
                nono_py.ProxyConfig(allowed_hosts=["bad host"])
            except ValueError:
                pass

        check(once, watch=(proxy, caps, extra))


def test_proxy_start_stop(nono_py):
    cfg = nono_py.ProxyConfig()

    def once():
        with nono_py.start_proxy(cfg) as p:
            p.drain_audit_events()

    check(once, n=1000, watch=(cfg, cfg._native))


def test_sandboxed_exec(nono_py):
    caps = make_base_caps(nono_py)
    argv = ["/bin/true"]
    # ~4 ms a sandboxed fork+exec here: 2,000 calls (a leaked result or caps copy is >100 bytes a call)
    check(lambda: nono_py.sandboxed_exec(caps, argv), n=N_FORK, watch=(caps, argv, argv[0]))


def test_sandboxed_exec_proxy_only(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        argv = ["/bin/true"]
        env = [("X", "1")]
        check(lambda: nono_py.sandboxed_exec(caps, argv, env=env, timeout_secs=30), n=N_FORK // 2,
              watch=(caps, proxy, argv, env))
