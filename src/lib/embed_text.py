#!/usr/bin/env python3
"""embed_text.py IN OUT SYMBOL — write OUT, a C file defining `const char SYMBOL[]` with IN's bytes
(the build embeds policy.json this way, so the document stays readable JSON in the tree)."""
import sys

src, out, sym = sys.argv[1:4]
data = open(src, "rb").read()
# No include: the declaration is the user's (the library builds with -fvisibility=hidden, so the
# symbol stays internal there).
lines = [f"/* Generated from {src.split('/')[-1]} by embed_text.py: do not edit. */",
         f"extern const char {sym}[];", f"const char {sym}[] ="]
for line in data.decode("utf-8").splitlines(keepends=True):
    esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines.append(f'\t"{esc}"')
lines[-1] += ";"
open(out, "w").write("\n".join(lines) + "\n")
