"""A client that pipelines many plain-HTTP requests on one kept-alive connection, to an upstream that
answers before it reads, must not make the proxy recurse until its thread's stack runs out: each next
request starts from the loop (review 2026-12-04, proxy F1). The proxy runs with a small stack limit
(glibc sizes thread stacks from RLIMIT_STACK) so the unbounded recursion would crash it quickly; the
old code died after ~10 responses with a 64 KiB stack. Loopback only."""
import os
import pathlib
import resource
import socket
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("NONO_BUILD_DIR", ROOT / "build"))
NONO = BUILD / "src" / "cli" / "nono"
UPSTREAM = BUILD / "tests" / "integration" / "helpers" / "fast_upstream"
N = 400
STACK = 256 * 1024


def small_stack():
    resource.setrlimit(resource.RLIMIT_STACK, (STACK, STACK))


def test_pipelined_requests_do_not_recurse():
    if not UPSTREAM.exists():
        pytest.fail(f"{UPSTREAM} is missing: build first")
    up = subprocess.Popen([str(UPSTREAM), "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
    proxy = None
    try:
        port = int(up.stdout.readline())
        proxy = subprocess.Popen([str(NONO), "proxy", "-q", "--allow-internal", f"127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=small_stack)
        url = proxy.stdout.readline().strip()  # http://nono:TOKEN@127.0.0.1:PPORT
        token = url.split("nono:", 1)[1].split("@", 1)[0]
        pport = int(url.rsplit(":", 1)[1])
        import base64
        auth = base64.b64encode(f"nono:{token}".encode()).decode()
        one = (f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Proxy-Authorization: Basic {auth}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", pport), timeout=20) as s:
            threading.Thread(target=lambda: s.sendall(one * N), daemon=True).start()
            got, deadline = b"", time.monotonic() + 60
            while got.count(b"HTTP/1.1 200") < N and time.monotonic() < deadline:
                d = s.recv(1 << 16)
                if not d:
                    break
                got += d
        assert proxy.poll() is None, f"the proxy died: rc={proxy.returncode}"
        assert got.count(b"HTTP/1.1 200") == N, got[-300:]
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait(timeout=10)
        up.stdin.close()
        up.wait(timeout=10)
