"""Every command example of README.md and docs/guide.md, run as written.

What counts as an example: each fenced ```sh block. In a block whose lines start with "$ " (a
transcript) the "$ " lines are the commands and the rest is their output (not compared: it varies
by machine); in any other block each non-empty line that is not a comment is one command (a
trailing "# comment" is part of it, as in a shell). An HTML comment on the line before the fence
changes that, and is the only marking the docs need:

    <!-- doc-test: script -->          the whole block runs as one bash script
    <!-- doc-test: skip: REASON -->    not run here (REASON says why, e.g. it installs packages)

Each command runs under bash (so ~ and quotes mean what they mean to a reader) in a fixture that
stands in for a reader's machine: HOME is a temp dir with ~/.cache, ~/.cache/pip, ~/.gitconfig and
~/src/app, a C project with a Makefile (all, test), build.sh and a git repository, which is also the
working directory; PATH starts with this build's nono and a stub `agent` (in the project's tools/). The stub stands in for a
remote-using program without sending anything off the machine: when it has a proxy it asks it for
a host that is not allowed and expects the proxy's own 403 (no DNS, no upstream). Every command must
exit 0."""
import os
import pathlib
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

DOCS = ["README.md", "docs/guide.md"]

AGENT = r"""#!/bin/sh
# stub agent: with a proxy, ask it for a host off the allowlist; the proxy answers 403 itself.
if [ -n "$HTTPS_PROXY" ]; then
    code=$(curl -sS -o /dev/null -w '%{http_code}' http://not-allowed.invalid/ 2>&1)
    [ "$code" = 403 ] || { echo "agent: expected the proxy's 403, got $code" >&2; exit 1; }
fi
echo agent ok
"""


def examples():
    """(doc, line number, mode, text) for every example; mode is "lines", "script" or "skip"."""
    out = []
    for doc in DOCS:
        lines = (ROOT / doc).read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() != "```sh":
                i += 1
                continue
            start = i
            marker = lines[i - 1].strip() if i else ""
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            m = re.fullmatch(r"<!-- doc-test: (script|skip)(?::\s*(.*?))? -->", marker)
            mode = m.group(1) if m else "lines"
            if mode == "skip":
                assert m.group(2), f"{doc}:{start + 1}: doc-test: skip needs a reason"
                continue
            if mode == "script":
                out.append((doc, start + 2, "script", "\n".join(body)))
                continue
            transcript = any(b.startswith("$ ") for b in body)
            for n, b in enumerate(body):
                cmd = b[2:] if transcript and b.startswith("$ ") else (None if transcript else b)
                if cmd and cmd.strip() and not cmd.lstrip().startswith("#"):
                    out.append((doc, start + 2 + n, "line", cmd))
    return out


@pytest.fixture(scope="module")
def reader_machine(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    for d in (".cache/pip", "src/app/tools"):
        (home / d).mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Reader\n\temail = r@example.invalid\n"
                                     "[safe]\n\tdirectory = *\n")
    app = home / "src" / "app"
    (app / "main.c").write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    (app / "Makefile").write_text("all: app\napp: main.c\n\t$(CC) -o app main.c\n"
                                  "test: app\n\t./app\n.PHONY: all test\n")
    (app / "build.sh").write_text("#!/bin/sh\nset -e\nmake\n./app\n")
    (app / "build.sh").chmod(0o755)
    # inside the project, which the examples grant (a real agent lives in /usr/local/bin, under
    # the system set)
    (app / "tools" / "agent").write_text(AGENT)
    (app / "tools" / "agent").chmod(0o755)
    env = {"HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "PATH": f"{BUILD / 'src' / 'cli'}:{app / 'tools'}:/usr/local/bin:/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", "."], cwd=app, env=env, check=True)
    subprocess.run(["git", "add", "."], cwd=app, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "app"], cwd=app, env=env, check=True)
    return app, env


EXAMPLES = examples()


def test_the_docs_have_examples():
    assert len(EXAMPLES) >= 10, EXAMPLES
    assert any("--allow-domain" in e[3] for e in EXAMPLES)


@pytest.mark.parametrize("doc,line,mode,text", EXAMPLES,
                         ids=[f"{d}:{n}" for d, n, _, _ in EXAMPLES])
def test_doc_example_runs_as_written(reader_machine, doc, line, mode, text):
    app, env = reader_machine
    r = subprocess.run(["/bin/bash", "-c", text], cwd=app, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{doc}:{line}: {text}\n{r.stdout}\n{r.stderr}"
    if mode == "script":
        assert r.stdout.strip(), f"{doc}:{line}: the script printed nothing"
