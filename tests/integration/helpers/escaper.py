"""Run inside the sandbox by the lifetime tests: leave a process behind that tries to outlive the
command, the way design.md §2 says it must not.

    escaper.py MODE PIDFILE THEN

MODE: "setsid" (new session), "setpgid" (new group, same session: the terminal-stealing variant)
or "plain" (stays in the command's group). The survivor is double-forked, so it is an orphan whose
parent is gone. It writes "PID STARTTIME" to PIDFILE (atomically: rename) and sleeps.
THEN: "exit" — the command exits 0 at once; "wait" — the command sleeps (for timeouts and for
killing nono)."""
import os
import sys
import time

mode, path, then = sys.argv[1], sys.argv[2], sys.argv[3]
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    if mode == "setsid":
        os.setsid()
    elif mode == "setpgid":
        os.setpgid(0, 0)
    if os.fork() == 0:
        start = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]
        with open(path + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {start}")
        os.rename(path + ".tmp", path)
        os.write(w, b"x")
        time.sleep(100)
        os._exit(0)
    os._exit(0)
os.close(w)
os.read(r, 1)
if then == "wait":
    time.sleep(100)
