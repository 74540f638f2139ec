#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tidy: the style checks a compiler does not make (TigerBeetle's tidy idea).
Run by CTest (test `tidy`). Each rule names its replacement.

  - lines of C++ at most 100 columns; headers start with #pragma once (after comments)
  - banned calls, each with the seam to use instead
  - no FIXME; a TODO names an issue: TODO(#12)
  - module dependency direction: base <- io <- log <- index <- store <- wire <- toolkit <- rooms <- server <- cli
  - no networking or JSON headers in log/, index/, store/
  - every docs/formats/*.md is named by a source file, and every path it names exists
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ["base", "io", "log", "index", "store", "wire", "toolkit", "rooms", "server", "cli"]
# A module may include itself, the public API and the modules before it.
ALLOWED = {layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)}
ALLOWED["testing"] = {"base", "io", "testing"}

BANNED = [
    (re.compile(r"(?<![\w:])assert\("), "assert( -> VL_ASSERT", None),
    (re.compile(r"std::rand\b|(?<![\w.])rand\("), "rand -> Prng (base/prng.h)", None),
    (re.compile(r"system_clock::now"), "system_clock::now -> Clock (base/clock.h)", "src/base/clock"),
    (re.compile(r"(?<![\w:.>])(::)?(pwrite|fsync|fdatasync)\("), "pwrite/fsync -> io::FileSystem",
     "src/io/"),
    (re.compile(r"std::endl"), "std::endl -> '\\n'", None),
]
VALUE_CALL = re.compile(r"[\w\)\]]\.value\(\)")
NO_NETWORK = re.compile(r'#include\s*[<"](boost/|grpcpp|google/protobuf|nlohmann/)')
INCLUDE = re.compile(r'#include\s+"([a-z_]+)/')


def source_files():
    for top in ("src", "include", "tests", "bench"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if name.endswith((".h", ".cc")):
                    yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def client_sources():
    """The TypeScript client's sources, which may own a format doc too."""
    top = os.path.join(ROOT, "clients", "js", "src")
    for dirpath, _, names in os.walk(top):
        for name in names:
            if name.endswith(".ts"):
                yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def is_test(path):
    return path.startswith(("tests/", "bench/")) or path.endswith("_test.cc") or \
        path.endswith("_test_suite.h") or path.startswith("src/testing/")


def check_file(path, problems):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    module = path.split("/")[1] if path.startswith("src/") else None
    code_lines = [l for l in lines if l.strip() and not l.strip().startswith("//")]
    if path.endswith(".h") and (not code_lines or code_lines[0].strip() != "#pragma once"):
        problems.append(f"{path}: a header starts with #pragma once")
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if len(line) > 100:
            problems.append(f"{where}: line longer than 100 columns")
        if "FIXME" in line:
            problems.append(f"{where}: FIXME may not reach main")
        if "TODO" in line and not re.search(r"TODO\(#\d+\)", line):
            problems.append(f"{where}: TODO must name an issue: TODO(#N)")
        stripped = line.split("//")[0]
        for pattern, message, allowed_prefix in BANNED:
            if pattern.search(stripped) and not (allowed_prefix and path.startswith(allowed_prefix)):
                if not is_test(path) or "assert(" in message:
                    problems.append(f"{where}: {message}")
        if VALUE_CALL.search(stripped) and not is_test(path) and "optional" not in stripped:
            problems.append(f"{where}: .value() outside tests -> VL_TRY")
        if path.endswith(".h") and re.match(r"\s*using namespace", line):
            problems.append(f"{where}: using namespace in a header")
        if module in ("log", "index", "store") and NO_NETWORK.search(line):
            problems.append(f"{where}: storage code includes networking/JSON headers")
        m = INCLUDE.search(line)
        if module in ALLOWED and m and m.group(1) in LAYERS + ["testing"]:
            if m.group(1) not in ALLOWED[module] and not is_test(path):
                problems.append(f"{where}: {module}/ may not include {m.group(1)}/ "
                                f"(direction base <- io <- log <- index <- store <- wire <- toolkit <- rooms <- server <- cli)")


def check_format_docs(problems):
    docs_dir = os.path.join(ROOT, "docs", "formats")
    sources = "".join(open(os.path.join(ROOT, p), encoding="utf-8").read()
                      for p in list(source_files()) + list(client_sources())
                      if p.startswith(("src/", "clients/")))
    for name in sorted(os.listdir(docs_dir)):
        if not name.endswith(".md"):
            continue
        doc = f"docs/formats/{name}"
        if doc not in sources:
            problems.append(f"{doc}: no source file names this format doc")
        text = open(os.path.join(docs_dir, name), encoding="utf-8").read()
        for ref in sorted(set(re.findall(r"`((?:src|include|tests|docs|clients)/[\w./-]+)`", text))):
            ref = ref.split("/.")[0]  # "a/b.h/.cc" names a.h and a.cc
            if "vN" in ref:
                continue  # a pattern, not a path
            if not os.path.exists(os.path.join(ROOT, ref)):
                problems.append(f"{doc}: names {ref}, which does not exist")


def main():
    problems = []
    for path in sorted(source_files()):
        check_file(path, problems)
    check_format_docs(problems)
    for problem in problems:
        print(problem)
    print(f"tidy: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
