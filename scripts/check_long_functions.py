#!/usr/bin/env python3
"""check_long_functions.py — `make check-tests`: no function body longer than
LIMIT lines (80) without a comment directly above its signature saying why it
is one piece (the project's rule: functions short, or a sentence saying why).

Scans the library folders, cli/ and cuda/ (*.c, *.h, *.cu, *.cuh, *.cc). A
function is a top-level brace block (also inside `extern "C" { }` or a
namespace) whose header ends in a parameter list; its length counts the lines
from its opening brace to its closing brace, both included. Comments, string
and character literals and preprocessor lines are skipped while matching
braces, so a brace inside them does not count. "Directly above" means the
line before the signature's first line ends a block comment or is a //
comment.

Prints every long function; exits 1 when one has no comment above it.
Run from the repository root: python3 scripts/check_long_functions.py [-v]
"""
import glob
import re
import sys

LIMIT = 80
FOLDERS = ["common", "models", "hwmodels", "engines", "refimpl", "workload", "llm", "traces", "sim", "serve",
           "golden", "sweep", "report", "capi", "cli", "cuda"]
EXTS = ["c", "h", "cu", "cuh", "cc"]

# A header (text between the previous top-level statement and a '{') that
# opens a function: ends in ')' optionally followed by qualifiers/attributes.
FUNC_TAIL = re.compile(r"\)\s*(?:(?:const|noexcept|override|final|__attribute__\s*\(\(.*\)\)|[A-Z_][A-Z0-9_]*)\s*)*$",
                       re.S)
CONTAINER = re.compile(r'^(?:extern\s+"C"|namespace(?:\s+\w+)?)$')


def strip_code(text):
    """Returns text with comments, literals and preprocessor lines replaced by
    spaces (newlines kept), so line numbers and braces stay where they are."""
    out = []
    i, n = 0, len(text)
    bol = True  # at the beginning of a line (only spaces so far)
    while i < n:
        c = text[i]
        if bol and c == "#":  # preprocessor line, with backslash continuations
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else " ")
            i = j
            bol = False
            continue
        out.append(c)
        if c == "\n":
            bol = True
        elif not c.isspace():
            bol = False
        i += 1
    return "".join(out)


def functions(path):
    """Yields (signature line, brace line, closing line, first signature text) per function (1-based lines)."""
    raw = open(path, encoding="utf-8", errors="replace").read()
    code = strip_code(raw)
    raw_lines = raw.split("\n")
    depth = 0        # brace depth counted from the innermost container
    containers = 0   # open extern "C" / namespace blocks
    stack = []       # per open brace: 'container', 'func' or 'other'
    head_start = 0   # offset where the current top-level header begins
    func_open = None
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            if depth == 0:
                head = code[head_start:i].strip()
                if CONTAINER.match(head):
                    stack.append("container")
                    containers += 1
                    head_start = i + 1
                    continue
                if "(" in head and FUNC_TAIL.search(head) and "=" not in head.split("(")[0]:
                    k = head_start
                    while code[k].isspace():
                        k += 1
                    func_open = (code.count("\n", 0, k) + 1, line)
                    stack.append("func")
                else:
                    stack.append("other")
            else:
                stack.append("other")
            depth += 1
        elif c == "}":
            if not stack:
                continue
            kind = stack.pop()
            if kind == "container":
                containers -= 1
                head_start = i + 1
                continue
            depth -= 1
            if depth == 0:
                if kind == "func" and func_open:
                    sig, brace = func_open
                    yield sig, brace, line, raw_lines[sig - 1].strip()
                    func_open = None
                head_start = i + 1
        elif c == ";" and depth == 0:
            head_start = i + 1


def has_comment_above(lines, sig):
    if sig < 2:
        return False
    above = lines[sig - 2].rstrip()
    return above.endswith("*/") or above.lstrip().startswith("//")


def main():
    verbose = "-v" in sys.argv[1:]
    files = sorted({f for d in FOLDERS for e in EXTS for f in glob.glob(f"{d}/**/*.{e}", recursive=True)})
    long_n = bad = 0
    for f in files:
        lines = open(f, encoding="utf-8", errors="replace").read().split("\n")
        for sig, brace, end, text in functions(f):
            n = end - brace + 1
            if n <= LIMIT:
                continue
            long_n += 1
            ok = has_comment_above(lines, sig)
            if not ok:
                bad += 1
                print(f"{f}:{sig}: {n} lines and no comment above saying why: {text[:70]}", file=sys.stderr)
            elif verbose:
                print(f"{f}:{sig}: {n} lines (commented): {text[:70]}")
    if bad:
        print(f"check_long_functions: {bad} of {long_n} functions over {LIMIT} lines have no comment directly above "
              "them; split them into named steps or write the sentence saying why they are one piece", file=sys.stderr)
        return 1
    print(f"check_long_functions: {long_n} functions over {LIMIT} lines, each with a comment saying why")
    return 0


if __name__ == "__main__":
    sys.exit(main())
