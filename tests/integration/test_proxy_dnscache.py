"""The proxy's short DNS memory (src/lib/proxy/dnscache.c): an allowed name's answer is reused for a
few seconds, and every reuse is checked again as if it had just been looked up.

Runs this file as a script inside `unshare -rmn` (as test_proxy.py does): only lo, with a documentation
"public" address and a private one on it, our own /etc/hosts and /etc/resolv.conf, and a tiny UDP DNS
server on 127.0.0.1:53 that counts the queries it sees and whose records the test changes mid-run.
"""
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_proxy as tp  # noqa: E402  (the driver, upstream, DNS server and raw-request helpers)

PUBLIC = tp.NETNS_PUBLIC
PRIVATE = "10.0.0.1"
DNS_CACHE_S = 5  # NP_DNS_CACHE_MS


def netns_main():
    def sh(*a):
        subprocess.run(a, check=True)
    sh("ip", "link", "set", "lo", "up")
    for a in (PUBLIC + "/32", PRIVATE + "/32"):
        sh("ip", "addr", "add", a, "dev", "lo")
    tmp = tempfile.mkdtemp()
    hosts, resolv = pathlib.Path(tmp, "hosts"), pathlib.Path(tmp, "resolv.conf")
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    sh("mount", "--bind", str(hosts), "/etc/hosts")
    sh("mount", "--bind", str(resolv), "/etc/resolv.conf")
    counts = {}
    records = {"cache.test": [PUBLIC], "mixed.test": [PUBLIC, PRIVATE], "loop.test": ["127.0.0.1"],
               "flip.test": [PUBLIC]}  # gone.test: not a record (NXDOMAIN)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 53))
    threading.Thread(target=tp._dns_server, args=(dns, records, counts), daemon=True).start()
    up = tp.Upstream(PUBLIC)
    local = tp.Upstream("127.0.0.1")
    port, lport = up.port, local.port
    p = tp.Proxy(*sum((["--allow", h] for h in ("cache.test", "mixed.test", "loop.test", "flip.test", "gone.test")), []),
                 "--internal", f"127.0.0.1:{lport}")
    auth = f"Proxy-Authorization: {p.auth}\r\n"
    out = {}

    def tunnel(host, prt):
        r = tp.raw(p.port, f"CONNECT {host}:{prt} HTTP/1.1\r\n{auth}\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                   until=b"hello world")
        return {"status": tp.status_line(r), "denial": tp.header(r, "X-Nono-Denial"), "hello": r.endswith(b"hello world"),
                "queries": {k: v for k, v in counts.items()}}

    out["cache"] = [tunnel("cache.test", port) for _ in range(3)]
    out["mixed"] = [tunnel("mixed.test", port) for _ in range(2)]
    # loop.test -> 127.0.0.1: granted on lport only; the remembered address is checked per request's port
    out["loop"] = [tunnel("loop.test", lport), tunnel("loop.test", lport + 1)]
    out["gone"] = [tunnel("gone.test", port) for _ in range(2)]
    out["flip_first"] = tunnel("flip.test", port)
    t0 = time.monotonic()
    records["flip.test"] = [PRIVATE]  # the name now points inside
    out["flip_cached"] = tunnel("flip.test", port)
    deadline = time.monotonic() + DNS_CACHE_S + 15
    while time.monotonic() < deadline:
        r = tunnel("flip.test", port)
        if not r["hello"]:
            break
        time.sleep(0.2)
    out["flip_after"] = r
    out["flip_after_s"] = time.monotonic() - t0
    out["audit"] = p.audit()
    p.close()
    up.stop()
    local.stop()
    print(json.dumps(out))


@pytest.fixture(scope="module")
def netns():
    return tp.run_netns_main(__file__, 120)


def q(res, name):
    return res["queries"].get(name, 0)


def test_a_burst_to_one_name_is_looked_up_once(netns):
    first, second, third = netns["cache"]
    for r in (first, second, third):
        assert r["status"] == "HTTP/1.1 200 Connection established" and r["hello"], r
    assert q(first, "cache.test") >= 1  # really resolved through our DNS server
    assert q(second, "cache.test") == q(first, "cache.test")
    assert q(third, "cache.test") == q(first, "cache.test")


def test_a_remembered_answer_is_checked_again_every_time(netns):
    one, two = netns["mixed"]
    for r in (one, two):  # one of its addresses is private: refused both times, the second from memory
        assert r["status"].startswith("HTTP/1.1 403 Forbidden: host mixed.test resolves to"), r
        assert r["denial"] == "internal-address"
    assert q(two, "mixed.test") == q(one, "mixed.test") >= 1


def test_a_remembered_internal_address_is_granted_per_port(netns):
    granted, other = netns["loop"]
    assert granted["status"] == "HTTP/1.1 200 Connection established" and granted["hello"], granted
    # the same remembered 127.0.0.1, on a port without a grant: refused, without a new lookup
    assert other["status"].startswith("HTTP/1.1 403 "), other
    assert other["denial"] == "internal-address"
    assert q(other, "loop.test") == q(granted, "loop.test")


def test_failed_lookups_are_not_remembered(netns):
    one, two = netns["gone"]
    for r in (one, two):
        assert r["status"].startswith("HTTP/1.1 502 Bad Gateway: DNS lookup for gone.test failed"), r
        assert r["denial"] == "dns-failure"
    assert q(two, "gone.test") > q(one, "gone.test") >= 1


def test_a_changed_record_is_seen_after_the_cache_lifetime_and_checked(netns):
    first, cached, after = netns["flip_first"], netns["flip_cached"], netns["flip_after"]
    assert first["hello"] and cached["hello"], (first, cached)
    assert q(cached, "flip.test") == q(first, "flip.test")  # within the lifetime: the remembered answer
    # past it: looked up again, and the new (private) address is refused
    assert after["status"].startswith("HTTP/1.1 403 Forbidden: host flip.test resolves to"), after
    assert after["denial"] == "internal-address"
    assert q(after, "flip.test") > q(cached, "flip.test")
    assert netns["flip_after_s"] < DNS_CACHE_S + 15


def test_every_request_is_still_audited(netns):
    decided = [e for e in netns["audit"] if not e["reason"].startswith("closed")]
    targets = [e["target"] for e in decided]
    assert targets.count("cache.test") == 3
    assert targets.count("mixed.test") == 2
    assert all(e["decision"] == "deny" for e in decided if e["target"] == "mixed.test")


if __name__ == "__main__" and sys.argv[1:] == ["--netns"]:
    netns_main()
