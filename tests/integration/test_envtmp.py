"""`nono run` out of the box (issue 12): the command's environment, the private temp dir, the system
set without secrets, and options that must not silently do nothing — driven through the real CLI
with real tools (make, gcc, bash on a pty, git, curl)."""
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import run_nono

PY = "/usr/bin/python3"


def env_of(r):
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- real tools with only --allow . ----

C_PROJECT = {
    "main.c": '#include <stdio.h>\n#include "util.h"\nint main(void) { printf("sum=%d\\n", add(2, 3)); return 0; }\n',
    "util.h": "int add(int a, int b);\n",
    "util.c": '#include "util.h"\nint add(int a, int b) { return a + b; }\n',
    "Makefile": "app: main.o util.o\n\t$(CC) -o $@ main.o util.o\n%.o: %.c util.h\n\t$(CC) -O2 -c $<\n",
}


@pytest.mark.skipif(not (shutil.which("make") and shutil.which("gcc")), reason="make/gcc missing")
@pytest.mark.parametrize("net", [[], ["--net-block"]], ids=["net-allowed", "net-block"])
def test_make_and_gcc_build_with_only_allow_dot(nono, tmp_path, net):
    """The issue's first example: `make: cc: No such file or directory` without PATH, gcc's
    "Cannot create temporary file in /tmp/" without a temp dir. Now both just work."""
    for name, text in C_PROJECT.items():
        (tmp_path / name).write_text(text)
    r = run_nono("run", "--allow", ".", *net, "--", "make", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "app").exists()
    r = run_nono("run", "--allow", ".", *net, "--", "./app", cwd=tmp_path)
    assert r.stdout == "sum=5\n", r.stderr
    # gcc alone, piping through its temp files (-save-temps off: they go to TMPDIR)
    r = run_nono("run", "--allow", ".", *net, "--", "gcc", "-o", "app2", "main.c", "util.c",
                 cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and (tmp_path / "app2").exists(), r.stderr


def pty_session(argv, env, send, until, t=60):
    """Run argv on a new pty; type `send` once `until` has appeared, then collect everything until
    EOF (bounded by t). Returns the output as text."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = bytearray()
    sent = False
    end = time.monotonic() + t
    try:
        while time.monotonic() < end:
            if not sent and re.search(until, out):
                os.write(fd, send)
                sent = True
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out.extend(chunk)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace")


@pytest.mark.parametrize("grant_home", [False, True], ids=["home-ungranted", "home-granted"])
def test_bash_on_a_pty_starts_clean(nono, tmp_path, grant_home):
    """Interactive bash: no "HOME not set", no "Permission denied" for rc files under an ungranted
    HOME (HOME then points at the private temp dir), HOME/PATH/TERM set; with HOME granted the rc
    file runs."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("echo RC-RAN\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "TERM": "xterm-256color",
           "LANG": "C.UTF-8"}
    grants = ["--allow", str(work)] + (["--read", str(home)] if grant_home else [])
    out = pty_session([nono, "run", *grants, "--", "/bin/bash", "-i"], env,
                      b"echo \"H=[$HOME] P=[$PATH] T=[$TERM]\"; exit 7\n", rb"[#$] $")
    found = re.findall(r"H=\[([^\]$]*)\] P=\[([^\]$]*)\] T=\[([^\]$]*)\]", out)  # not the echo
    assert found and all(found[-1]), out
    m = re.match(r"(.*)\n(.*)\n(.*)", "\n".join(found[-1]))
    assert m.group(3) == "xterm-256color" and m.group(2) == os.environ["PATH"]
    assert not re.search(r"bash: .*(Permission denied|HOME not set|No such file)", out), out
    assert "cannot set terminal process group" not in out, out
    if grant_home:
        assert m.group(1) == str(home) and "RC-RAN" in out, out
    else:
        assert m.group(1).startswith(("/tmp/nono-run-", os.environ.get("TMPDIR", "/tmp"))), out
        assert "RC-RAN" not in out


@pytest.mark.skipif(not shutil.which("git"), reason="git missing")
def test_git_status_reads_the_granted_gitconfig(nono, tmp_path):
    """The guide's `nono run --read-file ~/.gitconfig --allow . -- git status`: git finds the file
    through HOME (passed by default, and kept because a grant lies inside it)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[status]\n\tshort = true\n\tbranch = true\n"
                                     "[safe]\n\tdirectory = *\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "new.txt").write_text("x\n")
    r = run_nono("run", "--read-file", home / ".gitconfig", "--allow", ".", "--", "git", "status",
                 cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("## ") and "?? new.txt" in r.stdout, r.stdout  # short format
    # Without the grant git cannot read it: the long format (and HOME is the temp dir)
    r = run_nono("run", "--allow", ".", "--", "git", "status", cwd=repo, env=env)
    assert "Untracked files" in r.stdout, r.stdout + r.stderr


# ---- the system set without secrets ----

def test_etc_secrets_not_readable_by_default(nono):
    if not os.access("/etc/shadow", os.R_OK):
        pytest.skip("/etc/shadow is not readable by this user even without nono")
    assert subprocess.run(["head", "-c", "1", "/etc/shadow"], capture_output=True).returncode == 0
    r = run_nono("run", "--", "head", "-c", "40", "/etc/shadow")
    assert r.returncode != 0 and r.stdout == "" and "Permission denied" in r.stderr, r.stdout
    # the rest of /etc is there
    r = run_nono("run", "--", "cat", "/etc/passwd")
    assert r.returncode == 0 and "root:" in r.stdout
    # granted explicitly, it is readable (entry-by-entry grants, not a deny rule)
    r = run_nono("run", "--read-file", "/etc/shadow", "--", "head", "-c", "1", "/etc/shadow")
    assert r.returncode == 0 and r.stdout, r.stderr
    # the dry run says what the set withholds
    r = run_nono("run", "--dry-run", "--", "x")
    line = next(x for x in r.stdout.splitlines() if x.startswith("withheld from the system set"))
    assert "/etc/shadow" in line.split()
    assert not re.search(r"^\s+r\s+\S+\s+/etc/shadow\b", r.stdout, re.M)


def test_every_withheld_path_is_unreadable(nono):
    """Whatever the dry run lists as withheld on this machine cannot be opened under the default
    set (files read, directories listed)."""
    import json
    d = json.loads(run_nono("run", "--dry-run", "--json", "--", "x").stdout)
    withheld = [p for p in d["system_withheld"] if os.access(p, os.R_OK)]
    if not withheld:
        pytest.skip("nothing withheld is readable by this user anyway")
    code = ("import os, sys\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n"
            "        (os.listdir if os.path.isdir(p) else (lambda q: open(q).read(1)))(p)\n"
            "        print('READ', p)\n"
            "    except PermissionError:\n"
            "        print('denied', p)\n")
    r = run_nono("run", "--", PY, "-c", code, *withheld)
    assert r.returncode == 0, r.stderr
    assert all(line.startswith("denied") for line in r.stdout.splitlines()), r.stdout
    assert len(r.stdout.splitlines()) == len(withheld)


# ---- the environment ----

def test_default_environment_is_the_basic_set(nono, tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "USER": "u", "LOGNAME": "u",
           "SHELL": "/bin/sh", "TERM": "xterm", "COLORTERM": "truecolor", "LANG": "C.UTF-8",
           "LANGUAGE": "en", "LC_TIME": "C", "TZ": "UTC", "NONO_TEST_SECRET": "hunter2",
           "AWS_SECRET_ACCESS_KEY": "x", "LD_LIBRARY_PATH": "/nonexistent", "TMPDIR": str(tmp_path)}
    e = env_of(run_nono("run", "--read", tmp_path, "--", "/usr/bin/env", env=env))
    for k in ("PATH", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "LANG", "LANGUAGE",
              "LC_TIME", "TZ"):
        assert e[k] == env[k], k
    assert e["HOME"] == str(tmp_path)  # readable: kept
    assert "NONO_TEST_SECRET" not in e and "AWS_SECRET_ACCESS_KEY" not in e
    assert not [k for k in e if k.startswith("LD_")]
    # the private temp dir, created under the caller's TMPDIR
    assert e["TMPDIR"] == e["TMP"] == e["TEMP"] and e["TMPDIR"].startswith(f"{tmp_path}/nono-run-")


def test_env_copy_set_clear_inherit(nono):
    env = dict(os.environ, NONO_A="a", NONO_B="b", LD_PRELOAD="/nonexistent.so")
    e = env_of(run_nono("run", "--env", "NONO_A", "--env", "NONO_B=override", "--", "/usr/bin/env",
                        env=env))
    assert e["NONO_A"] == "a" and e["NONO_B"] == "override" and "PATH" in e
    # a copy of an unset variable is an error, not a silent nothing
    r = run_nono("run", "--env", "NONO_UNSET_X", "--", "/bin/true",
                 env={k: v for k, v in env.items() if k != "NONO_UNSET_X"})
    assert r.returncode == 125 and "NONO_UNSET_X is not set" in r.stderr
    # --clear-env: only --env, plus what nono sets itself (the temp dir)
    e = env_of(run_nono("run", "--clear-env", "--env", "X=1", "--", "/usr/bin/env", env=env))
    assert set(e) == {"X", "TMPDIR", "TMP", "TEMP"}
    e = env_of(run_nono("run", "--clear-env", "--no-tmp", "--", "/usr/bin/env", env=env))
    assert e == {}
    # --inherit-env: everything but the loader variables, and it says what it withheld
    r = run_nono("run", "--inherit-env", "--", "/usr/bin/env", env=dict(env, TMPDIR="/tmp"))
    e = env_of(r)
    assert e["NONO_B"] == "b" and "LD_PRELOAD" not in e and e["TMPDIR"] != "/tmp"
    m = re.search(r"--inherit-env: not passed: ([^(]*)\(", r.stderr)
    assert m and {"LD_PRELOAD", "TMPDIR"} <= set(m.group(1).split()), r.stderr
    r = run_nono("run", "--clear-env", "--inherit-env", "--", "/bin/true")
    assert r.returncode == 125


@pytest.mark.parametrize("arg", ["TMPDIR=/x", "TMP=/x", "TEMP", "LD_PRELOAD", "LD_AUDIT=x"])
def test_env_conflicting_with_nono_is_refused(nono, arg):
    r = run_nono("run", "--env", arg, "--", "/bin/true", env=dict(os.environ, TEMP="t",
                                                                   LD_PRELOAD="x"))
    assert r.returncode == 125, r.stderr
    assert arg.split("=")[0] in r.stderr
    # with --no-tmp the temp dir's variables are the user's to set
    if arg.startswith("TMP"):
        e = env_of(run_nono("run", "--no-tmp", "--env", arg, "--", "/usr/bin/env"))
        assert e[arg.split("=")[0]] == "/x"


@pytest.mark.parametrize("var", ["HTTPS_PROXY=http://elsewhere:1", "NO_PROXY=", "http_proxy=x",
                                 "NODE_USE_ENV_PROXY=0"])
def test_env_proxy_variable_with_allow_domain_is_refused(nono, var):
    r = run_nono("run", "--allow-domain", "example.com", "--env", var, "--", "/bin/true")
    assert r.returncode == 125 and var.split("=")[0] in r.stderr and "set by nono" in r.stderr


# ---- the private temp dir ----

def tmpdir_of(out):
    m = re.search(r"^T=(\S+)$", out, re.M)
    assert m, out
    return pathlib.Path(m.group(1))


def test_private_tmp_is_fresh_writable_and_removed_after_everything_exited(nono, tmp_path):
    """A descendant that outlives the command (detached with setsid) keeps using the dir; the dir
    goes once the reaper has seen it exit too (it is killed when the command exits)."""
    script = ('echo T=$TMPDIR; mkdir -p $TMPDIR/d/e; echo x > $TMPDIR/d/e/f; '
              'ln -s / $TMPDIR/d/root; ln -s /etc/passwd $TMPDIR/pw; '
              'setsid sh -c "while :; do touch $TMPDIR/late; sleep 0.05; done" & '
              'for i in $(seq 200); do [ -e $TMPDIR/late ] && break; sleep 0.05; done; '
              'touch /tmp/nono-envtmp-probe 2>/dev/null && echo TMP-WRITABLE; exit 0')
    r = run_nono("run", "--env", "NONO_X=1", "--", "/bin/sh", "-c", script, env=dict(
        os.environ, TMPDIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    d = tmpdir_of(r.stdout)
    assert d.parent == tmp_path and d.name.startswith("nono-run-")
    assert "TMP-WRITABLE" not in r.stdout  # /tmp itself stays ungranted (unless TMPDIR is it)
    assert not d.exists(), list(d.rglob("*"))
    assert pathlib.Path("/etc/passwd").exists()  # the symlinks were removed, not followed
    # two runs, two directories
    a = tmpdir_of(run_nono("run", "--", "/bin/sh", "-c", "echo T=$TMPDIR").stdout)
    b = tmpdir_of(run_nono("run", "--", "/bin/sh", "-c", "echo T=$TMPDIR").stdout)
    assert a != b


def test_tmp_outside_tmpdir_is_not_granted(nono, tmp_path):
    """/tmp (here: the caller's TMPDIR) is not granted, only the run's own directory inside it."""
    r = run_nono("run", "--", "/bin/sh", "-c", f"echo T=$TMPDIR; touch {tmp_path}/outside",
                 env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert "Permission denied" in r.stderr and not (tmp_path / "outside").exists()


def test_keep_tmp_and_no_tmp(nono, tmp_path):
    r = run_nono("run", "--keep-tmp", "--", "/bin/sh", "-c", "echo T=$TMPDIR; echo k > $TMPDIR/k",
                 env=dict(os.environ, TMPDIR=str(tmp_path)))
    d = tmpdir_of(r.stdout)
    try:
        assert (d / "k").read_text() == "k\n" and f"kept the private temp dir {d}" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
    r = run_nono("run", "--no-tmp", "--", "/usr/bin/env", env={"PATH": os.environ["PATH"]})
    assert "TMPDIR" not in env_of(r)
    assert list(tmp_path.iterdir()) == []
    r = run_nono("run", "--no-tmp", "--keep-tmp", "--", "/bin/true")
    assert r.returncode == 125


# ---- no silent no-ops ----

def test_audit_log_inside_a_writable_grant_is_refused(nono, tmp_path):
    w = tmp_path / "w"
    (w / "sub").mkdir(parents=True)
    for log in (w / "audit.jsonl", w / "sub" / ".." / "audit.jsonl"):
        r = run_nono("run", "--allow", w, "--net-block", "--audit-log", log, "--", "/bin/true")
        assert r.returncode == 125 and "could forge" in r.stderr, r.stderr
    (tmp_path / "f").touch()
    r = run_nono("run", "--write-file", tmp_path / "f", "--net-block", "--audit-log",
                 tmp_path / "f", "--", "/bin/true")
    assert r.returncode == 125, r.stderr
    r = run_nono("run", "--allow", w, "--net-block", "--audit-log", tmp_path / "ok.jsonl", "--",
                 "/bin/true")
    assert r.returncode == 0, r.stderr


def test_proxy_port_checks_that_something_listens(nono):
    port = free_port()
    r = run_nono("run", "--proxy-port", port, "--", "/bin/true")
    assert r.returncode == 125 and f"nothing accepts connections on 127.0.0.1:{port}" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = run_nono("run", "--proxy-port", s.getsockname()[1], "--", "/bin/true")
        assert r.returncode == 0, r.stderr


def start_proxy(nono, *args):
    p = subprocess.Popen([nono, "proxy", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert select.select([p.stdout], [], [], 20)[0], "no URL printed"
    return p, p.stdout.readline().strip()


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_proxy_url_sets_every_proxy_variable(nono):
    p, url = start_proxy(nono, "--allow-domain", "example.com:443", "-q")
    try:
        e = env_of(run_nono("run", "--proxy-url", url, "--", "/usr/bin/env"))
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            assert e[k] == url, k
        for k in ("ALL_PROXY", "all_proxy"):  # the same listener as SOCKS5 (socks5h://)
            assert e[k] == "socks5h://" + url[len("http://"):], k
        assert e["NO_PROXY"] == e["no_proxy"] and e["NODE_USE_ENV_PROXY"] == "1"
        # the token is checked by the proxy: the command reaches it with the URL as given
        code = ("import socket, base64, os, urllib.parse as u\n"
                "p = u.urlsplit(os.environ['HTTPS_PROXY'])\n"
                "s = socket.create_connection((p.hostname, p.port))\n"
                "auth = base64.b64encode(f'{p.username}:{p.password}'.encode()).decode()\n"
                "s.sendall(f'CONNECT example.com:444 HTTP/1.1\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())\n"
                "print(s.recv(200).split(b'\\r\\n')[0].decode())\n")
        r = run_nono("run", "--proxy-url", url, "--", PY, "-c", code)
        assert "403" in r.stdout and "port 444 is not allowed for example.com" in r.stdout, r
        r = run_nono("run", "--proxy-url", url, "--env", "HTTPS_PROXY=x", "--", "/bin/true")
        assert r.returncode == 125 and "HTTPS_PROXY" in r.stderr
        for bad, why in ((url.replace("127.0.0.1", "localhost"), "127.0.0.1 or [::1]"),
                         ("https://127.0.0.1:3128", "expected http://"),
                         (url + "/path", "no path")):
            r = run_nono("run", "--proxy-url", bad, "--", "/bin/true")
            assert r.returncode == 125 and why in r.stderr, (bad, r.stderr)
        r = run_nono("run", "--proxy-url", url, "--allow-domain", "x.test", "--", "/bin/true")
        assert r.returncode == 125 and "conflicts" in r.stderr
    finally:
        stop(p)
    r = run_nono("run", "--proxy-url", url, "--", "/bin/true")  # stopped: nothing listens
    assert r.returncode == 125 and "nothing accepts connections" in r.stderr


@pytest.mark.skipif(not shutil.which("unshare"), reason="unshare missing")
def test_proxy_on_a_non_loopback_address_warns_with_the_real_address(nono):
    """In a network namespace of the test's own, so the wildcard listener is reachable from
    nowhere else."""
    if subprocess.run(["unshare", "-rn", "true"]).returncode != 0:
        pytest.skip("cannot create a user+network namespace here")
    p = subprocess.Popen(["unshare", "-rn", nono, "proxy", "--listen", "0.0.0.0:0",
                          "--allow-domain", "example.com"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert select.select([p.stdout], [], [], 20)[0]
        url = p.stdout.readline().strip()
        port = url.rsplit(":", 1)[1]
        assert select.select([p.stderr], [], [], 20)[0]
        warn = p.stderr.readline()
        assert f"warning: listening on 0.0.0.0:{port}, not loopback" in warn, warn
    finally:
        stop(p)
    p, url = start_proxy(nono, "--allow-domain", "example.com", "--listen", "127.0.0.1:0")
    try:
        assert select.select([p.stderr], [], [], 20)[0]
        assert "warning" not in p.stderr.readline()
    finally:
        stop(p)


@pytest.mark.parametrize("pattern,answer", [
    ("https://api.example.com/", "give a host, not a URL"),
    ("api.example.com/v1", "give a host, not a URL"),
    ("bücher.example", "use punycode"),
    ("*.com", "public suffix"),
    ("*.co.uk", "public suffix"),
    ("2001:db8::1:443", "bracket IPv6 literals"),
])
def test_host_patterns_get_a_precise_answer(nono, pattern, answer):
    for argv in (["run", "--dry-run", "--allow-domain", pattern, "--", "x"],
                 ["proxy", "--allow-domain", pattern]):
        r = run_nono(*argv, timeout=20)
        assert r.returncode == 125 and answer in r.stderr, (argv, r.stderr)


def test_bare_ipv6_literal_is_accepted(nono):
    r = run_nono("run", "--dry-run", "--allow-domain", "2001:db8::1", "--", "x")
    assert r.returncode == 0, r.stderr


def test_private_tmp_removed_even_when_nono_is_sigkilled(nono, tmp_path):
    """The reaper removes it (nono_exec_opts.remove_dir) once the tree is gone: it outlives a
    SIGKILLed nono long enough to kill the command, reap it and remove the directory."""
    p = subprocess.Popen([nono, "run", "--", "/bin/sh", "-c",
                          "echo T=$TMPDIR; echo data > $TMPDIR/f; exec sleep 60"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        assert select.select([p.stdout], [], [], 30)[0]
        d = tmpdir_of(p.stdout.readline())
        deadline = time.monotonic() + 30
        while not (d / "f").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (d / "f").exists()
        p.kill()
        p.wait(timeout=10)
        deadline = time.monotonic() + 30
        while d.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not d.exists(), list(d.rglob("*"))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
