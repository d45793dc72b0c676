"""ProxyConfig / RouteConfig / start_proxy, and proxy-only children reaching the proxy and nothing else."""
import dataclasses
import errno
import json
import os
import shutil
import subprocess

import pytest

from nono_py_testlib import (HERE, PYTHON, check_proxy_only, child_env, make_base_caps,
                             proxy_only_scenario, run_probe, run_py)

DENIED = (errno.EACCES, errno.EPERM)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "NO_PROXY", "no_proxy")


def test_proxy_config_defaults_and_validation(nono_py):
    P = nono_py.ProxyConfig
    c = P()
    assert (c.allowed_hosts, c.routes, c.bind_addr, c.bind_port, c.max_connections, c.allow_all_hosts) == (
        [], (), "127.0.0.1", 0, 256, False)  # allowed_hosts is a list, as in nono-py
    c = P(allowed_hosts=["example.com", "*.example.org:443"], max_connections=8)
    assert c.allowed_hosts == ["example.com", "*.example.org:443"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.bind_port = 1
    assert dataclasses.asdict(c)["max_connections"] == 8
    c2 = dataclasses.replace(c, bind_port=0, max_connections=9)
    assert c2.max_connections == 9 and c2._native is not c._native and c2 != c
    assert P(allowed_hosts=["example.com"]) == P(allowed_hosts=("example.com",))
    with pytest.raises(ValueError, match="allow_all_hosts"):
        P(allowed_hosts=["example.com"], allow_all_hosts=True)
    assert P(allow_all_hosts=True).allow_all_hosts is True
    with pytest.raises(TypeError):
        P(allowed_hosts="example.com")  # a str is not a list of hosts
    for bad in ("bad host!", "", "*.", "exa mple.com", "host:99999", "a\0b"):
        with pytest.raises(ValueError):
            P(allowed_hosts=[bad])
    # the library's answers, the same as the CLI's (issue 12)
    for bad, why in (("https://api.example.com/", "give a host, not a URL"),
                     ("b\u00fccher.example", "punycode"), ("*.com", "public suffix"),
                     ("*.co.uk", "public suffix"), ("2001:db8::1:443", "bracket")):
        with pytest.raises(ValueError, match=why):
            P(allowed_hosts=[bad])
    assert P(allowed_hosts=["2001:db8::1"]).allowed_hosts == ["2001:db8::1"]
    with pytest.raises(ValueError):
        P(bind_port=70000)
    with pytest.raises(ValueError):
        P(bind_port=-1)
    with pytest.raises(ValueError):
        P(max_connections=0)
    with pytest.raises(ValueError):
        P(bind_addr="localhost")  # must be an IP literal
    with pytest.raises(TypeError):
        P(bind_port="8080")
    with pytest.raises(ValueError):
        P(allow_internal=["not a host"])
    assert P(allow_internal=["127.0.0.1:8080"]).allow_internal == ("127.0.0.1:8080",)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a private netns")
def test_metadata_endpoint_can_never_be_allowed():
    # Names a non-loopback address, so it runs in a network namespace of its own (no traffic either way).
    code = ("import nono_py\n"
            "for hp in ['169.254.169.254:80', '100.100.100.200:80', 'metadata.google.internal:80']:\n"
            "    try:\n"
            "        nono_py.ProxyConfig(allow_internal=[hp])\n"
            "    except PermissionError as e:\n"
            "        assert 'metadata' in str(e), e\n"
            "    else:\n"
            "        raise SystemExit('allowed ' + hp)\n"
            "print('refused all')\n")
    r = subprocess.run(["unshare", "-rn", PYTHON, "-c", code], capture_output=True, text=True,
                       env=child_env(), timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "refused all", r.stderr


def test_route_config_validation(nono_py):
    R = nono_py.RouteConfig
    r = R("/openai", "https://api.openai.example", credential_key="OPENAI_API_KEY")
    assert (r.upstream_host, r.upstream_port) == ("api.openai.example", 443)
    assert R("svc", "http://svc.example:8080/v1").upstream_port == 8080
    assert r == R("/openai", "https://api.openai.example", credential_key="OPENAI_API_KEY")
    assert len({r, r}) == 1
    for args, kw in [(("", "https://x.example"), {}),
                     (("/a/../b", "https://x.example"), {}),
                     (("a b", "https://x.example"), {}),
                     (("/a", "ftp://x.example"), {}),
                     (("/a", "https://user:pw@x.example"), {}),
                     (("/a", "https://x.example/?q=1"), {}),
                     (("/a", "https://"), {}),
                     (("/a", "https://x.example:99999"), {}),
                     (("/a", "https://[::1]:443"), {}),
                     (("/a", "https://x.example"), {"credential_key": ""}),
                     (("/a", "https://x.example"), {"inject_header": "Bad Header"}),
                     (("/a", "https://x.example"), {"credential_format": "Bearer"}),
                     (("/a", "https://x.example\r\nX: y"), {})]:
        with pytest.raises(ValueError):
            R(*args, **kw)
    with pytest.raises(TypeError):
        R(1, "https://x.example")
    cfg = nono_py.ProxyConfig(routes=[r, R("/b", "https://b.example")])
    assert cfg.routes == (r, R("/b", "https://b.example"))
    with pytest.raises(ValueError, match="duplicate"):
        nono_py.ProxyConfig(routes=[r, R("openai/", "https://other.example")])
    with pytest.raises(TypeError):
        nono_py.ProxyConfig(routes=["/openai"])


def test_handle_env_and_lifecycle(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig(allowed_hosts=["example.com"])) as p:
        assert isinstance(p, nono_py.ProxyHandle) and p.running
        assert 0 < p.port < 65536
        assert f"ProxyHandle(port={p.port}, running)" == repr(p)
        ev = p.env_vars()
        assert isinstance(ev, dict)
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "NO_PROXY"):
            assert k in ev, k
        assert ev["HTTP_PROXY"] == p.url and f"127.0.0.1:{p.port}" in p.url
        assert ev["NODE_USE_ENV_PROXY"] == "1"
        se = p.sandbox_env()
        assert isinstance(se, list) and all(isinstance(t, tuple) and len(t) == 2 for t in se)
        assert dict(se) == ev
        se = dict(p.sandbox_env(extra_env=[("FOO", "1")]))
        assert se["FOO"] == "1" and se["HTTP_PROXY"] == p.url
        # nono-py's contract: the handle's proxy variables win over the caller's (the C API and
        # the CLI refuse such a clash instead: test_proxy.py, test_cli.py)
        mine = p.env_vars()
        for name in ("HTTP_PROXY", "no_proxy", "NODE_USE_ENV_PROXY"):
            got = dict(p.sandbox_env(extra_env=[("FOO", "1"), (name, "http://evil.example:1")]))
            assert got[name] == mine[name] and got["FOO"] == "1"
        assert dict(p.sandbox_env({"BAR": "2"}))["BAR"] == "2"
        with pytest.raises(ValueError, match="LD_PRELOAD"):
            p.sandbox_env(extra_env=[("LD_PRELOAD", "/tmp/x.so")])
        with pytest.raises(ValueError):
            p.sandbox_env(extra_env=[("A=B", "1")])
        assert p.drain_audit_events() == []
        port = p.port
    assert not p.running and p.port == port
    assert repr(p) == f"ProxyHandle(port={port}, shut down)"
    with pytest.raises(RuntimeError, match="shut down"):
        p.env_vars()
    with pytest.raises(RuntimeError, match="shut down"):
        p.sandbox_env()
    p.shutdown()  # idempotent
    assert p.drain_audit_events() == []
    with pytest.raises(TypeError):
        nono_py.start_proxy({"allowed_hosts": []})


def test_bind_port_in_use(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig()) as p:
        with pytest.raises(RuntimeError) as e:
            nono_py.start_proxy(nono_py.ProxyConfig(bind_port=p.port))
        assert e.value.errno == errno.EADDRINUSE
        assert str(p.port) in str(e.value)  # the library's message, naming the port


def test_proxy_only_child_reaches_proxy_and_nothing_else(nono_py):
    check_proxy_only(proxy_only_scenario(nono_py))


def test_proxy_only_with_timeout(nono_py):
    check_proxy_only(proxy_only_scenario(nono_py, timeout_secs=120))


def test_proxy_only_inherit_env_without_parent_proxy_vars(nono_py, monkeypatch):
    """The proxy variables come from the handle, not from os.environ: the child gets them with the
    parent's deleted (inherit_env or not), a bogus inherited value is overridden, and one given
    explicitly in env loses to the handle's (nono-py's contract)."""
    for k in PROXY_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)  # the ASan re-run's: inherit_env refuses it
    check_proxy_only(proxy_only_scenario(nono_py, inherit_env=True))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    check_proxy_only(proxy_only_scenario(nono_py, inherit_env=True))
    # a caller-supplied value loses to the handle's (nono-py's contract): the child still gets the
    # proxy's own variables
    check_proxy_only(proxy_only_scenario(nono_py, env=[("HTTP_PROXY", "http://127.0.0.1:9")]))


def _run_scenario_in_subprocess(env_extra):
    code = ("import json, sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "import nono_py\n"
            "from nono_py_testlib import proxy_only_scenario\n"
            "print(json.dumps(proxy_only_scenario(nono_py)))\n")
    r = run_py(code, env_extra=env_extra, timeout=180)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_proxy_only_capped_landlock_abi_3(nono_py):
    """NONO_MAX_LANDLOCK_ABI=3: no Landlock TCP rules (ABI 4), so the supervisor enforces proxy-only.
    The library reads the variable at its first query, hence a fresh interpreter."""
    res = _run_scenario_in_subprocess({"NONO_MAX_LANDLOCK_ABI": "3"})
    assert res["landlock_abi"] == min(3, nono_py.support_info().landlock_abi_kernel)
    assert res["report"]["supervisor"] is True and res["report"]["landlock_tcp"] is False, res
    assert res["report"]["net_enforced"] == "proxy-only", res
    check_proxy_only(res)


def test_proxy_only_capped_landlock_abi_1():
    res = _run_scenario_in_subprocess({"NONO_MAX_LANDLOCK_ABI": "1"})
    assert res["landlock_abi"] == 1
    check_proxy_only(res)


def test_block_network_keeps_even_the_proxy_out(nono_py, loopback_server):
    cfg = nono_py.ProxyConfig(allow_internal=[f"127.0.0.1:{loopback_server.port}"])
    with nono_py.start_proxy(cfg) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        caps.block_network()  # the later call wins
        assert caps.network_mode == "blocked"
        env = proxy.sandbox_env()
        r, out = run_probe(nono_py, caps, f"tcp:127.0.0.1:{proxy.port}",
                           f"proxy_get:http://127.0.0.1:{loopback_server.port}/", env=env)
        for k, v in out.items():
            assert v["ok"] is False and v["errno"] in DENIED, (k, v)
        assert proxy.drain_audit_events() == []
        assert loopback_server.accepts == 0


def test_proxy_only_reaches_the_proxy_address_alone(nono_py):
    """Only the proxy's own loopback address is reachable: a proxy on 127.0.0.1 does not open
    [::1] at the same port to whoever listens there, and a proxy on ::1 is reachable (review
    2026-12-04 F2)."""
    import socket
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        other = socket.socket(socket.AF_INET6)
        other.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        other.bind(("::1", proxy.port))  # another program, same port, other loopback address
        other.listen(4)
        with other:
            socket.create_connection(("::1", proxy.port), timeout=5).close()  # reachable unsandboxed
            caps = make_base_caps(nono_py)
            caps.proxy_only(proxy)
            v4, v6 = f"tcp:127.0.0.1:{proxy.port}", f"tcp:::1:{proxy.port}"
            r, out = run_probe(nono_py, caps, v4, v6)
            assert out[v4]["ok"] is True, out
            assert out[v6]["ok"] is False and out[v6]["errno"] == errno.EACCES, out
    with nono_py.start_proxy(nono_py.ProxyConfig(bind_addr="::1")) as proxy6:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy6)
        v4, v6 = f"tcp:127.0.0.1:{proxy6.port}", f"tcp:::1:{proxy6.port}"
        r, out = run_probe(nono_py, caps, v6, v4)
        assert out[v6]["ok"] is True, out
        assert out[v4]["ok"] is False and out[v4]["errno"] == errno.EACCES, out


def test_exec_refuses_a_shut_down_proxy(nono_py):
    caps = make_base_caps(nono_py)
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        caps.proxy_only(proxy)
        assert nono_py.sandboxed_exec(caps, ["/bin/true"]).exit_code == 0
    with pytest.raises(RuntimeError, match="shut down"):
        nono_py.sandboxed_exec(caps, ["/bin/true"])
    with pytest.raises(RuntimeError, match="shut down"):
        nono_py.apply(caps)


def test_proxy_only_timeout_never_hangs(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", "sleep 60 & sleep 60"], timeout_secs=1)
        assert r.exit_code == 124 and r.timed_out


def _route_probe(*actions, cfg="nono_py.ProxyConfig(routes=[nono_py.RouteConfig('/api', 'https://api.route.test')])"):
    """proxy-only child of a proxy (`cfg`: a Python expression), in a network namespace of its own: an
    allowed destination makes the proxy resolve a name, and that query must not leave the machine."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private netns")
    code = ("import json, sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "import nono_py\n"
            "from nono_py_testlib import make_base_caps, run_probe\n"
            f"cfg = {cfg}\n"
            "with nono_py.start_proxy(cfg) as p:\n"
            "    caps = make_base_caps(nono_py); caps.proxy_only(p)\n"
            f"    r, out = run_probe(nono_py, caps, *{list(actions)!r})\n"
            "    print(json.dumps({'out': out, 'events': p.drain_audit_events()}))\n")
    r = subprocess.run(["unshare", "-rn", "sh", "-c", f'ip link set lo up && exec {PYTHON} -c "$0"', code],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    return res["out"], {(e["mode"], e["target"], e["port"]): e for e in res["events"]}


def test_route_upstream_allowed_for_connect():
    out, ev = _route_probe("proxy_connect:api.route.test:443", "proxy_connect:other.route.test:443")
    assert out["proxy_connect:other.route.test:443"]["status"] == 403
    assert ev[("connect", "other.route.test", 443)]["decision"] == "deny"
    # allowed by policy: the proxy tried to resolve it (nothing resolves in the namespace: 502)
    assert out["proxy_connect:api.route.test:443"]["status"] == 502
    e = ev[("connect", "api.route.test", 443)]
    assert e["decision"] == "allow" and "api.route.test" in e["reason"], e


def test_route_upstream_not_allowed_for_plain_http():
    """A route's upstream is added with nono_proxy_config_allow_host_connect_only: plain HTTP to it
    is refused by policy (403 connect-only, audited), while CONNECT to it passes the policy."""
    out, ev = _route_probe("proxy_get:http://api.route.test:443/", "proxy_connect:api.route.test:443")
    assert out["proxy_get:http://api.route.test:443/"]["status"] == 403
    e = ev[("http", "api.route.test", 443)]
    assert e["decision"] == "deny" and "connect-only" in e["reason"], e
    # CONNECT is allowed by policy (nothing resolves in the namespace: 502 after the lookup)
    assert out["proxy_connect:api.route.test:443"]["status"] == 502
    assert ev[("connect", "api.route.test", 443)]["decision"] == "allow"


def test_route_upstream_also_in_allowed_hosts_allows_plain_http():
    """The same host both as a route upstream (CONNECT-only) and in allowed_hosts: the wider grant
    wins, plain HTTP passes the policy (then fails the lookup: 502, not 403)."""
    out, ev = _route_probe("proxy_get:http://api.route.test:443/", cfg=(
        "nono_py.ProxyConfig(allowed_hosts=['api.route.test'], "
        "routes=[nono_py.RouteConfig('/api', 'https://api.route.test')])"))
    assert out["proxy_get:http://api.route.test:443/"]["status"] == 502
    assert ev[("http", "api.route.test", 443)]["decision"] == "allow"


def test_shutdown_leaves_no_threads_then_apply_works(nono_py):
    """shutdown() returns only when the proxy's threads are gone (the loop thread and every resolver
    worker not inside a lookup): right after it the interpreter is single-threaded again, so apply()
    is not refused with EBUSY. A lookup (localhost) runs first in each round, so workers were busy."""
    code = ("import sys, json, socket\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "import nono_py\n"
            "from nono_py_testlib import make_base_caps, run_probe\n"
            "def threads():\n"
            "    return int([l for l in open('/proc/self/status') if l.startswith('Threads:')][0].split()[1])\n"
            "ls = socket.socket(); ls.bind(('127.0.0.1', 0)); ls.listen(64)\n"
            "port = ls.getsockname()[1]\n"
            "before, during, after = threads(), [], []\n"
            "for _ in range(10):\n"
            "    with nono_py.start_proxy(nono_py.ProxyConfig(allow_internal=[f'localhost:{port}'])) as p:\n"
            "        during.append(threads())\n"
            "        c = socket.create_connection(('127.0.0.1', p.port), timeout=10)\n"
            "        tok = p.env_vars()['HTTP_PROXY'].split('@')[0].split(':')[-1]\n"
            "        import base64; a = base64.b64encode(f'nono:{tok}'.encode()).decode()\n"
            "        c.sendall(f'CONNECT localhost:{port} HTTP/1.1\\r\\nProxy-Authorization: Basic {a}\\r\\n\\r\\n'.encode())\n"
            "        status = c.recv(100).split(b'\\r\\n')[0].decode(); c.close()\n"
            "        ls.accept()[0].close()\n"
            "    after.append(threads())\n"
            "ls.close()\n"
            "try:\n"
            "    nono_py.apply(make_base_caps(nono_py)); applied = 'ok'\n"
            "except RuntimeError as e:\n"
            "    applied = str(e)\n"
            "print(json.dumps({'before': before, 'during': during, 'after': after, 'status': status,\n"
            "                  'applied': applied}))\n")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["before"] == 1 and res["status"] == "HTTP/1.1 200 Connection established", res
    assert res["during"] == [1 + 1 + 4] * 10, res  # the loop thread + NP_RESOLVER_THREADS workers
    assert res["after"] == [1] * 10, res
    assert res["applied"] == "ok", res


def test_drain_audit_events_keeps_events_across_shutdown(nono_py):
    caps = make_base_caps(nono_py)
    proxy = nono_py.start_proxy(nono_py.ProxyConfig())
    caps.proxy_only(proxy)
    r, out = run_probe(nono_py, caps, "proxy_connect:denied.invalid:443")
    assert out["proxy_connect:denied.invalid:443"]["status"] == 403
    proxy.shutdown()
    ev = proxy.drain_audit_events()
    assert [(e["decision"], e["target"], e["port"]) for e in ev if e["source"] == "proxy"] == [
        ("deny", "denied.invalid", 443)]
    assert proxy.drain_audit_events() == []


def test_threads_share_one_proxy(nono_py, loopback_server):
    """Several threads run proxy-only children through one proxy while another drains its events."""
    import threading
    cfg = nono_py.ProxyConfig(allow_internal=[f"127.0.0.1:{loopback_server.port}"])
    statuses, errors, drained = [], [], []
    with nono_py.start_proxy(cfg) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        done = threading.Event()

        def worker():
            try:
                for _ in range(3):
                    _, out = run_probe(nono_py, caps, f"proxy_get:http://127.0.0.1:{loopback_server.port}/")
                    statuses.append(next(iter(out.values()))["status"])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def drainer():
            while not done.is_set():
                drained.extend(proxy.drain_audit_events())
                done.wait(0.01)

        d = threading.Thread(target=drainer)
        d.start()
        ws = [threading.Thread(target=worker) for _ in range(4)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        done.set()
        d.join()
        drained.extend(proxy.drain_audit_events())
    assert errors == [] and statuses == [200] * 12
    allows = [e for e in drained if e["decision"] == "allow" and e["port"] == loopback_server.port]
    # each request is recorded when decided and again on close (with its byte counts)
    assert len([e for e in allows if e["bytes_down"] > 0]) == 12, allows
    assert loopback_server.accepts == 12


def test_shutdown_while_a_child_runs(nono_py, tmp_path):
    """shutdown() from one thread while sandboxed_exec runs in another: the child loses the proxy
    (connection refused), the exec finishes normally, later execs are refused."""
    import threading
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    proxy = nono_py.start_proxy(nono_py.ProxyConfig())
    caps = make_base_caps(nono_py)
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)
    caps.proxy_only(proxy)
    port = proxy.port
    result = {}

    def run():
        result["r"] = run_probe(nono_py, caps, f"read:{fifo}", f"tcp:127.0.0.1:{port}")

    t = threading.Thread(target=run)
    t.start()
    proxy.shutdown()
    with open(fifo, "w") as f:  # let the child go on only after the proxy is gone
        f.write("go")
    t.join()
    r, out = result["r"]
    assert r.exit_code == 0
    assert out[f"read:{fifo}"]["data"] == "go"
    assert out[f"tcp:127.0.0.1:{port}"]["errno"] == errno.ECONNREFUSED
    with pytest.raises(RuntimeError, match="shut down"):
        nono_py.sandboxed_exec(caps, ["/bin/true"])


def test_capability_set_keeps_its_proxy_alive(nono_py):
    import gc
    import socket
    caps = make_base_caps(nono_py)
    caps.proxy_only(nono_py.start_proxy(nono_py.ProxyConfig()))  # only caps holds the handle
    gc.collect()
    port = caps.proxy_port
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # still listening
    r, out = run_probe(nono_py, caps, "proxy_connect:denied.invalid:443")
    assert out["proxy_connect:denied.invalid:443"]["status"] == 403
    del caps
    gc.collect()
    with pytest.raises(ConnectionRefusedError):  # the last reference stopped it
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_allow_all_hosts_still_denies_internal(nono_py, loopback_server):
    cfg = nono_py.ProxyConfig(allow_all_hosts=True)
    with nono_py.start_proxy(cfg) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        act = f"proxy_connect:127.0.0.1:{loopback_server.port}"
        _, out = run_probe(nono_py, caps, act)
        ev = proxy.drain_audit_events()
    assert out[act]["status"] == 403 and loopback_server.accepts == 0
    assert [e["decision"] for e in ev] == ["deny"] and ev[0]["reason"]


def test_allow_all_hosts_allows_public_names():
    out, ev = _route_probe("proxy_connect:any.public.test:443",
                           cfg="nono_py.ProxyConfig(allow_all_hosts=True)")
    assert out["proxy_connect:any.public.test:443"]["status"] == 502  # allowed; nothing resolves here
    assert ev[("connect", "any.public.test", 443)]["decision"] == "allow"
