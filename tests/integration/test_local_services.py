"""Local services and the report of denials (issue 12), driving the real CLI with real tools.

The network parts run as a script inside `unshare -rmn` (a private network namespace this test
creates: only lo, plus 10.99.0.1 on it, and a private /etc/hosts naming api.test): curl, Python
urllib and `git clone` over dumb HTTP reach a local server allowed by --allow-internal with no
--noproxy tricks; a name that resolves to an allowed internal address works through the proxy; a
direct connect to another loopback port still gets EACCES. Each result is printed as JSON and
asserted here.
"""
import errno
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # conftest, also as a script
from conftest import run_nono  # noqa: E402

CURL = shutil.which("curl")
GIT = shutil.which("git")
INTERNAL = "10.99.0.1"


def _serve(addr, directory):
    h = partial(SimpleHTTPRequestHandler, directory=str(directory))
    h.log_message = lambda *a: None
    srv = ThreadingHTTPServer((addr, 0 if addr == "127.0.0.1" else 8080), h)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _nono(*args, timeout=60):
    nono = pathlib.Path(os.environ["NONO_BUILD_DIR"]) / "src" / "cli" / "nono"
    r = subprocess.run([str(nono), *args], capture_output=True, text=True, timeout=timeout)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}


def netns_main(work):
    work = pathlib.Path(work)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{INTERNAL}/32", "dev", "lo"], check=True)
    hosts = work / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 localhost\n{INTERNAL} api.test\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    site = work / "site"
    site.mkdir()
    (site / "hello").write_text("hello local\n")
    if GIT:
        src = work / "src"
        subprocess.run([GIT, "init", "-q", str(src)], check=True)
        (src / "f.txt").write_text("from git\n")
        g = [GIT, "-C", str(src), "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run(g + ["add", "f.txt"], check=True)
        subprocess.run(g + ["commit", "-qm", "one"], check=True)
        subprocess.run([GIT, "clone", "-q", "--bare", str(src), str(site / "repo.git")], check=True)
        subprocess.run([GIT, "-C", str(site / "repo.git"), "update-server-info"], check=True)
    lo = _serve("127.0.0.1", site)
    internal = _serve(INTERNAL, site)
    port = lo.server_address[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a loopback port nothing grants (and nothing listens on)
    other = closed.getsockname()[1]
    hp = f"127.0.0.1:{port}"
    base = ["run", "--allow-domain", "x.test", "--allow-internal", hp, "--"]
    out = {"port": port}
    if CURL:
        out["curl"] = _nono(*base, CURL, "-sS", f"http://{hp}/hello")
        out["curl_localhost"] = _nono("run", "--allow-domain", "x.test", "--allow-internal",
                                      f"localhost:{port}", "--", CURL, "-sS",
                                      f"http://127.0.0.1:{port}/hello")
        out["curl_name"] = _nono("run", "--allow-domain", "api.test", "--allow-internal",
                                 f"{INTERNAL}:8080", "--", CURL, "-sS", "http://api.test:8080/hello")
    out["urllib"] = _nono("run", "--allow-domain", "x.test", "--allow-internal", f"localhost:{port}",
                          "--", sys.executable, "-c",
                          "import urllib.request as u\n"
                          f"print(u.urlopen('http://localhost:{port}/hello').read().decode(), end='')\n"
                          f"print(u.urlopen('http://127.0.0.1:{port}/hello').read().decode(), end='')\n")
    out["env"] = _nono(*base, "/usr/bin/env")
    out["other_port"] = _nono(*base, sys.executable, "-c",
                              "import socket\ns = socket.socket()\n"
                              f"try:\n s.connect(('127.0.0.1', {other}))\nexcept OSError as e:\n"
                              " print(e.errno)\n")
    if GIT:
        dest = work / "clone"
        dest.mkdir()
        out["git"] = _nono("run", "--allow", str(dest), "--env", f"HOME={dest}",
                           "--allow-domain", "x.test", "--allow-internal", hp, "--",
                           GIT, "clone", "-q", f"http://{hp}/repo.git", str(dest / "r"))
        f = dest / "r" / "f.txt"
        out["git_file"] = f.read_text() if f.exists() else None
    lo.shutdown()
    internal.shutdown()
    print(json.dumps(out))


@pytest.fixture(scope="module")
def netns(nono, tmp_path_factory):
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("unshare(1) or ip(8) missing (scripts/deps.sh installs util-linux, iproute2)")
    probe = subprocess.run(["unshare", "-rmn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create user+mount+network namespaces here: " + probe.stderr.decode())
    work = tmp_path_factory.mktemp("localsvc")
    r = subprocess.run(["unshare", "-rmn", sys.executable, __file__, "--netns", str(work)],
                       capture_output=True, text=True, timeout=240,
                       env=dict(os.environ, NONO_BUILD_DIR=str(pathlib.Path(nono).parent.parent.parent)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not CURL, reason="curl not installed (scripts/deps.sh installs it)")
def test_curl_reaches_allowed_internal_service(netns):
    assert netns["curl"]["rc"] == 0, netns["curl"]
    assert netns["curl"]["out"] == "hello local\n"
    assert "denied during this run" not in netns["curl"]["err"]


@pytest.mark.skipif(not CURL, reason="curl not installed")
def test_localhost_grant_covers_127_0_0_1(netns):
    assert netns["curl_localhost"]["out"] == "hello local\n", netns["curl_localhost"]


@pytest.mark.skipif(not CURL, reason="curl not installed")
def test_name_resolving_to_allowed_internal_address_works_through_proxy(netns):
    r = netns["curl_name"]
    assert r["rc"] == 0 and r["out"] == "hello local\n", r


def test_python_urllib_reaches_allowed_service_by_both_names(netns):
    r = netns["urllib"]
    assert r["rc"] == 0, r
    assert r["out"] == "hello local\nhello local\n"


def test_no_proxy_lists_exactly_the_direct_destinations(netns):
    env = dict(l.split("=", 1) for l in netns["env"]["out"].splitlines() if "=" in l)
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1"


def test_direct_connect_to_other_loopback_port_is_eacces(netns):
    r = netns["other_port"]
    assert r["out"].strip() == str(errno.EACCES), r
    assert "--allow-internal 127.0.0.1:" in r["err"]  # the summary names the flag


@pytest.mark.skipif(not GIT, reason="git not installed")
def test_git_clone_over_http_from_allowed_service(netns):
    assert netns["git"]["rc"] == 0, netns["git"]
    assert netns["git_file"] == "from git\n"


# ---- outside the namespace: loopback only ----

def test_metadata_can_never_be_internal(nono):
    for hp in ("169.254.169.254:80", "metadata.google.internal:80"):
        r = run_nono("run", "--allow-domain", "x.test", "--allow-internal", hp, "--", "true")
        assert r.returncode == 125 and "metadata" in r.stderr, r.stderr


def test_public_address_is_not_internal(nono):
    r = run_nono("run", "--allow-domain", "x.test", "--allow-internal", "8.8.8.8:53", "--", "true")
    assert r.returncode == 125 and "public address" in r.stderr, r.stderr


SUMMARY_SCRIPT = (
    "import socket, urllib.request, urllib.error\n"
    "try:\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "except OSError as e:\n"
    "    print('udp', e.errno)\n"
    "try:\n"
    "    urllib.request.urlopen('http://denied.test/')\n"
    "except urllib.error.HTTPError as e:\n"
    "    print('http', e.code)\n"
)


def test_summary_names_denied_host_and_udp_socket(nono):
    r = run_nono("run", "--allow-domain", "x.test", "--", sys.executable, "-c", SUMMARY_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert f"udp {errno.EACCES}" in r.stdout and "http 403" in r.stdout
    err = r.stderr
    assert "denied during this run" in err
    assert "allow with: --allow-domain denied.test" in err
    assert "socket inet/dgram" in err
    # said once, though the refusal stays
    assert err.count("socket inet/dgram") == 1
    assert "filesystem denials are not shown" in err


def test_quiet_hides_summary_verbose_streams(nono):
    r = run_nono("run", "-q", "--allow-domain", "x.test", "--", sys.executable, "-c", SUMMARY_SCRIPT)
    assert "denied during this run" not in r.stderr and "udp" in r.stdout
    r = run_nono("run", "-v", "--allow-domain", "x.test", "--", sys.executable, "-c", SUMMARY_SCRIPT)
    assert "nono: deny proxy: http denied.test:80" in r.stderr, r.stderr
    assert "nono: allow connect 127.0.0.1:" in r.stderr  # the proxy connect, allowed


def test_udp_socket_refusal_reaches_audit_log(nono, tmp_path):
    log = tmp_path / "audit.jsonl"
    run_nono("run", "-q", "--net-block", "--audit-log", str(log), "--", sys.executable, "-c",
             "import socket\nfor _ in range(3):\n try: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             " except OSError: pass\n")
    ev = [json.loads(l) for l in log.read_text().splitlines()]
    assert [e["mode"] for e in ev if e["mode"] == "socket"] == ["socket"], ev
    assert ev[0]["status"] == errno.EACCES and ev[0]["decision"] == "deny"


def test_nscd_miss_does_not_fill_the_audit_log(nono, tmp_path):
    log = tmp_path / "audit.jsonl"
    run_nono("run", "-q", "--net-block", "--audit-log", str(log), "--", sys.executable, "-c",
             "import pwd, socket\nfor _ in range(5): pwd.getpwuid(0)\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             "try: s.connect('/var/run/nscd/socket')\nexcept OSError: pass\n")
    text = log.read_text() if log.exists() else ""
    assert text.count("nscd") <= 1, text


def test_own_bind_port_is_reachable(nono):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    script = ("import socket\nl = socket.socket()\n"
              "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              f"l.bind(('127.0.0.1', {port}))\nl.listen(1)\n"
              f"c = socket.create_connection(('127.0.0.1', {port}))\n"
              "a, _ = l.accept()\nc.sendall(b'ok')\nprint(a.recv(2).decode())\n")
    r = run_nono("run", "--allow-domain", "x.test", "--allow-bind", str(port), "--",
                 sys.executable, "-c", script)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_why_host(nono):
    r = run_nono("why", "--allow-domain", "example.com", "--host", "metadata.google.internal")
    assert r.returncode == 1 and "denied (metadata)" in r.stdout, r.stdout
    r = run_nono("why", "--allow-domain", "example.com", "--host", "metadata.google.internal:80",
                 "--json")
    d = json.loads(r.stdout)
    assert d["allowed"] is False and d["code"] == "metadata" and d["flag"] is None
    r = run_nono("why", "--allow-domain", "example.com:443", "--host", "example.com:80", "--json")
    d = json.loads(r.stdout)
    assert d["code"] == "port-not-allowed" and "port 80 is not allowed for example.com" in d["reason"]
    r = run_nono("why", "--allow-domain", "example.com", "--host", "other.test:443")
    assert "allow with: --allow-domain other.test:443" in r.stdout, r.stdout
    r = run_nono("why", "--allow-domain", "x.test", "--host", "10.1.2.3:80")
    assert "(internal-address)" in r.stdout and "--allow-internal 10.1.2.3:80" in r.stdout
    r = run_nono("why", "--allow-domain", "x.test", "--allow-internal", "localhost:8080",
                 "--host", "[::1]:8080")
    assert r.returncode == 0 and "directly" in r.stdout, r.stdout
    r = run_nono("why", "--net-block", "--host", "example.com")
    assert r.returncode == 1 and "(network-blocked)" in r.stdout


def test_why_net_shows_no_placeholder_port(nono):
    r = run_nono("why", "--allow-domain", "x.test", "--net")
    assert "65535" not in r.stdout and ":0" not in r.stdout, r.stdout
    assert "chosen when it starts" in r.stdout


DIRECT_SCRIPT = (
    "import socket, sys\n"
    "for port in map(int, sys.argv[1:]):\n"
    "    s = socket.socket()\n"
    "    try:\n"
    "        s.connect(('127.0.0.1', port)); print('ok')\n"
    "    except OSError as e:\n"
    "        print(e.errno)\n"
)


@pytest.mark.parametrize("abi", ["", "3"])
def test_direct_internal_connect_with_and_without_landlock_tcp(nono, abi):
    """At Landlock ABI 4+ the internal port has a Landlock connect rule and the supervisor pins
    the address; below (kernels < 6.7, capped here) the supervisor alone decides: the same
    answers either way."""
    granted, other = socket.socket(), socket.socket()
    for s in (granted, other):
        s.bind(("127.0.0.1", 0))
    granted.listen(4)
    other.listen(4)
    gp, op = granted.getsockname()[1], other.getsockname()[1]
    try:
        env = dict(os.environ, NONO_MAX_LANDLOCK_ABI=abi)
        r = subprocess.run([nono, "run", "-q", "--allow-domain", "x.test", "--allow-internal",
                            f"127.0.0.1:{gp}", "--", sys.executable, "-c", DIRECT_SCRIPT, str(gp),
                            str(op)], capture_output=True, text=True, timeout=60, env=env)
        assert r.stdout.split() == ["ok", str(errno.EACCES)], (r.stdout, r.stderr)
    finally:
        granted.close()
        other.close()


# ---- filesystem denials: Landlock ABI 7 records in the kernel audit ----

def _audit_set(enabled):
    """AUDIT_SET {mask: ENABLED, enabled}; returns the previous state, or None if not allowed."""
    import struct
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    try:
        s.settimeout(2)
        s.sendto(struct.pack("IHHII", 16, 1000, 1, 1, 0), (0, 0))  # AUDIT_GET
        prev = None
        for _ in range(4):
            d = s.recv(512)
            if struct.unpack("H", d[4:6])[0] == 1000:
                prev = struct.unpack("I", d[20:24])[0]
                break
        body = struct.pack("IIIIIIII", 1, enabled, 0, 0, 0, 0, 0, 0)
        s.sendto(struct.pack("IHHII", 16 + len(body), 1001, 1 | 4, 2, 0) + body, (0, 0))
        d = s.recv(512)
        err = struct.unpack("i", d[16:20])[0]
        return prev if err == 0 else None
    except OSError:
        return None
    finally:
        s.close()


def _landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)


@pytest.fixture
def kernel_audit():
    """Audit enabled for the duration of one test (root only), restored after."""
    if os.geteuid() != 0 or _landlock_abi() < 7:
        pytest.skip("needs root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ) and Landlock ABI 7 (6.15)")
    prev = _audit_set(1)
    if prev is None:
        pytest.skip("cannot enable the kernel audit here (not in the initial namespaces?)")
    yield
    _audit_set(prev)


def test_denied_read_appears_in_summary(nono, tmp_path, kernel_audit):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    log = tmp_path / "audit.jsonl"
    r = run_nono("run", "--net-block", "--audit-log", str(log), "--", "/bin/cat", str(secret))
    assert r.returncode == 1 and "Permission denied" in r.stderr
    assert f"allow with: --read-file {secret}" in r.stderr, r.stderr
    ev = [json.loads(l) for l in log.read_text().splitlines()]
    assert any(e["source"] == "landlock" and e["target"] == str(secret)
               and "fs.read_file" in e["reason"] for e in ev), ev
    # A denied write names the write flag.
    r = run_nono("run", "--read", str(tmp_path), "--", "/bin/sh", "-c", f"echo > {tmp_path}/new")
    assert f"allow with: --write {tmp_path}" in r.stderr, r.stderr


def test_filesystem_denials_not_visible_says_so(nono):
    if _audit_set_probe_enabled():
        pytest.skip("the kernel audit is enabled here: filesystem denials are visible")
    r = run_nono("run", "--", "/bin/cat", "/root/.bashrc" if os.geteuid() == 0 else "/etc/shadow")
    assert r.returncode != 0
    assert "filesystem denials are not visible here" in r.stderr, r.stderr


def _audit_set_probe_enabled():
    import struct
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
        s.settimeout(2)
        s.sendto(struct.pack("IHHII", 16, 1000, 1, 1, 0), (0, 0))
        for _ in range(4):
            d = s.recv(512)
            if struct.unpack("H", d[4:6])[0] == 1000:
                return struct.unpack("I", d[20:24])[0] != 0
    except OSError:
        return False
    return False


if __name__ == "__main__" and sys.argv[1:2] == ["--netns"]:
    netns_main(sys.argv[2])
