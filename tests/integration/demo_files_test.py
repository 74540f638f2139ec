#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end test of `vellum serve --demo-dir` (docs/api/http.md, "Demo files").

The real binary over real sockets: the /demo -> /demo/ redirect, index.html,
content types, Cache-Control, HEAD, traversal refused (plain, percent-encoded,
symbolic links out of the directory), missing files, the size limit, the
TOML key, and the 404 of a server started without --demo-dir.

Usage: /usr/bin/python3 demo_files_test.py <path to vellum> [test name substring ...]
"""
import http.client
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402  (the Server helper and checks)
from server_test import TestFailure, check, check_eq  # noqa: E402

TESTS = []


def test(function):
    TESTS.append(function)
    return function


def raw_request(server, method, target):
    """A request whose target is sent byte for byte (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return st.Response(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


class Env:
    def __init__(self):
        self.servers = {}
        self.demo = None

    def demo_dir(self):
        if self.demo is None:
            self.demo = os.path.join(st.WORK, "demo")
            os.makedirs(os.path.join(self.demo, "sub"))
            files = {
                "index.html": b"<!doctype html><title>demo</title>",
                "app.js": b"console.log('demo');",
                "mod.mjs": b"export const x = 1;",
                "style.css": b"body{}",
                "logo.svg": b"<svg/>",
                "data.json": b"{\"a\":1}",
                "app.js.map": b"{}",
                "site.webmanifest": b"{}",
                "notes.txt": b"hello",
                "blob.bin": bytes(range(256)),
                "sub/index.html": b"<p>sub</p>",
                "sub/page.html": b"<p>page</p>",
            }
            for name, data in files.items():
                with open(os.path.join(self.demo, name), "wb") as f:
                    f.write(data)
            with open(os.path.join(st.WORK, "secret.txt"), "wb") as f:
                f.write(b"outside")
            os.symlink(os.path.join(st.WORK, "secret.txt"), os.path.join(self.demo, "link.txt"))
            with open(os.path.join(self.demo, "big.bin"), "wb") as f:
                f.truncate(16 * 1024 * 1024 + 1)  # sparse: one byte over the limit
        return self.demo

    def server(self, name="demo"):
        if name not in self.servers:
            args = ["--demo-dir", self.demo_dir()] if name == "demo" else []
            self.servers[name] = st.Server(name, global_args=["--durability", "none"],
                                           args=args).start()
        return self.servers[name]

    def stop_all(self):
        problems = []
        for name, server in self.servers.items():
            rc = server.stop()
            if rc != 0:
                problems.append(f"{name} exited with {rc}: {server.log_tail()}")
        return problems


@test
def redirects_demo_to_demo_slash(env):
    s = env.server()
    for method in ("GET", "HEAD"):
        r = raw_request(s, method, "/demo")
        check_eq(r.status, 308, f"{method} /demo")
        check_eq(r.headers.get("Location"), "/demo/", "Location")
    r = raw_request(s, "GET", "/demo?x=1")
    check_eq(r.headers.get("Location"), "/demo/?x=1", "the query is kept")


@test
def serves_index_and_files_with_content_types(env):
    s = env.server()
    r = raw_request(s, "GET", "/demo/")
    check_eq(r.status, 200, "/demo/")
    check_eq(r.body, b"<!doctype html><title>demo</title>", "index.html")
    check_eq(r.headers.get("Content-Type"), "text/html; charset=utf-8", "index type")
    check_eq(r.headers.get("Cache-Control"), "no-cache", "Cache-Control")
    expected = {
        "app.js": "text/javascript; charset=utf-8",
        "mod.mjs": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
        "logo.svg": "image/svg+xml",
        "data.json": "application/json",
        "app.js.map": "application/json",
        "site.webmanifest": "application/manifest+json",
        "notes.txt": "text/plain; charset=utf-8",
        "blob.bin": "application/octet-stream",
        "sub/page.html": "text/html; charset=utf-8",
    }
    for name, content_type in expected.items():
        r = raw_request(s, "GET", "/demo/" + name)
        check_eq(r.status, 200, name)
        check_eq(r.headers.get("Content-Type"), content_type, f"type of {name}")
        with open(os.path.join(env.demo_dir(), name), "rb") as f:
            check_eq(r.body, f.read(), f"body of {name}")
    check_eq(raw_request(s, "GET", "/demo/sub/").body, b"<p>sub</p>", "a directory's index")
    check_eq(raw_request(s, "GET", "/demo/%61pp.js").status, 200, "percent-encoded letters")


@test
def head_has_the_headers_without_the_body(env):
    s = env.server()
    r = raw_request(s, "HEAD", "/demo/notes.txt")
    check_eq(r.status, 200, "HEAD")
    check_eq(r.headers.get("Content-Length"), "5", "HEAD Content-Length")
    check_eq(r.body, b"", "HEAD body")
    check_eq(raw_request(s, "POST", "/demo/notes.txt").status, 405, "POST")


@test
def refuses_traversal(env):
    s = env.server()
    for target in ["/demo/../secret.txt", "/demo/sub/../../secret.txt", "/demo/%2e%2e/secret.txt",
                   "/demo/%2E%2E/secret.txt", "/demo/sub%2f..%2f..%2fsecret.txt",
                   "/demo/./index.html", "/demo//index.html", "/demo/..%5csecret.txt"]:
        r = raw_request(s, "GET", target)
        check(r.status in (400, 404), f"{target}: {r}")
        check(b"outside" not in r.body, f"{target} leaked the file")
        check("error" in r.json(), f"{target}: JSON error body")
    r = raw_request(s, "GET", "/demo/link.txt")
    check_eq(r.status, 404, "a symbolic link out of the directory")
    check(b"outside" not in r.body, "the link leaked the file")


@test
def missing_files_directories_and_large_files(env):
    s = env.server()
    r = raw_request(s, "GET", "/demo/nope.js")
    check_eq(r.status, 404, "missing file")
    check_eq(r.json()["error"], "not_found", "error code")
    check("message" in r.json(), "error message")
    check_eq(raw_request(s, "GET", "/demo/sub").status, 404, "a directory without its slash")
    r = raw_request(s, "GET", "/demo/big.bin")
    check_eq(r.status, 403, "a file over 16 MiB")


@test
def without_demo_dir_says_how_to_start(env):
    s = env.server("plain")
    r = raw_request(s, "GET", "/demo/")
    check_eq(r.status, 404, "/demo/ without --demo-dir")
    check("--demo-dir" in r.json()["message"], f"the message names the flag: {r}")


@test
def toml_key_and_a_bad_directory(env):
    config = os.path.join(st.WORK, "demo.toml")
    with open(config, "w") as f:
        f.write(f'demo_dir = "{env.demo_dir()}"\n')
    s = st.Server("toml", global_args=["--durability", "none"], args=["--config", config]).start()
    try:
        check_eq(raw_request(s, "GET", "/demo/notes.txt").body, b"hello", "demo_dir from TOML")
    finally:
        check_eq(s.stop(), 0, "toml server exit")
    bad = st.Server("bad", global_args=["--durability", "none"],
                    args=["--demo-dir", os.path.join(st.WORK, "no-such-dir")])
    try:
        bad.start()
        raise TestFailure("a missing --demo-dir was accepted")
    except TestFailure as error:
        check("before listening" in str(error), f"refused at start: {error}")


def main():
    return st.script_main("demo_files_test", TESTS, Env)


if __name__ == "__main__":
    sys.exit(main())
