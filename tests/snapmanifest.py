"""The snapshot manifest's binary format (version 2, src/lib/snapshot_bin.c) for the tests: read a
manifest's fields, change one in place (tampering tests), and write the same snapshot in the text
format every snapshot used before (version 1), to check old stores still load."""
import struct

MAGIC = b"nono-snapshot 2\n"
HEAD = struct.Struct("<16sIIqQ32s32s")  # magic, number, n_roots, parent, n_entries, timestamp, merkle
ROOT = struct.Struct("<IB3x")


def _varint(data, off):
    v = shift = 0
    while True:
        b = data[off]
        off += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, off


def _svarint(data, off):
    z, off = _varint(data, off)
    return (z >> 1) ^ -(z & 1), off


def read(path):
    """{number, parent, timestamp, merkle (hex), roots [(path, is_file)], entries [dict]}; every
    entry also has `at`: where each of its fields starts in the file."""
    data = open(path, "rb").read()
    magic, number, n_roots, parent, n_entries, ts, merkle = HEAD.unpack_from(data, 0)
    assert magic == MAGIC, "not a version 2 manifest"
    off = HEAD.size
    roots = []
    for _ in range(n_roots):
        ln, kind = ROOT.unpack_from(data, off)
        off += ROOT.size
        roots.append((data[off:off + ln], bool(kind)))
        off += ln
    entries = []
    prev = dict(rel=b"", mtime=0, ino=0, dev=0)
    for _ in range(n_entries):
        e, at = {}, {"type": off}
        e["type"] = chr(data[off])
        off += 1
        for k in ("shared", "suffix_len", "target_len", "root", "mode", "size"):
            at[k] = off
            e[k], off = _varint(data, off)
        d, off = _svarint(data, off)
        e["mtime"] = prev["mtime"] + d
        at["mtime_ns"] = off
        e["mtime_ns"], = struct.unpack_from("<I", data, off)
        d, off = _svarint(data, off + 4)
        e["ctime"] = e["mtime"] + d
        e["ctime_ns"], = struct.unpack_from("<I", data, off)
        off += 4
        for k in ("ino", "dev"):
            d, off = _svarint(data, off)
            e[k] = (prev[k] + d) % (1 << 64)
        e["hash"] = None
        if e["type"] != "D":
            at["hash"] = off
            e["hash"] = data[off:off + 32]
            off += 32
        at["suffix"] = off
        e["rel"] = prev["rel"][:e["shared"]] + data[off:off + e["suffix_len"]]
        off += e["suffix_len"]
        e["target"] = data[off:off + e["target_len"]] if e["target_len"] else None
        off += e["target_len"]
        e["at"] = at
        prev = e
        entries.append(e)
    assert off == len(data)
    return dict(number=number, parent=None if parent < 0 else parent,
                timestamp=ts.rstrip(b"\0").decode(), merkle=merkle.hex(), roots=roots,
                entries=entries)


def set_mode(path, rel, mode):
    """Change the recorded mode of the entry whose relative path is rel (bytes), in place (a mode
    of the same varint length: 0o200 to 0o7777 for a file's usual 0o644)."""
    m = read(path)
    e = next(e for e in m["entries"] if e["rel"] == rel)
    assert (e["mode"] >= 128) == (mode >= 128) and mode < 1 << 14
    with open(path, "r+b") as f:
        f.seek(e["at"]["mode"])
        f.write(bytes([mode & 0x7F | 0x80, mode >> 7]) if mode >= 128 else bytes([mode]))


def _esc(b):
    return "".join("%%%02x" % c if c <= 0x20 or c == 0x7F or c == 0x25 else chr(c)
                   for c in b)


def to_text_v1(path):
    """The same snapshot as the text nono wrote before version 2 (bytes)."""
    m = read(path)
    out = ["nono-snapshot 1", f"number {m['number']}",
           "parent -" if m["parent"] is None else f"parent {m['parent']}",
           f"timestamp {m['timestamp']}", f"merkle {m['merkle']}", f"roots {len(m['roots'])}"]
    out += [f"root {_esc(p)}" + (" file" if f else "") for p, f in m["roots"]]
    out.append(f"entries {len(m['entries'])}")
    for e in m["entries"]:
        line = [e["type"], str(e["root"]), "-" if e["type"] == "D" else e["hash"].hex(),
                "%o" % e["mode"]] + [str(max(0, e[k])) for k in ("size", "mtime", "mtime_ns",
                                                                  "ctime", "ctime_ns", "ino", "dev")]
        line.append(_esc(e["rel"]))
        if e["target"] is not None:
            line.append(_esc(e["target"]))
        out.append(" ".join(line))
    return ("\n".join(out) + "\n").encode("latin-1")
