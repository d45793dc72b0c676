"""Boot Debian 12's own 6.1 kernel under qemu and run a command inside it.

The VM test tier (tests/test_vm.py) uses this to run the C unit tests, the enforcement integration
tests and the escape battery on a real kernel with Landlock ABI 2, seccomp user notification, no
Landlock TCP rules, no scopes and no sync wake-up — the old-kernel paths, tested where they live.

Pieces:
- fetch_kernel(): tests/vm/fetch-kernel.sh downloads the linux-image-6.1.0-*-amd64 package (never
  installed on the host) and extracts the uncompressed vmlinux (PVH entry) — see extract_vmlinux().
- Initramfs: a cpio "newc" writer (no cpio(1) needed) that mirrors host files at their host paths,
  with their shared-library closure (ldd), busybox-static as the userland, Debian's python3 + pytest.
- run(): builds the initramfs with the project's build output at the SAME absolute paths as on the
  host (so NONO_BUILD_DIR and $ORIGIN rpaths work unchanged), boots it under TCG and returns the
  command's output (second serial port: no kernel messages mixed in) and exit status.

Command line (also via tests/vm/run-in-vm.sh):
    python3 tests/vm/vm.py run [--build-dir DIR] [--timeout S] [--no-python] -- CMD [ARGS...]
    python3 tests/vm/vm.py extract-vmlinux BZIMAGE OUT
"""
import argparse
import lzma
import os
import pathlib
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = pathlib.Path(os.environ.get("NONO_VM_CACHE", HERE / "cache"))

# Guest memory: the initramfs (~110 MB with python) lives in RAM twice while it is unpacked.
DEFAULT_MEM_MB = 1536
# Two vCPUs: the escape battery's race probes need a second CPU to race on (TCG runs one host
# thread per vCPU).
DEFAULT_SMP = 2
# TCG by default: /dev/kvm on the team's machine is a nested device on which a stock Debian kernel
# fails with "KVM internal error ... emulation failure" and then spins (measured: no output in 60 s).
DEFAULT_ACCEL = os.environ.get("NONO_VM_ACCEL", "tcg")

# Tools copied from the host (with their libraries) when present; busybox provides the rest.
# /bin/sh is dash, as on the host: busybox sh runs its own applets before PATH (its `ip` lacks
# netns).
HOST_TOOLS = ["/usr/bin/dash", "/usr/bin/bash", "/usr/sbin/ip", "/usr/bin/unshare",
              "/usr/bin/nsenter", "/usr/bin/setpriv", "/usr/bin/curl"]
# Debian packages whose programs replace busybox's applets, so tests see the host's behaviour
# (e.g. busybox ls prints /proc/self/fd entries differently from coreutils ls).
HOST_PACKAGES = ["coreutils", "grep"]
# What pytest 7.2 (Debian 12) imports from dist-packages, plus packaging (lazy import).
PYTEST_PACKAGES = ["_pytest", "pytest", "pluggy", "iniconfig", "py", "py.py", "attr", "attrs",
                   "packaging"]
PY_STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                  "distutils", "venv", "config-3.11-x86_64-linux-gnu", "site-packages",
                  "dist-packages"}

XEN_ELFNOTE_PHYS32_ENTRY = 18


class VMUnavailable(Exception):
    """qemu or the kernel cannot be had here: the tier is skipped with this reason."""


# ------------------------------------------------------------------------------------------------
# Kernel
# ------------------------------------------------------------------------------------------------

def _elf_notes(data):
    """Yield (name, type, desc) for every note in an ELF64 little-endian file's PT_NOTE segments."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            off += 12
            name = data[off:off + namesz].rstrip(b"\0")
            off += (namesz + 3) & ~3
            desc = data[off:off + descsz]
            off += (descsz + 3) & ~3
            yield name, ntype, desc


def has_pvh_note(data):
    return any(n == b"Xen" and t == XEN_ELFNOTE_PHYS32_ENTRY for n, t, _ in _elf_notes(data))


def extract_vmlinux(bzimage, out):
    """Decompress the kernel ELF embedded in a bzImage (what scripts/extract-vmlinux does, but
    exact: the boot header's payload_offset/payload_length locate the compressed payload, boot
    protocol 2.08+). Raises ValueError when the result is not an ELF with the PVH entry note."""
    b = pathlib.Path(bzimage).read_bytes()
    if b[0x202:0x206] != b"HdrS":
        raise ValueError(f"{bzimage}: not a bzImage (no HdrS)")
    setup_sects = b[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", b, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = b[start:start + payload_length]
    if payload.startswith(b"\xfd7zXZ\x00"):  # Debian 12: CONFIG_KERNEL_XZ=y
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        elf = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=True).stdout
    else:
        raise ValueError(f"{bzimage}: unknown payload compression {payload[:6].hex()}")
    if not elf.startswith(b"\x7fELF"):
        raise ValueError(f"{bzimage}: payload is not an ELF file")
    if not has_pvh_note(elf):
        raise ValueError(f"{bzimage}: vmlinux lacks the Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY)")
    tmp = pathlib.Path(str(out) + ".tmp")
    tmp.write_bytes(elf)
    tmp.replace(out)


class Kernel:
    def __init__(self, d):
        self.dir = pathlib.Path(d)
        info = dict(line.split("=", 1) for line in
                    (self.dir / "kernel.info").read_text().splitlines() if "=" in line)
        self.package, self.version, self.release = info["package"], info["version"], info["release"]
        self.vmlinuz = self.dir / "vmlinuz"
        self.vmlinux = self.dir / "vmlinux" if (self.dir / "vmlinux").exists() else None
        self.modules = sorted((self.dir / "modules").glob("*.ko"))

    def __repr__(self):
        return f"Kernel({self.package} {self.version}, pvh={self.vmlinux is not None})"


def fetch_kernel():
    r = subprocess.run(["bash", str(HERE / "fetch-kernel.sh")], capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0 or not r.stdout.strip():
        raise VMUnavailable("no Debian 6.1 kernel: fetch-kernel.sh exited %d: %s"
                            % (r.returncode, r.stderr.strip()[-600:]))
    return Kernel(r.stdout.strip().splitlines()[-1])


def find_qemu():
    q = shutil.which("qemu-system-x86_64")
    if not q:
        raise VMUnavailable("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)")
    return q


# ------------------------------------------------------------------------------------------------
# Initramfs
# ------------------------------------------------------------------------------------------------

def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


_LDD_RE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def ldd(path):
    """Absolute paths of the shared libraries (and interpreter) an ELF file needs."""
    r = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    if r.returncode != 0:  # static or not a dynamic ELF
        return []
    libs = []
    for line in r.stdout.splitlines():
        if "not found" in line:
            raise RuntimeError(f"ldd {path}: {line.strip()}")
        m = _LDD_RE.search(line)
        if m:
            libs.append(m.group(1))
    return libs


class Initramfs:
    """Collects entries (guest path -> what) and writes a cpio newc archive the kernel unpacks."""

    def __init__(self):
        self.entries = {}  # guest path (no leading /) -> ("dir"|"file"|"data"|"link"|"chr", ...)
        self._ldd_done = set()

    @staticmethod
    def _norm(p):
        return str(p).lstrip("/")

    def _parents(self, p):
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.entries:
                self.entries[d] = ("dir", 0o755, 0)

    def dir(self, p, mode=0o755):
        p = self._norm(p)
        self._parents(p)
        self.entries.setdefault(p, ("dir", mode, 0))

    def data(self, p, content, mode=0o644):
        p = self._norm(p)
        self._parents(p)
        self.entries[p] = ("data", mode, content.encode() if isinstance(content, str) else content)

    def symlink(self, p, target, replace=False):
        p = self._norm(p)
        if p in self.entries and not replace:
            return
        self._parents(p)
        self.entries[p] = ("link", 0o777, target)

    def chardev(self, p, major, minor, mode=0o600):
        p = self._norm(p)
        self._parents(p)
        self.entries[p] = ("chr", mode, (major, minor))

    def file(self, host, guest=None, with_libs=True):
        """Copy a host file (following symlinks in its path as the host does) to the same path
        (or `guest`), plus, for ELF files, every library ldd names."""
        host = str(host)
        g = self._norm(guest or host)
        st = os.stat(host)
        self._parents(g)
        self.entries[g] = ("file", stat.S_IMODE(st.st_mode), host)
        if with_libs and _is_elf(host):
            self.libs_of(host)

    def host_path(self, host):
        """Mirror a host path exactly: symlinks stay symlinks (their targets mirrored too)."""
        host = os.path.abspath(host)
        # Resolve directory symlinks in the parents (merged /usr: /lib -> usr/lib) via realpath of
        # the parent, but keep the last component's own symlink.
        parent = os.path.realpath(os.path.dirname(host))
        p = os.path.join(parent, os.path.basename(host))
        if os.path.islink(p):
            target = os.readlink(p)
            self.symlink(p, target)
            self.host_path(os.path.join(parent, target))
        elif os.path.isfile(p):
            self.file(p)
        if host != p and not self._through_link(self._norm(host)):
            self.symlink(host, p)  # the caller's spelling must work too

    def _through_link(self, p):
        """True when a parent of guest path p is a symlink in the archive (writing p would then
        write through it, over the real file)."""
        parts = p.split("/")[:-1]
        return any(self.entries.get("/".join(parts[:i]), ("",))[0] == "link"
                   for i in range(1, len(parts) + 1))

    def libs_of(self, elf):
        if elf in self._ldd_done:
            return
        self._ldd_done.add(elf)
        for lib in ldd(elf):
            self.host_path(lib)

    def tree(self, host_dir, guest_dir=None, skip=lambda rel, is_dir: False, libs=True):
        host_dir = pathlib.Path(host_dir)
        guest_dir = guest_dir or str(host_dir)
        self.dir(guest_dir)
        for dirpath, dirnames, filenames in os.walk(host_dir):
            rel_dir = os.path.relpath(dirpath, host_dir)
            dirnames[:] = [d for d in dirnames
                           if not skip(os.path.normpath(os.path.join(rel_dir, d)), True)]
            for d in dirnames:
                full = os.path.join(dirpath, d)
                g = os.path.join(guest_dir, os.path.relpath(full, host_dir))
                if os.path.islink(full):
                    self.symlink(g, os.readlink(full))
                else:
                    self.dir(g)
            for f in filenames:
                rel = os.path.normpath(os.path.join(rel_dir, f))
                if skip(rel, False):
                    continue
                full = os.path.join(dirpath, f)
                g = os.path.join(guest_dir, rel)
                if os.path.islink(full):
                    self.symlink(g, os.readlink(full))
                elif os.path.isfile(full):
                    self.file(full, g, with_libs=libs)

    def write(self, out):
        """Write the archive. mtimes are kept (python's .pyc files are validated against them)."""
        ino = 1
        with open(out, "wb") as f:
            def emit(name, mode, nlink, mtime, body, rdev=(0, 0)):
                nonlocal ino
                nb = name.encode() + b"\0"
                hdr = "070701" + "".join("%08X" % v for v in (
                    ino, mode, 0, 0, nlink, mtime, len(body), 0, 0, rdev[0], rdev[1], len(nb), 0))
                ino += 1
                f.write(hdr.encode() + nb)
                f.write(b"\0" * (-(110 + len(nb)) % 4))
                f.write(body)
                f.write(b"\0" * (-len(body) % 4))

            for name in sorted(self.entries):  # sorted: parents before children
                kind, mode, arg = self.entries[name]
                if kind == "dir":
                    emit(name, stat.S_IFDIR | mode, 2, 0, b"")
                elif kind == "link":
                    emit(name, stat.S_IFLNK | 0o777, 1, 0, arg.encode())
                elif kind == "chr":
                    emit(name, stat.S_IFCHR | mode, 1, 0, b"", rdev=arg)
                elif kind == "data":
                    emit(name, stat.S_IFREG | mode, 1, 0, arg)
                else:
                    st = os.stat(arg)
                    with open(arg, "rb") as src:
                        emit(name, stat.S_IFREG | mode, 1, int(st.st_mtime), src.read())
            emit("TRAILER!!!", 0, 1, 0, b"")


def add_base(ir, kernel, python=True):
    """busybox userland, /etc basics, the guest init, modules, host tools, python3 + pytest."""
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64"):
        ir.dir(d)
    for top in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):  # Debian 12 is merged-/usr
        if os.path.islink("/" + top) or top in ("bin", "sbin", "lib", "lib64"):
            ir.symlink(top, "usr/" + top)
    for d in ("proc", "sys", "dev", "tmp", "run", "root", "etc", "nono", "nono/modules"):
        ir.dir(d, 0o1777 if d == "tmp" else 0o755)
    ir.chardev("dev/console", 5, 1)
    ir.chardev("dev/null", 1, 3, 0o666)
    ir.file(HERE / "init.sh", "init")
    for m in kernel.modules:
        ir.file(m, "nono/modules/" + m.name, with_libs=False)
    ir.data("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                          "nobody:x:65534:65534:nobody:/:/bin/false\n")
    ir.data("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    ir.data("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    ir.data("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n")
    ir.data("etc/resolv.conf", "")
    for t in HOST_TOOLS + package_programs(HOST_PACKAGES):
        if os.path.exists(t):
            ir.host_path(t)
    busybox = shutil.which("busybox") or "/bin/busybox"
    ir.file(os.path.realpath(busybox), "usr/bin/busybox", with_libs=False)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    if python:
        add_python(ir)
    if os.path.exists("/usr/bin/dash"):
        ir.symlink("usr/bin/sh", "dash")
    for a in applets:  # after the real tools: an existing entry wins
        g = "usr/" + a if not a.startswith("usr/") else a
        ir.symlink(g, "/usr/bin/busybox")


def package_programs(pkgs):
    """The programs (bin/ and sbin/ entries) an installed Debian package ships; [] without dpkg."""
    try:
        r = subprocess.run(["dpkg", "-L", *pkgs], capture_output=True, text=True)
    except OSError:
        return []
    return [p for p in r.stdout.split("\n") if re.search(r"/s?bin/[^/]+$", p) and os.path.isfile(p)]


def add_python(ir):
    ir.host_path("/usr/bin/python3")
    ver = os.path.basename(os.path.realpath("/usr/bin/python3"))  # python3.11 on Debian 12
    stdlib = pathlib.Path("/usr/lib") / ver

    def skip_stdlib(rel, is_dir):
        top = rel.split("/")[0]
        return top in PY_STDLIB_SKIP or (not is_dir and rel.endswith(".pth"))
    ir.tree(stdlib, skip=skip_stdlib)
    dist = pathlib.Path("/usr/lib/python3/dist-packages")
    for name in PYTEST_PACKAGES:
        p = dist / name
        if p.is_dir():
            ir.tree(p)
        elif p.is_file():
            ir.file(p)
    pyc = dist / "__pycache__"
    for name in PYTEST_PACKAGES:
        if name.endswith(".py"):
            for c in pyc.glob(name[:-3] + ".*.pyc"):
                ir.file(c)


def _build_skip(rel, is_dir):
    """What of a meson build dir the guest needs: every ELF (executables, libnono.so, the python
    extension), *.py and meson-info (conftest's asan_build() reads it); not objects or logs."""
    top = rel.split("/")[0]
    if is_dir:
        return rel.endswith(".p") or top in ("meson-private", "meson-logs")
    return rel.endswith((".o", ".a", ".ninja", ".ninja_log", ".ninja_deps"))


def add_project(ir, build_dir):
    """The source tree at its host path (tests read sources and docs too) without .git, build
    dirs and the VM cache; then the build output, also at its host path."""
    build_dir = pathlib.Path(build_dir).resolve()

    def skip_source(rel, is_dir):
        top = rel.split("/")[0]
        if top.startswith((".git", "build")) or rel == "tests/vm/cache" or "__pycache__" in rel:
            return True
        return (ROOT / rel).resolve() == build_dir
    ir.tree(ROOT, skip=skip_source, libs=False)

    def skip_build(rel, is_dir):
        if _build_skip(rel, is_dir):
            return True
        if is_dir or rel.startswith("meson-info/") or rel.endswith(".py"):
            return False  # .py: the binding's package files meson copies next to the extension
        return not _is_elf(build_dir / rel)
    ir.tree(build_dir, skip=skip_build, libs=True)


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------

class VMResult:
    def __init__(self, status, output, console, elapsed, kernel_image, booted, timed_out):
        self.status = status          # the command's exit status; None when it never finished
        self.output = output          # the command's stdout+stderr (second serial port)
        self.console = console        # kernel console (ttyS0)
        self.elapsed = elapsed
        self.kernel_image = kernel_image
        self.booted = booted
        self.timed_out = timed_out
        m = re.search(r"^NONO-VM-BOOTED (\S+)", output, re.M)
        self.release = m.group(1) if m else None

    def describe(self, output=True):
        tail = "\n".join(self.console.splitlines()[-25:])
        out = f"--- output ---\n{self.output[-6000:]}\n" if output else ""
        return (f"guest status={self.status} booted={self.booted} timed_out={self.timed_out} "
                f"elapsed={self.elapsed:.1f}s image={self.kernel_image}\n{out}"
                f"--- console tail ---\n{tail}")


def _qemu(kernel_image, initrd, workdir, mem, smp, accel, timeout, append):
    qemu = find_qemu()
    out_log, con_log = workdir / "out.log", workdir / "console.log"
    for p in (out_log, con_log):
        p.write_bytes(b"")
    cmd = [qemu, "-accel", accel, "-machine", "pc", "-m", str(mem),
           "-smp", str(smp), "-nodefaults", "-no-user-config", "-display", "none",
           "-no-reboot", "-monitor", "none",
           "-serial", f"file:{con_log}", "-serial", f"file:{out_log}",
           "-kernel", str(kernel_image), "-initrd", str(initrd),
           "-append", append]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    timed_out = False
    try:
        qout = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        qout = p.communicate()[0]
    elapsed = time.monotonic() - t0
    output = out_log.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
    console = con_log.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
    console += qout.decode("utf-8", "replace")
    return output, console, elapsed, timed_out


def run(command, build_dir=None, timeout=600, mem=DEFAULT_MEM_MB, smp=DEFAULT_SMP,
        accel=DEFAULT_ACCEL, python=True, kernel=None, files=(), keep=False):
    """Boot the 6.1 kernel with the project inside and run `command` (a shell script text, run by
    busybox sh in /). `files`: extra (host, guest) pairs. Returns a VMResult; raises VMUnavailable
    when qemu or the kernel cannot be had."""
    find_qemu()
    kernel = kernel or fetch_kernel()
    ir = Initramfs()
    add_base(ir, kernel, python=python)
    if build_dir:
        add_project(ir, build_dir)
    for host, guest in files:
        ir.file(host, guest)
    ir.data("nono/cmd.sh", command, 0o755)
    CACHE.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    try:
        initrd = work / "initramfs.cpio"
        ir.write(initrd)
        # quiet + loglevel: the console still shows warnings and panics. panic=-1 reboots at once
        # on a panic, and -no-reboot turns that into qemu exiting.
        append = "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init"
        images = [kernel.vmlinux, kernel.vmlinuz] if kernel.vmlinux else [kernel.vmlinuz]
        for i, image in enumerate(images):
            output, console, elapsed, timed_out = _qemu(image, initrd, work, mem, smp, accel,
                                                        timeout, append)
            booted = "NONO-VM-BOOTED" in output
            if booted or i == len(images) - 1:
                break
            # The PVH vmlinux did not reach /init: fall back to the bzImage (record why).
            sys.stderr.write(f"vm: {image.name} did not boot; retrying with the bzImage\n"
                             + console[-2000:] + "\n")
        m = re.search(r"^NONO-VM-EXIT (\d+)\s*$", output, re.M)
        status = int(m.group(1)) if m else None
        if m:
            output = output[:m.start()]
        return VMResult(status, output, console, elapsed, image.name, booted, timed_out)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract-vmlinux")
    ex.add_argument("bzimage")
    ex.add_argument("out")
    rp = sub.add_parser("run")
    rp.add_argument("--build-dir", default=os.environ.get("NONO_BUILD_DIR"))
    rp.add_argument("--timeout", type=float, default=600)
    rp.add_argument("--mem", type=int, default=DEFAULT_MEM_MB)
    rp.add_argument("--smp", type=int, default=DEFAULT_SMP)
    rp.add_argument("--accel", default=DEFAULT_ACCEL)
    rp.add_argument("--no-python", action="store_true")
    rp.add_argument("--keep", action="store_true", help="keep the work dir (initramfs, logs)")
    rp.add_argument("--console", action="store_true", help="print the kernel console too")
    rp.add_argument("argv", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "extract-vmlinux":
        try:
            extract_vmlinux(a.bzimage, a.out)
        except (ValueError, OSError, subprocess.CalledProcessError) as e:
            print(f"extract-vmlinux: {e}", file=sys.stderr)
            return 1
        return 0
    script = "cd %s\n%s\n" % (shlex.quote(str(ROOT)), shlex.join(a.argv))
    try:
        r = run(script, build_dir=a.build_dir, timeout=a.timeout, mem=a.mem, smp=a.smp,
                accel=a.accel, python=not a.no_python, keep=a.keep)
    except VMUnavailable as e:
        print(f"vm: unavailable: {e}", file=sys.stderr)
        return 77
    sys.stdout.write(r.output)
    if a.console or r.status is None:
        sys.stderr.write(r.console)
    sys.stderr.write(f"vm: {r.kernel_image} {r.release} status={r.status} "
                     f"elapsed={r.elapsed:.1f}s timed_out={r.timed_out}\n")
    return 125 if r.status is None else r.status


if __name__ == "__main__":
    sys.exit(main())
