"""The snapshot manifest's binary format (version 2, src/lib/snapshot_bin.c) for the tests: read a
manifest's fields, change one in place (tampering tests), and write the same snapshot in the text
format every snapshot used before (version 1), to check old stores still load."""
import struct

MAGIC = b"nono-snapshot 2\n"
HEAD = struct.Struct("<16sIIqQ32s32s")  # magic, number, n_roots, parent, n_entries, timestamp, merkle
ROOT = struct.Struct("<IB3x")
ENTRY = struct.Struct("<B3xIIIIIIIQqqQQ32s")


def read(path):
    """{number, parent, timestamp, merkle (hex), roots [(path, is_file)], entries [dict]}; every
    entry also has `offset`, where its fixed part starts in the file."""
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
    for _ in range(n_entries):
        (typ, root, mode, rl, tl, mns, cns, _zero, size, mtime, ctime, ino, dev,
         h) = ENTRY.unpack_from(data, off)
        rel = data[off + ENTRY.size:off + ENTRY.size + rl]
        target = data[off + ENTRY.size + rl:off + ENTRY.size + rl + tl] if tl else None
        entries.append(dict(offset=off, type=chr(typ), root=root, mode=mode, size=size, mtime=mtime,
                            mtime_ns=mns, ctime=ctime, ctime_ns=cns, ino=ino, dev=dev, hash=h,
                            rel=rel, target=target))
        off += ENTRY.size + rl + tl
    assert off == len(data)
    return dict(number=number, parent=None if parent < 0 else parent,
                timestamp=ts.rstrip(b"\0").decode(), merkle=merkle.hex(), roots=roots,
                entries=entries)


def set_mode(path, rel, mode):
    """Change the recorded mode of the entry whose relative path is rel (bytes)."""
    m = read(path)
    e = next(e for e in m["entries"] if e["rel"] == rel)
    with open(path, "r+b") as f:
        f.seek(e["offset"] + 8)
        f.write(struct.pack("<I", mode))


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
