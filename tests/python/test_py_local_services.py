"""nono_py and local services (issue 12): a proxy-only child reaches an allow_internal loopback
service through the proxy with no NO_PROXY tricks, by 127.0.0.1 and by localhost (the proxy's
internal grant matches resolved addresses too). NO_PROXY in the child lists exactly what the
capability set lets it reach directly: nothing here."""
from nono_py_testlib import PYTHON, LoopbackServer, make_base_caps

CHILD = (
    "import os, sys, urllib.request as u\n"
    "print(repr(os.environ.get('NO_PROXY')))\n"
    "for url in sys.argv[1:]:\n"
    "    print(u.urlopen(url, timeout=10).read().decode(), end='')\n"
)


def test_proxy_only_child_reaches_internal_service_through_proxy(nono_py):
    srv = LoopbackServer(body=b"hi\n")
    try:
        cfg = nono_py.ProxyConfig(allow_internal=[f"localhost:{srv.port}"])
        with nono_py.start_proxy(cfg) as proxy:
            caps = make_base_caps(nono_py)
            caps.proxy_only(proxy)
            r = nono_py.sandboxed_exec(caps, [PYTHON, "-c", CHILD, f"http://127.0.0.1:{srv.port}/a",
                                              f"http://localhost:{srv.port}/b"], timeout_secs=60)
            out = r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout
            assert r.exit_code == 0, (out, r.stderr)
            assert out == "''\nhi\nhi\n"
            assert srv.accepts == 2  # both went through the proxy, which dialled the server
    finally:
        srv.close()
