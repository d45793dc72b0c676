"""Python escape probes: what an agent's generated code would try. One attempt per run.

    py_probe.py connect IP PORT     unset every proxy variable, then a direct TCP connection
    py_probe.py urllib IP PORT      urllib with proxies disabled (ProxyHandler({}))
    py_probe.py udp IP PORT         one UDP datagram
Prints one line: ESCAPED … / DENIED <ERRNO> <step> (the protocol of probe.h).
"""
import errno
import os
import socket
import sys


def denied(step, e):
    print(f"DENIED {errno.errorcode.get(e.errno, 'EOTHER')} {step} (errno {e.errno})", flush=True)


def main():
    how, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for k in list(os.environ):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del os.environ[k]
    if how == "connect":
        try:
            s = socket.create_connection((ip, port), timeout=5)
        except OSError as e:
            return denied("connect", e)
        s.close()
        print("ESCAPED connected", flush=True)
    elif how == "urllib":
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            opener.open(f"http://{ip}:{port}/", timeout=5).read()
        except urllib.error.URLError as e:
            if isinstance(e.reason, OSError) and e.reason.errno:
                return denied("urlopen", e.reason)
            print(f"ESCAPED reached the server ({e})", flush=True)
            return None
        except OSError as e:  # the server closes without answering: we still reached it
            if e.errno in (errno.EACCES, errno.EPERM, errno.ENOSYS):
                return denied("urlopen", e)
            print(f"ESCAPED reached the server ({e!r})", flush=True)
            return None
        print("ESCAPED fetched", flush=True)
    elif how == "udp":
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"nono-escape-py-udp", (ip, port))
        except OSError as e:
            return denied("udp", e)
        print("ESCAPED datagram sent", flush=True)
    return None


if __name__ == "__main__":
    main()
