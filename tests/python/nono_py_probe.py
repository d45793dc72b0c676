"""Runs INSIDE a sandboxed child (passed with python3 -c): performs the actions named on the command
line and prints one JSON object per action. Each result carries the real errno on failure, so tests
assert what the kernel (or the proxy) actually did.

Actions:  read:PATH  write:PATH  listdir:PATH  tcp:HOST:PORT  udp:HOST:PORT  unix:PATH
          unsetproxy  (delete every *_PROXY variable from os.environ)
          proxy_get:URL          absolute-form GET through the proxy named by HTTP_PROXY
          proxy_connect:HOST:PORT  CONNECT through the proxy, then GET / over the tunnel
          env:NAME
"""
import base64
import json
import os
import socket
import sys
import urllib.parse


def err(e):
    return {"ok": False, "errno": getattr(e, "errno", None), "error": f"{type(e).__name__}: {e}"}


def proxy_addr():
    url = os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy")
    if not url:
        raise RuntimeError("no HTTP_PROXY in the environment")
    u = urllib.parse.urlsplit(url)
    auth = base64.b64encode(f"{u.username}:{u.password}".encode()).decode() if u.username else None
    return u.hostname, u.port, auth


def recv_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    return status, head, rest


def recv_all(s, rest):
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return rest
        rest += chunk


def act(a):
    kind, _, arg = a.partition(":")
    if kind == "read":
        with open(arg, "rb") as f:
            return {"ok": True, "data": f.read(200).decode(errors="replace")}
    if kind == "write":
        with open(arg, "w") as f:
            f.write("written by the sandbox\n")
        return {"ok": True}
    if kind == "listdir":
        return {"ok": True, "n": len(os.listdir(arg))}
    if kind in ("tcp", "udp"):
        host, _, port = arg.rpartition(":")
        if kind == "tcp":
            with socket.create_connection((host, int(port)), timeout=5):
                return {"ok": True}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"escaped", (host, int(port)))
            return {"ok": True}
    if kind == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(arg)
            return {"ok": True}
    if kind == "unsetproxy":
        gone = [k for k in list(os.environ) if k.lower().endswith("_proxy")]
        for k in gone:
            del os.environ[k]
        return {"ok": True, "removed": sorted(gone)}
    if kind == "env":
        return {"ok": True, "value": os.environ.get(arg)}
    if kind == "proxy_get":
        host, port, auth = proxy_addr()
        u = urllib.parse.urlsplit(arg)
        with socket.create_connection((host, port), timeout=10) as s:
            req = f"GET {arg} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n"
            if auth:
                req += f"Proxy-Authorization: Basic {auth}\r\n"
            s.sendall((req + "\r\n").encode())
            status, _, rest = recv_head(s)
            body = recv_all(s, rest)
            return {"ok": True, "status": status, "body": body.decode(errors="replace")}
    if kind == "proxy_connect":
        host, port, auth = proxy_addr()
        with socket.create_connection((host, port), timeout=10) as s:
            req = f"CONNECT {arg} HTTP/1.1\r\nHost: {arg}\r\n"
            if auth:
                req += f"Proxy-Authorization: Basic {auth}\r\n"
            s.sendall((req + "\r\n").encode())
            status, _, rest = recv_head(s)
            if status != 200:
                return {"ok": True, "status": status, "body": ""}
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            body = recv_all(s, rest)
            return {"ok": True, "status": status, "body": body.decode(errors="replace")}
    raise SystemExit(f"unknown action {a!r}")


for a in sys.argv[1:]:
    try:
        r = act(a)
    except Exception as e:  # noqa: BLE001 - the errno is the result
        r = err(e)
    r["action"] = a
    print(json.dumps(r), flush=True)
