#!/usr/bin/env python3
"""Import direction of host/src: nothing reaches backwards, and only `env` reads the process
environment (`make lint`).

Every module of the library sits in one layer below. A module may use only modules of
lower layers: never one of its own layer (peers do not know each other) nor one above.
Every `crate::<module>` path counts (a `use`, a `pub use`, a path in an expression, a test
module), and so does a `super::` path that climbs to the crate root; comments and string
literals do not. The binary (host/src/bin) sits above everything and is not checked.

    python3 tests/layers.py [SRC]    # SRC defaults to host/src beside this file

Prints one line per backwards path, `host/src/FILE:LINE: module A imports module B, which
sits above it (layers: ...)`, and one per read of the process environment outside `env`,
and exits 1 if there is any.
"""

import os
import re
import sys

# Lowest first. One line per layer: what it is, why it sits there.
LAYERS = [
    # Leaves, used everywhere, using nothing: bounded reads; suffix sets; the closed set of
    # reason codes; log output (and `escape_controls`, which event uses for its reasons).
    ["bounded", "suffix", "reason", "logging"],
    # The S3 protocol: client, failure, retry, keys, limits, roles (the role identity lives
    # here, config names it).
    ["s3"],
    # The config model and its parser.
    ["config"],
    # The process environment, typed (`env`, read only there); the event model and decoders.
    ["env", "event"],
    # Routing, pure (org, suffix, proposed target); the config in force (`config_store`).
    ["route", "config_store"],
    # Per-org plugins (`policy`); where objects go (`destination`).
    ["policy", "destination"],
    # The decision for one object (`plan`); the record model and the fold of outcomes
    # (`report`).
    ["plan", "report"],
    # What every invocation shares (`exporter`); metric lines read from a report.
    ["exporter", "metrics"],
    # The copy step every entry point shares: the org's destination (its role), a copy per
    # target, a report per target.
    ["deliver"],
    # The entry points: one invocation, the pre-flight check, the backfill.
    ["handler", "check", "backfill"],
]

# Known backwards edges, each to be removed by the change its comment names. One that no
# longer occurs is a problem too, so this list cannot go stale.
ALLOWED: set = set()

# Reading the process environment: only `env` does it (`env::process_env`); every other
# module gets a lookup or the values passed in. (The AWS SDK's own region and credential
# providers, which `s3::client` hands to the SDK, are the SDK's business.)
ENV_READ = re.compile(
    r"(?<![\w:])(?:std\s*::\s*env\s*::\s*var\w*|env\s*::\s*var(?:_os|s|s_os)?\s*\()"
    r"|from_default_env\s*\("
)
ENV_READER = "env"

LAYER_OF = {module: i for i, layer in enumerate(LAYERS) for module in layer}


def layers_text():
    return " < ".join(", ".join(layer) for layer in LAYERS)


def blank_comments_and_strings(text):
    """The source with comments, string and char literals replaced by spaces (newlines kept,
    so offsets and line numbers stay those of the file)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not is_ident(text[i - 1])):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := re.compile(r"'(\\.[^']*|[^\\'])'").match(text, i)):
            out.append(" " * (m.end() - i))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def is_ident(c):
    return c.isalnum() or c == "_"


def module_path(rel):
    """`config/role.rs` -> ["config", "role"]; `config/mod.rs` -> ["config"]; `lib.rs` -> []."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return parts


PATH = re.compile(r"(?<![\w$])(crate|super(?:\s*::\s*super)*)\s*::\s*(\{|\w+)")


def first_segments_of_group(code, start):
    """The first path segment of each item of the `{...}` group opening at `start`."""
    depth, j, item_start, items = 0, start, start + 1, []
    while j < len(code):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                items.append(item_start)
                break
        elif code[j] == "," and depth == 1:
            items.append(item_start)
            item_start = j + 1
        j += 1
    for at in items:
        m = re.compile(r"\s*(\w+)").match(code, at)
        if m:
            yield m.start(1), m.group(1)


def inline_modules(code):
    """(start, end) offsets of every inline `mod name { ... }` body."""
    spans = []
    for m in re.finditer(r"(?<!\w)mod\s+\w+\s*\{", code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        spans.append((m.end(), j))
    return spans


def imports(code, own_path):
    """(offset, top-level module) of every path in `code` that starts at the crate root:
    `crate::x`, or a `super::` chain that climbs out of every module it is in."""
    spans = inline_modules(code)
    for m in PATH.finditer(code):
        head = m.group(1)
        if head != "crate":
            depth = len(own_path) + sum(1 for a, b in spans if a <= m.start() < b)
            if head.count("super") < depth:
                continue  # stays inside the file's own top-level module
        if m.group(2) == "{":
            yield from first_segments_of_group(code, m.start(2))
        else:
            yield m.start(2), m.group(2)


def check(src):
    """Every problem of the tree under `src`, one line each, by file and line."""
    violations, allowed_seen = [], set()
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel_root = os.path.relpath(root, src)
        if rel_root.split(os.sep)[0] == "bin":
            dirs.clear()  # the binary may use anything
            continue
        for name in sorted(files):
            if name.endswith(".rs"):
                rel = os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/")
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    violations.extend(check_file(display(src, rel), module_path(rel), f.read(), allowed_seen))
    for own, used in sorted(ALLOWED - allowed_seen):
        violations.append(f"tests/layers.py: the allowed edge {own} -> {used} no longer occurs; delete it from ALLOWED")
    return violations


def check_file(shown, path, text, allowed_seen):
    if not path:
        return []  # lib.rs only declares the modules
    own = path[0]
    if own not in LAYER_OF:
        return [f"{shown}:1: module {own} is in no layer of tests/layers.py"]
    code = blank_comments_and_strings(text)
    found = []
    if own != ENV_READER:
        for m in ENV_READ.finditer(code):
            found.append(
                (m.start(), f"module {own} reads the process environment itself; only {ENV_READER} does (pass the value in)")
            )
    for at, used in imports(code, path):
        if used == own or used in ("self", "super", "crate"):
            continue
        if used not in LAYER_OF:
            found.append((at, f"module {own} imports {used}, which is in no layer of tests/layers.py"))
        elif (own, used) in ALLOWED:
            allowed_seen.add((own, used))
        elif LAYER_OF[used] >= LAYER_OF[own]:
            where = "sits above it" if LAYER_OF[used] > LAYER_OF[own] else "is its peer in the same layer"
            found.append((at, f"module {own} imports module {used}, which {where} (layers: {layers_text()})"))
    return [f"{shown}:{code.count(chr(10), 0, at) + 1}: {message}" for at, message in sorted(found)]


def display(src, rel):
    shown = os.path.relpath(os.path.join(src, rel))
    return shown.replace(os.sep, "/")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) > 1 else os.path.join(here, "..", "host", "src")
    violations = check(src)
    for v in violations:
        print(v)
    if violations:
        print(f"{len(violations)} problem(s); the layers are declared in tests/layers.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
