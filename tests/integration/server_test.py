#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end test of `vellum serve` (docs/api/http.md) over real sockets.

Starts the real binary on ephemeral loopback ports with fresh data
directories and drives every endpoint with http.client and the `websockets`
library (Debian: python3-websockets): appends, transactions, reads, filters,
time travel, deletion, metadata, every error status, idempotency, API keys,
the non-loopback guard, config precedence, long polls, WebSocket
subscriptions (catch-up -> live under concurrent writers, slow readers),
TLS, graceful shutdown under load, and projections declared in the config
file (state reads, paging, stop/start/reset/rebuild, lag metrics, restarts).

Usage: /usr/bin/python3 server_test.py <path to vellum> [test name substring ...]
Env: VL_KEEP_WORK=1 keeps the temporary directory (server logs are there).
"""
import asyncio
import base64
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

import websockets
import websockets.exceptions

VELLUM = None
WORK = None
STARTED = []  # every Server started, killed at the end whatever happens


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def check_eq(actual, expected, message):
    if actual != expected:
        raise TestFailure(f"{message}: expected {expected!r}, got {actual!r}")


def rfc3339(ts):
    """A Unix time (float seconds) as RFC 3339 UTC with microseconds."""
    moment = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id():
    return str(uuid.uuid4())


def ev(type_="Tested", **fields):
    event = {"type": type_}
    event.update(fields)
    return event


# ---- The server process ----

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise TestFailure(f"not JSON ({error}): {self.body[:300]!r}")

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """One `vellum serve` process. Logs (stderr) go to WORK/<name>.log."""

    def __init__(self, name, args=(), env=None, data=None, tls=None, global_args=(),
                 listen="127.0.0.1:0"):
        self.name = name
        self.args = list(args)
        self.env = env
        self.data = data or os.path.join(WORK, name + "-data")
        self.tls = tls  # (cert, key) or None
        self.global_args = list(global_args)
        self.listen = listen
        self.proc = None
        self.port = None
        self.log_path = os.path.join(WORK, name + ".log")

    def command(self):
        cmd = [VELLUM, "--data", self.data, *self.global_args, "serve"]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return cmd + self.args

    def start(self, timeout=15):
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("VELLUM_"):
                del env[key]
        env.update(self.env or {})
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, env=env)
        STARTED.append(self)
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise TestFailure(f"{self.name}: no 'listening on' line within {timeout} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                rc = self.proc.wait()
                raise TestFailure(f"{self.name}: exited with {rc} before listening; log: "
                                  f"{self.log_tail()}")
            line += chunk
        match = re.fullmatch(rb"listening on (\S+):(\d+)\n", line)
        check(match is not None, f"{self.name}: unexpected first stdout line {line!r}")
        self.port = int(match.group(2))
        return self

    def log_tail(self, size=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure(f"{self.name}: did not exit within {timeout} s of SIGTERM")
        extra = self.proc.stdout.read()
        check(extra == b"", f"{self.name}: stdout has more than the listening line: {extra!r}")
        self.proc.stdout.close()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    # ---- HTTP ----

    def ssl_context(self):
        context = ssl.create_default_context(cafile=self.tls[0])
        return context

    def connection(self, timeout=15):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=None, timeout=15):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return Response(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def append(self, stream, events, expected=None, token=None):
        body = {"events": events}
        if expected is not None:
            body["expectedRevision"] = expected
        return self.post("/streams/" + urllib.parse.quote(stream, safe=""), body, token=token)

    def ok_append(self, stream, events, expected=None):
        r = self.append(stream, events, expected)
        check_eq(r.status, 200, f"append to {stream}: {r}")
        return r.json()

    def read_all(self, query="", token=None):
        """Every event of /all, following `next` until null."""
        events = []
        position = 0
        while True:
            sep = "&" if query else ""
            r = self.get(f"/all?from={position}&limit=1000{sep}{query}", token=token)
            check_eq(r.status, 200, f"GET /all: {r}")
            page = r.json()
            events += page["events"]
            if page["next"] is None:
                return events
            check(page["next"] >= position, f"/all next went backwards: {page['next']}")
            position = page["next"]

    def metric(self, name, token=None):
        r = self.get("/metrics", token=token)
        check_eq(r.status, 200, f"GET /metrics: {r}")
        match = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", r.body, re.M)
        check(match is not None, f"metric {name} missing")
        return float(match.group(1))

    # ---- WebSocket ----

    def ws_uri(self, query):
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/subscribe?{query}"

    def ws_connect(self, query, token=None, **kw):
        headers = [("Authorization", "Bearer " + token)] if token else None
        ssl_context = self.ssl_context() if self.tls else None
        return websockets.connect(self.ws_uri(query), extra_headers=headers, ssl=ssl_context,
                                  open_timeout=10, close_timeout=5, **kw)


def raw_exchange(port, data, timeout=10):
    """Sends raw bytes, returns (status, body) of the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, sep, rest = received.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                if length and len(rest) >= int(length.group(1)):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.1 (\d+)", head)
    check(match is not None, f"no HTTP response: {received[:300]!r}")
    return int(match.group(1)), body


async def ws_recv_json(ws, timeout=10):
    message = await asyncio.wait_for(ws.recv(), timeout)
    return json.loads(message)


async def ws_expect_event(ws, timeout=10):
    frame = await ws_recv_json(ws, timeout)
    check("event" in frame, f"expected an event frame, got {frame}")
    return frame["event"]


async def ws_expect_caught_up(ws, timeout=10):
    frame = await ws_recv_json(ws, timeout)
    check("caughtUp" in frame, f"expected a caughtUp frame, got {frame}")
    return frame["caughtUp"]["position"]


def ws_status(server, query, token=None):
    """The HTTP status with which /subscribe refuses the upgrade (101 if accepted)."""
    async def attempt():
        try:
            async with server.ws_connect(query, token=token):
                return 101
        except websockets.exceptions.InvalidStatusCode as error:
            return error.status_code
    return asyncio.run(attempt())


# ---- Tests ----

TESTS = []


def test(function):
    TESTS.append(function)
    return function


class Env:
    """Servers shared by several tests, started lazily."""

    def __init__(self):
        self.servers = {}

    def main(self):
        if "main" not in self.servers:
            self.servers["main"] = Server(
                "main", global_args=["--durability", "none"],
                args=["--max-body-bytes", "65536", "--max-events-per-append", "50",
                      "--max-header-bytes", "4096", "--max-wait-ms", "10000"]).start()
        return self.servers["main"]

    def stop_all(self):
        problems = []
        for name, server in self.servers.items():
            try:
                rc = server.stop()
                if rc != 0:
                    problems.append(f"{name} exited with {rc}: {server.log_tail()}")
            except TestFailure as error:
                problems.append(str(error))
        return problems


@test
def health_and_metrics(env):
    s = env.main()
    r = s.get("/health/live")
    check_eq((r.status, r.json()["status"]), (200, "live"), "/health/live")
    r = s.get("/health/ready")
    check_eq(r.status, 200, f"/health/ready: {r}")
    r = s.get("/metrics")
    check_eq(r.status, 200, "/metrics")
    check(r.headers.get("Content-Type", "").startswith("text/plain"), f"metrics type {r.headers}")
    for name in [b"vellum_appends_total", b"vellum_http_requests_total",
                 b"vellum_subscribers_switched_to_catchup_total", b"vellum_head_position"]:
        check(name in r.body, f"/metrics lacks {name}")
    check_eq(s.get("/metrics").headers.get("Server"), "vellum", "Server header")


@test
def append_and_read_stream(env):
    s = env.main()
    id0 = new_id()
    r = s.append("order-1", [ev("OrderPlaced", id=id0, subject="alice", data={"total": 42},
                                time="2026-01-02T03:04:05Z", correlationid="c1",
                                metadata={"k": "v"})], expected="no_stream")
    check_eq(r.status, 200, f"first append {r}")
    first = r.json()
    check_eq(set(first), {"stream", "firstRevision", "lastRevision", "position", "lastPosition"},
             "append result fields")
    check_eq((first["stream"], first["firstRevision"], first["lastRevision"]),
             ("order-1", 0, 0), "first append result")
    check_eq(first["position"], first["lastPosition"], "one event: position == lastPosition")
    # Wrapped body with a numeric expected revision, two events.
    second = s.ok_append("order-1", [ev("ItemAdded", data={"n": 1}), ev("ItemAdded")], 0)
    check_eq((second["firstRevision"], second["lastRevision"]), (1, 2), "second append revisions")
    check_eq(second["lastPosition"], second["position"] + 1, "consecutive positions")
    # A bare array with the Expected-Revision header.
    r = s.post("/streams/order-1", [ev("Bare")], headers={"Expected-Revision": "2"})
    check_eq((r.status, r.json()["firstRevision"]), (200, 3), f"bare array {r}")
    # application/cloudevents-batch+json with the header.
    r = s.post("/streams/order-1", json.dumps([ev("Batch", specversion="1.0", source="x")]),
               headers={"Content-Type": "application/cloudevents-batch+json",
                        "Expected-Revision": "stream_exists"})
    check_eq((r.status, r.json()["firstRevision"]), (200, 4), f"batch content type {r}")
    # One structured-mode CloudEvent.
    r = s.post("/streams/order-1", json.dumps(ev("Single", data="hello",
                                                 datacontenttype="text/plain")),
               headers={"Content-Type": "application/cloudevents+json"})
    check_eq((r.status, r.json()["firstRevision"]), (200, 5), f"single cloudevent {r}")
    # Read it back.
    r = s.get("/streams/order-1")
    check_eq(r.status, 200, f"read {r}")
    page = r.json()
    check_eq(page["next"], None, "next at the end")
    events = page["events"]
    check_eq([e["streamrevision"] for e in events], list(range(6)), "revisions")
    check_eq([e["type"] for e in events],
             ["OrderPlaced", "ItemAdded", "ItemAdded", "Bare", "Batch", "Single"], "types")
    e0 = events[0]
    check_eq((e0["specversion"], e0["id"], e0["source"], e0["subject"], e0["data"],
              e0["stream"], e0["position"], e0["correlationid"], e0["metadata"],
              e0["schemaversion"], e0["datacontenttype"]),
             ("1.0", id0, "vellum", "alice", {"total": 42}, "order-1", first["position"], "c1",
              {"k": "v"}, 1, "application/json"), "event 0 attributes")
    check(e0["time"].startswith("2026-01-02T03:04:05"), f"time {e0['time']}")
    check("recordedtime" in e0, "recordedtime")
    # Non-JSON content comes back as data_base64 (docs/api/http.md).
    check_eq((events[5]["datacontenttype"], events[5].get("data_base64"), "data" in events[5]),
             ("text/plain", base64.b64encode(b"hello").decode(), False), "text data")
    for earlier, later in zip(events, events[1:]):
        check(later["position"] > earlier["position"], "positions increase along the stream")
    # Paging and direction.
    r = s.get("/streams/order-1?from=1&limit=2").json()
    check_eq(([e["streamrevision"] for e in r["events"]], r["next"]), ([1, 2], 3), "paging")
    r = s.get("/streams/order-1?direction=backward&limit=2").json()
    check_eq([e["streamrevision"] for e in r["events"]], [5, 4], "backward")
    r = s.get("/streams/order-1?direction=backward&from=1").json()
    check_eq(([e["streamrevision"] for e in r["events"]], r["next"]), ([1, 0], None),
             "backward from 1")
    # The event by id, and percent-encoded stream names.
    r = s.get("/events/" + id0)
    check_eq((r.status, r.json()["id"], r.json()["streamrevision"]), (200, id0, 0), "by id")
    check_eq(s.ok_append("odd/name x", [ev()])["stream"], "odd/name x", "encoded name")
    r = s.get("/streams/" + urllib.parse.quote("odd/name x", safe=""))
    check_eq((r.status, r.json()["events"][0]["stream"]), (200, "odd/name x"), "encoded read")


@test
def expected_revision_conflicts(env):
    s = env.main()
    s.ok_append("conflict-1", [ev(), ev()])
    r = s.append("conflict-1", [ev("Late")], expected=0)
    check_eq(r.status, 409, f"wrong expected revision {r}")
    body = r.json()
    check_eq((body["error"], body["stream"], body["actual"]),
             ("wrong_expected_revision", "conflict-1", 1), "409 body")
    check("expected" in body and "message" in body, f"409 fields {body}")
    r = s.append("conflict-1", [ev("Late")], expected="no_stream")
    check_eq(r.status, 409, "no_stream on an existing stream")
    r = s.append("conflict-new", [ev("Late")], expected="stream_exists")
    check_eq((r.status, r.json()["actual"]), (409, -1), "stream_exists on a new stream")
    check_eq(s.get("/streams/conflict-new").status, 404, "nothing written on 409")
    check_eq(len(s.get("/streams/conflict-1").json()["events"]), 2, "nothing written on 409")
    r = s.post("/streams/conflict-1", {"expectedRevision": 1, "events": [ev()]},
               headers={"Expected-Revision": "1"})
    check_eq((r.status, r.json()["error"]), (400, "invalid_argument"), "header and body")


@test
def idempotent_retry(env):
    s = env.main()
    events = [ev("A", id=new_id(), data={"x": 1}), ev("B", id=new_id())]
    first = s.ok_append("idem-1", events, "no_stream")
    r = s.append("idem-1", events, "no_stream")
    check_eq(r.status, 200, f"retry {r}")
    replay = r.json()
    check_eq(replay.get("idempotentReplay"), True, "idempotentReplay flag")
    del replay["idempotentReplay"]
    check_eq(replay, first, "a retry returns the original result")
    check_eq(len(s.get("/streams/idem-1").json()["events"]), 2, "a retry writes nothing")
    # Same id, other content; same id, other stream.
    r = s.append("idem-1", [ev("Changed", id=events[0]["id"])])
    check_eq((r.status, r.json()["error"]), (409, "duplicate_event_id"), "id with other content")
    r = s.append("idem-2", [events[0]])
    check_eq((r.status, r.json()["error"]), (409, "duplicate_event_id"), "id in another stream")
    check_eq(s.get("/streams/idem-2").status, 404, "nothing written on duplicate id")


@test
def transactions(env):
    s = env.main()
    s.ok_append("acct-a", [ev("Opened")])
    r = s.post("/transactions", {"appends": [
        {"stream": "acct-a", "expectedRevision": 0, "events": [ev("Debited", data={"n": 5})]},
        {"stream": "acct-b", "events": [ev("Credited", data={"n": 5}), ev("Noted")]}]})
    check_eq(r.status, 200, f"transaction {r}")
    results = r.json()["results"]
    check_eq([(x["stream"], x["firstRevision"], x["lastRevision"]) for x in results],
             [("acct-a", 1, 1), ("acct-b", 0, 1)], "transaction results")
    # All or nothing: the second part conflicts, so the first is not written.
    r = s.post("/transactions", {"appends": [
        {"stream": "acct-a", "expectedRevision": 1, "events": [ev("Debited")]},
        {"stream": "acct-b", "expectedRevision": 0, "events": [ev("Credited")]}]})
    check_eq(r.status, 409, f"conflicting transaction {r}")
    check_eq((r.json()["error"], r.json()["stream"], r.json()["actual"]),
             ("wrong_expected_revision", "acct-b", 1), "409 names the failing stream")
    check_eq(len(s.get("/streams/acct-a").json()["events"]), 2, "all or nothing")
    check_eq(len(s.get("/streams/acct-b").json()["events"]), 2, "all or nothing")
    r = s.post("/transactions", {"appends": [{"stream": "acct-a", "events": [ev()]},
                                             {"stream": "acct-a", "events": [ev()]}]})
    check_eq(r.status, 400, f"a stream twice {r}")
    r = s.post("/transactions", {"appends": []})
    check_eq(r.status, 400, "empty transaction")
    r = s.post("/transactions", {"appends": [{"stream": "acct-a", "events": [ev()], "x": 1}]})
    check_eq(r.status, 400, "unknown field in a transaction part")
    r = s.post("/transactions", {"appends": [
        {"stream": "acct-c", "events": [ev()] * 30}, {"stream": "acct-d", "events": [ev()] * 30}]})
    check_eq((r.status, r.json()["error"]), (413, "too_many_events"), "transaction event limit")
    check_eq(s.get("/streams/acct-c").status, 404, "nothing written on 413")


@test
def read_all_and_filters(env):
    s = env.main()
    tag = uuid.uuid4().hex[:8]
    s.ok_append(f"shop{tag}-1", [ev("Placed", subject=f"bob{tag}"), ev("Paid")])
    s.ok_append(f"shop{tag}-2", [ev("Placed")])
    s.ok_append(f"ship{tag}-1", [ev("Shipped", subject=f"bob{tag}")])
    everything = s.read_all()
    check_eq([e["position"] for e in everything], list(range(len(everything))),
             "/all is gap-free from 0")
    def all_types(query):
        r = s.get("/all?" + query)
        check_eq(r.status, 200, f"/all?{query}: {r}")
        return [(e["stream"], e["type"]) for e in r.json()["events"]]
    check_eq(all_types(f"category=shop{tag}"),
             [(f"shop{tag}-1", "Placed"), (f"shop{tag}-1", "Paid"), (f"shop{tag}-2", "Placed")],
             "category filter")
    check_eq(all_types(f"category=shop{tag}&type=Paid,Shipped"), [(f"shop{tag}-1", "Paid")],
             "category + type")
    check_eq(all_types(f"streamPrefix=ship{tag}"), [(f"ship{tag}-1", "Shipped")], "streamPrefix")
    check_eq(all_types(f"subject=bob{tag}"),
             [(f"shop{tag}-1", "Placed"), (f"ship{tag}-1", "Shipped")], "subject filter")
    r = s.get(f"/subjects/bob{tag}/events")
    check_eq([e["type"] for e in r.json()["events"]], ["Placed", "Shipped"], "/subjects")
    check_eq(r.json()["next"], None, "/subjects next")
    back = s.get("/all?direction=backward&limit=3").json()["events"]
    check_eq([e["position"] for e in back], [len(everything) - 1 - i for i in range(3)],
             "/all backward")
    page = s.get("/all?from=1&limit=2").json()
    check_eq(([e["position"] for e in page["events"]], page["next"]), ([1, 2], 3), "/all paging")
    # Events from /all are the same objects as from /events/{id}.
    r = s.get("/events/" + everything[-1]["id"])
    check_eq(r.json(), everything[-1], "/events/{id} == /all")
    r = s.get("/events/" + new_id())
    check_eq((r.status, r.json()["error"]), (404, "event_not_found"), "unknown event id")
    r = s.get("/events/not-a-uuid")
    check_eq(r.status, 400, "bad uuid")


@test
def time_travel_and_positions(env):
    s = env.main()
    first = s.ok_append("travel-1", [ev("One")])
    time.sleep(0.05)
    between = time.time()
    time.sleep(0.05)
    s.ok_append("travel-1", [ev("Two")])
    r = s.get(f"/streams/travel-1?asOfPosition={first['lastPosition'] + 1}")
    check_eq([e["type"] for e in r.json()["events"]], ["One"], "asOfPosition")
    r = s.get("/streams/travel-1?asOf=" + urllib.parse.quote(rfc3339(between)))
    check_eq([e["type"] for e in r.json()["events"]], ["One"], f"asOf {r}")
    r = s.get("/positions?at=" + urllib.parse.quote(rfc3339(between)))
    check_eq(r.status, 200, f"/positions {r}")
    check_eq((r.json()["position"], "at" in r.json()), (first["lastPosition"] + 1, True),
             "/positions at a time between the appends")
    r = s.get("/positions?at=2000-01-01T00:00:00Z")
    check_eq(r.json()["position"], 0, "/positions before everything")
    check_eq(s.get("/positions").status, 400, "/positions without at")
    check_eq(s.get("/positions?at=yesterday").status, 400, "/positions bad time")
    check_eq(s.get("/streams/travel-1?asOf=garbage").status, 400, "bad asOf")


@test
def delete_and_tombstone(env):
    s = env.main()
    s.ok_append("del-1", [ev(), ev()])
    r = s.request("DELETE", "/streams/del-1", headers={"Expected-Revision": "0"})
    check_eq(r.status, 409, f"delete with a wrong expected revision {r}")
    r = s.request("DELETE", "/streams/del-1?expectedRevision=1")
    check_eq((r.status, r.json()), (200, {"stream": "del-1", "deleted": "soft"}), "soft delete")
    r = s.get("/streams/del-1")
    check_eq((r.status, r.json()["error"]), (404, "stream_not_found"), "soft-deleted read")
    again = s.ok_append("del-1", [ev("Again")])
    check_eq(again["firstRevision"], 2, "recreated stream continues its revisions")
    r = s.get("/streams/del-1")
    check_eq([e["type"] for e in r.json()["events"]], ["Again"], "only the new events")
    r = s.get("/streams/del-1/metadata")
    check_eq((r.json()["deleted"], r.json()["lastRevision"]), ("no", 2), "metadata after")
    s.ok_append("tomb-1", [ev()])
    r = s.request("DELETE", "/streams/tomb-1?tombstone=true")
    check_eq((r.status, r.json()["deleted"]), (200, "tombstone"), "tombstone")
    r = s.get("/streams/tomb-1")
    check_eq((r.status, r.json()["error"]), (410, "stream_deleted"), "tombstoned read")
    r = s.append("tomb-1", [ev()])
    check_eq((r.status, r.json()["error"]), (410, "stream_deleted"), "tombstoned append")
    r = s.request("DELETE", "/streams/tomb-1")
    check_eq(r.status, 410, f"delete a tombstoned stream {r}")
    check_eq(s.request("DELETE", "/streams/never-written").status, 404, "delete unknown")
    check_eq(s.request("DELETE", "/streams/del-1?tombstone=maybe").status, 400, "bad tombstone")
    check_eq(s.get("/streams/tomb-1/metadata").json()["deleted"], "tombstone", "metadata")


@test
def stream_metadata(env):
    s = env.main()
    check_eq(s.get("/streams/meta-1/metadata").status, 404, "metadata of an unknown stream")
    s.ok_append("meta-1", [ev(data={"i": i}) for i in range(5)])
    r = s.request("PUT", "/streams/meta-1/metadata",
                  body={"maxCount": 2, "custom": {"owner": "ops"}})
    check_eq(r.status, 200, f"PUT metadata {r}")
    r = s.get("/streams/meta-1/metadata")
    body = r.json()
    check_eq((body["maxCount"], body["maxAge"], body["truncateBefore"], body["custom"],
              body["stream"], body["lastRevision"], body["deleted"]),
             (2, None, None, {"owner": "ops"}, "meta-1", 4, "no"), "GET metadata")
    r = s.get("/streams/meta-1")
    check_eq([e["streamrevision"] for e in r.json()["events"]], [3, 4], "maxCount hides events")
    s.request("PUT", "/streams/meta-1/metadata", body={"truncateBefore": 1})
    r = s.get("/streams/meta-1")
    check_eq([e["streamrevision"] for e in r.json()["events"]], [1, 2, 3, 4], "truncateBefore")
    r = s.request("PUT", "/streams/meta-1/metadata", body={"maxCont": 1})
    check_eq((r.status, r.json()["error"]), (400, "invalid_argument"), "unknown metadata field")
    r = s.request("PUT", "/streams/meta-new/metadata", body={"maxAge": 60})
    check_eq(r.status, 200, "metadata before the stream exists")


@test
def error_statuses(env):
    s = env.main()
    def expect(r, status, code, what):
        check_eq(r.status, status, f"{what}: {r}")
        body = r.json()
        check_eq(body.get("error"), code, f"{what} error code")
        check(isinstance(body.get("message"), str) and body["message"], f"{what} message")
        check(r.headers.get("Content-Type", "").startswith("application/json"), f"{what} type")
        return body
    expect(s.post("/streams/bad-1", "{not json"), 400, "invalid_argument", "malformed JSON")
    body = expect(s.post("/streams/bad-1", [ev(colour="red")]), 400, "invalid_argument",
                  "unknown attribute")
    check("colour" in body["message"], f"names the attribute: {body}")
    expect(s.post("/streams/bad-1", [{"data": 1}]), 400, "invalid_argument", "no type")
    expect(s.post("/streams/bad-1", [ev(stream="x")]), 400, "invalid_argument", "stream attr")
    expect(s.post("/streams/bad-1", []), 400, "invalid_argument", "no events")
    expect(s.post("/streams/bad-1", {"events": [ev()], "extra": 1}), 400, "invalid_argument",
           "unknown body field")
    expect(s.post("/streams/bad-1", [ev(id="nope")]), 400, "invalid_argument", "bad id")
    expect(s.post("/streams/bad-1", [ev()], headers={"Expected-Revision": "soon"}), 400,
           "invalid_argument", "bad Expected-Revision")
    check_eq(s.get("/streams/bad-1").status, 404, "nothing written by bad requests")
    expect(s.get("/streams/order-1?limit=0"), 400, "invalid_argument", "limit=0")
    expect(s.get("/streams/order-1?from=abc"), 400, "invalid_argument", "from=abc")
    expect(s.get("/streams/order-1?direction=sideways"), 400, "invalid_argument", "direction")
    expect(s.get("/all?limit=100000000"), 400, "invalid_argument", "limit too large")
    expect(s.get("/streams/%zz"), 400, "invalid_argument", "bad percent-encoding")
    expect(s.get("/streams/never-written-1"), 404, "stream_not_found", "unknown stream")
    expect(s.get("/nope"), 404, "not_found", "unknown route")
    expect(s.get("/streams/a/b/c"), 404, "not_found", "too many segments")
    expect(s.request("PUT", "/streams/x", body=[ev()]), 405, "method_not_allowed", "PUT stream")
    expect(s.request("DELETE", "/all"), 405, "method_not_allowed", "DELETE /all")
    expect(s.request("POST", "/events/" + new_id(), body={}), 405, "method_not_allowed",
           "POST event")
    expect(s.get("/transactions"), 405, "method_not_allowed", "GET /transactions")
    expect(s.get("/subscribe?all=true"), 426, "upgrade_required", "/subscribe without upgrade")
    # 413: too many events (max-events-per-append 50).
    expect(s.post("/streams/big-1", [ev()] * 51), 413, "too_many_events", "51 events")
    check_eq(s.get("/streams/big-1").status, 404, "nothing written on 413")
    check_eq(s.post("/streams/big-1", [ev()] * 50).status, 200, "50 events are fine")
    # 413: body too large (max-body-bytes 65536). The server may answer as
    # soon as it sees Content-Length, so send the head, then the body.
    big = json.dumps([ev(data="x" * 70000)]).encode()
    status, payload = raw_exchange(
        s.port, b"POST /streams/big-2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big)
    check_eq((status, json.loads(payload)["error"]), (413, "body_too_large"), "body too large")
    # The same through http.client (which sends everything before reading).
    r = s.post("/streams/big-2", big)
    check_eq(r.status, 413, f"body too large via http.client: {r}")
    check_eq(s.get("/streams/big-2").status, 404, "nothing written on 413")
    # 431: headers beyond max-header-bytes (4096).
    r = s.get("/streams/order-1", headers={"X-Padding": "p" * 8000})
    expect(r, 431, "headers_too_large", "huge header")
    status, _ = raw_exchange(s.port, b"GET /all HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"q" * 5000 +
                             b"\r\n\r\n")
    check_eq(status, 431, "huge header (raw)")
    # Malformed HTTP.
    status, _ = raw_exchange(s.port, b"GET /all HTTP/1.1\r\nHost x\r\n\r\n")
    check_eq(status, 400, "malformed header line")
    # The server still works after all that.
    check_eq(s.get("/health/live").status, 200, "alive after the errors")


@test
def keep_alive_connection(env):
    s = env.main()
    conn = s.connection()
    try:
        for i in range(20):
            conn.request("POST", "/streams/keepalive-1", body=json.dumps([ev(data={"i": i})]),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            check_eq(response.status, 200, "append on a kept-alive connection")
            check_eq(json.loads(response.read())["firstRevision"], i, "revision")
        conn.request("GET", "/streams/keepalive-1?limit=1000")
        response = conn.getresponse()
        check_eq(len(json.loads(response.read())["events"]), 20, "read on the same connection")
    finally:
        conn.close()


@test
def long_poll(env):
    s = env.main()
    s.ok_append("poll-1", [ev("First")])
    # Existing events: answered at once.
    started = time.monotonic()
    r = s.get("/streams/poll-1?from=0&waitMs=5000")
    check(time.monotonic() - started < 2, "long poll with events waits")
    check_eq(len(r.json()["events"]), 1, "long poll returns existing events")
    # Nothing new: an empty page after waitMs.
    started = time.monotonic()
    r = s.get("/streams/poll-1?from=1&waitMs=400")
    elapsed = time.monotonic() - started
    check_eq((r.status, r.json()), (200, {"events": [], "next": 1}), "long poll timeout")
    check(0.35 <= elapsed < 3, f"long poll waited {elapsed:.2f} s for waitMs=400")
    # An event arriving during the wait answers early.
    for stream, expected_from in (("poll-1", 1), ("poll-new-1", 0)):
        result = {}
        def waiter():
            begin = time.monotonic()
            result["r"] = s.get(f"/streams/{stream}?from={expected_from}&waitMs=8000")
            result["t"] = time.monotonic() - begin
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        s.ok_append(stream, [ev("Woke")])
        thread.join(10)
        check(not thread.is_alive(), "long poll never answered")
        r = result["r"]
        check_eq(r.status, 200, f"long poll {stream}: {r}")
        check_eq([e["type"] for e in r.json()["events"]], ["Woke"], "woken by the append")
        check(result["t"] < 3, f"long poll on {stream} took {result['t']:.2f} s")
    # Unknown stream that stays unknown: empty page, next = from.
    r = s.get("/streams/poll-never?from=0&waitMs=200")
    check_eq((r.status, r.json()), (200, {"events": [], "next": 0}), "long poll unknown stream")
    check_eq(s.get("/streams/poll-1?waitMs=20000").status, 400, "waitMs above max-wait-ms")
    check_eq(s.get("/streams/poll-1?waitMs=100&direction=backward").status, 400,
             "long poll backward")


@test
def websocket_subscriptions(env):
    s = env.main()
    tag = uuid.uuid4().hex[:8]
    stream = f"wsc{tag}-1"
    s.ok_append(stream, [ev("A"), ev("B")])
    s.ok_append(f"wsc{tag}-2", [ev("C")])
    s.ok_append(f"wso{tag}-1", [ev("Other")])

    async def run():
        # Stream subscription from revision 1: B, caughtUp, then live.
        async with s.ws_connect(f"stream={stream}&from=1") as ws_stream, \
                s.ws_connect(f"category=wsc{tag}&from=0") as ws_cat, \
                s.ws_connect(f"category=wsc{tag}&type=D") as ws_live_typed, \
                s.ws_connect(f"stream=wsnew{tag}&from=0") as ws_new:
            check_eq((await ws_expect_event(ws_stream))["type"], "B", "stream from=1")
            await ws_expect_caught_up(ws_stream)
            got = [(await ws_expect_event(ws_cat))["type"] for _ in range(3)]
            check_eq(got, ["A", "B", "C"], "category catch-up")
            await ws_expect_caught_up(ws_cat)
            head = await ws_expect_caught_up(ws_live_typed)
            check(isinstance(head, int), "caughtUp position")
            await ws_expect_caught_up(ws_new)  # a stream that does not exist yet
            await asyncio.get_running_loop().run_in_executor(None, lambda: (
                s.ok_append(f"wso{tag}-1", [ev("D")]),
                s.ok_append(stream, [ev("D", subject="x")]),
                s.ok_append(f"wsnew{tag}", [ev("New")])))
            live = await ws_expect_event(ws_stream)
            check_eq((live["type"], live["streamrevision"]), ("D", 2), "stream live")
            live = await ws_expect_event(ws_cat)
            check_eq((live["type"], live["stream"]), ("D", stream), "category live (filtered)")
            live = await ws_expect_event(ws_live_typed)
            check_eq((live["type"], live["stream"]), ("D", stream), "category + type live")
            check_eq((await ws_expect_event(ws_new))["type"], "New", "stream created later")
            for ws in (ws_stream, ws_cat, ws_live_typed):
                try:
                    extra = await asyncio.wait_for(ws.recv(), 0.3)
                    raise TestFailure(f"unexpected frame {extra}")
                except asyncio.TimeoutError:
                    pass
            # Client messages are ignored; the subscription keeps working.
            await ws_stream.send("hello")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: s.ok_append(stream, [ev("E")]))
            check_eq((await ws_expect_event(ws_stream))["type"], "E", "after a client message")
        # A tombstoned stream: an error frame, then close 4410.
        s.ok_append(f"wstomb{tag}", [ev()])
        check_eq(s.request("DELETE", f"/streams/wstomb{tag}?tombstone=true").status, 200,
                 "tombstone")
        async with s.ws_connect(f"stream=wstomb{tag}&from=0") as ws:
            frame = await ws_recv_json(ws)
            check("error" in frame and frame["error"]["error"] == "stream_deleted",
                  f"error frame {frame}")
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise TestFailure("more frames after the error")
            except websockets.exceptions.ConnectionClosed:
                pass
            check_eq(ws.close_code, 4410, "close code for a tombstoned stream")
        # A live subscriber of a stream that gets tombstoned: the same.
        s.ok_append(f"wstomblive{tag}", [ev()])
        async with s.ws_connect(f"stream=wstomblive{tag}&from=0") as ws:
            await ws_expect_event(ws)
            await ws_expect_caught_up(ws)
            r = await asyncio.get_running_loop().run_in_executor(
                None, lambda: s.request("DELETE", f"/streams/wstomblive{tag}?tombstone=true"))
            check_eq(r.status, 200, "tombstone a subscribed stream")
            frame = await ws_recv_json(ws)
            check("error" in frame and frame["error"]["error"] == "stream_deleted",
                  f"error frame for a live subscriber {frame}")
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise TestFailure("more frames after the error")
            except websockets.exceptions.ConnectionClosed:
                pass
            check_eq(ws.close_code, 4410, "close code for a live subscriber")
        # A client message beyond max-ws-message-bytes closes with 1009.
        async with s.ws_connect(f"stream={stream}") as ws:
            await ws_expect_caught_up(ws)
            await ws.send("x" * 70000)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except websockets.exceptions.ConnectionClosed:
                pass
            check_eq(ws.close_code, 1009, "close code for a too large message")

    asyncio.run(run())
    check_eq(ws_status(s, "all=true&stream=x"), 400, "two selectors")
    check_eq(ws_status(s, "type=A"), 400, "no selector")
    check_eq(ws_status(s, "stream=x&type=A"), 400, "filter on a stream subscription")
    check_eq(ws_status(s, "all=true&from=-1"), 400, "bad from")
    check_eq(ws_status(s, "all=true"), 101, "all=true")


def run_writers(server, streams_of_writer, appends_per_writer, events_per_append, results,
                errors, delay=0.0, token=None):
    """Threads appending to their streams; returns them started."""
    def writer(index):
        rng = random.Random(index)
        conn = server.connection()
        try:
            for i in range(appends_per_writer):
                streams = streams_of_writer(index)
                stream = streams[i % len(streams)]
                count = rng.randint(*events_per_append)
                events = [ev(f"W{index}", id=new_id(), data={"w": index, "i": i, "k": k})
                          for k in range(count)]
                headers = {"Content-Type": "application/json"}
                if token:
                    headers["Authorization"] = "Bearer " + token
                conn.request("POST", "/streams/" + stream, body=json.dumps(events),
                             headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    errors.append(f"writer {index}: {response.status} {body[:200]!r}")
                    return
                results.append((stream, [e["id"] for e in events], json.loads(body)))
                if delay:
                    time.sleep(delay)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(f"writer {index}: {error!r}")
        finally:
            conn.close()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    return threads


async def collect(ws, done, timeout=40, need_caught_up=True):
    """Frames until done(events) is true and caughtUp has come (it may follow the last event
    when catch-up reaches the head after the writers stopped); returns (events, caughtUp
    count)."""
    events = []
    caught_up = 0
    deadline = time.monotonic() + timeout
    while not done(events) or (need_caught_up and caught_up == 0):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestFailure(f"subscription stalled after {len(events)} events")
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), min(remaining, 0.5)))
        except asyncio.TimeoutError:
            continue
        if "event" in frame:
            events.append(frame["event"])
        elif "caughtUp" in frame:
            caught_up += 1
        else:
            raise TestFailure(f"unexpected frame {frame}")
    # Anything more would be a duplicate.
    try:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
        raise TestFailure(f"a frame after the last expected event: {str(frame)[:300]}")
    except asyncio.TimeoutError:
        pass
    return events, caught_up


def check_sequence(received, expected, what):
    got = [(e["position"], e["id"]) for e in received]
    want = [(e["position"], e["id"]) for e in expected]
    if got != want:
        seen = set()
        dups = [p for p, _ in got if p in seen or seen.add(p)]
        missing = sorted(set(want) - set(got))[:10]
        raise TestFailure(f"{what}: {len(got)} events received, {len(want)} expected; "
                          f"duplicates {dups[:10]}, missing {missing}, first difference at "
                          f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)}")


@test
def subscription_catch_up_to_live_under_writers(env):
    s = env.main()
    tag = uuid.uuid4().hex[:8]
    # Some history first, so that catch-up takes several pages.
    for i in range(6):
        s.ok_append(f"conc{tag}-pre", [ev("Pre", data={"i": i, "k": k}) for k in range(50)])
    results, errors = [], []
    state = {"expected": None}

    async def run():
        loop = asyncio.get_running_loop()
        threads = run_writers(s, lambda i: [f"conc{tag}-{i}", f"noise{tag}-{i}"], 80, (1, 4),
                              results, errors, delay=0.002)
        await asyncio.sleep(0.15)  # subscribe while the writers write
        check(not errors, f"writers failed: {errors}")
        async with s.ws_connect("all=true&from=0", max_size=2 ** 24) as ws_all, \
                s.ws_connect(f"category=conc{tag}&from=0") as ws_cat, \
                s.ws_connect(f"stream=conc{tag}-0&from=0") as ws_stream, \
                s.ws_connect("all=true") as ws_live:
            def done_when(key):
                return lambda events: (state["expected"] is not None and
                                       len(events) >= len(state["expected"][key]))
            tasks = [asyncio.ensure_future(collect(ws, done_when(key)))
                     for ws, key in ((ws_all, "all"), (ws_cat, "cat"), (ws_stream, "stream"))]
            live_task = asyncio.ensure_future(collect(
                ws_live, lambda events: state["expected"] is not None and events and
                events[-1]["position"] >= state["expected"]["all"][-1]["position"]))
            await loop.run_in_executor(None, lambda: [t.join() for t in threads])
            check(not errors, f"writers failed: {errors}")
            everything = await loop.run_in_executor(None, s.read_all)
            state["expected"] = {
                "all": everything,
                "cat": [e for e in everything if e["stream"].startswith(f"conc{tag}-")],
                "stream": [e for e in everything if e["stream"] == f"conc{tag}-0"],
            }
            outcomes = await asyncio.gather(*tasks, live_task)
        for (events, caught_up), key in zip(outcomes, ("all", "cat", "stream")):
            check_sequence(events, state["expected"][key], f"subscription {key}")
            check_eq(caught_up, 1, f"caughtUp frames on subscription {key}")
        if state["expected"]["stream"]:
            revisions = [e["streamrevision"] for e in outcomes[2][0]]
            check_eq(revisions, list(range(len(revisions))), "stream revisions")
        live, caught_up = outcomes[3]
        check_eq(caught_up, 1, "caughtUp frames on the live-only subscription")
        check(live, "the live-only subscription got nothing")
        first = live[0]["position"]
        tail = [e for e in state["expected"]["all"] if e["position"] >= first]
        check_sequence(live, tail, "live-only subscription")

    asyncio.run(run())
    written = sum(len(ids) for _, ids, _ in results)
    check_eq(written, sum(1 for e in state["expected"]["all"]
                          if e["stream"].startswith((f"conc{tag}-", f"noise{tag}-")) and
                          e["type"].startswith("W")), "every acknowledged event is in /all")


@test
def slow_subscriber_switches_to_catch_up(env):
    s = Server("slow", global_args=["--durability", "none"],
               args=["--subscriber-queue-bytes", "2048"])
    env.servers["slow"] = s
    s.start()
    s.ok_append("slowpre-1", [ev("Pre", data={"i": i}) for i in range(40)])
    results, errors = [], []
    state = {"expected": None}

    async def run():
        loop = asyncio.get_running_loop()
        # A tiny client-side queue: the client stops reading the socket while
        # it sleeps, so the server's writes block and its queue fills.
        async with s.ws_connect("all=true&from=0", max_queue=1, read_limit=1024) as ws_all, \
                s.ws_connect("stream=slow-0", max_queue=1, read_limit=1024) as ws_stream:
            await ws_expect_caught_up(ws_stream)  # live only: joins first
            threads = run_writers(s, lambda i: [f"slow-{i}"], 50, (5, 12), results, errors)
            received = []
            caught_up = 0
            deadline = time.monotonic() + 40
            stream_task = asyncio.ensure_future(collect(
                ws_stream, lambda events: state["expected"] is not None and
                len(events) >= len(state["expected"]["stream"]), need_caught_up=False))
            while state["expected"] is None or len(received) < len(state["expected"]["all"]):
                check(time.monotonic() < deadline, f"slow subscriber stalled at {len(received)}")
                try:
                    frame = json.loads(await asyncio.wait_for(ws_all.recv(), 0.5))
                except asyncio.TimeoutError:
                    frame = None
                if frame is not None and "event" in frame:
                    received.append(frame["event"])
                    if len(received) < 400:
                        await asyncio.sleep(0.003)  # deliberately slow
                elif frame is not None:
                    check("caughtUp" in frame, f"unexpected frame {frame}")
                    caught_up += 1
                if state["expected"] is None and not any(t.is_alive() for t in threads):
                    check(not errors, f"writers failed: {errors}")
                    everything = await loop.run_in_executor(None, s.read_all)
                    state["expected"] = {
                        "all": everything,
                        "stream": [e for e in everything if e["stream"] == "slow-0"]}
            stream_events, stream_caught_up = await stream_task
            try:
                extra = await asyncio.wait_for(ws_all.recv(), 0.3)
                raise TestFailure(f"frame after the last event: {extra[:200]}")
            except asyncio.TimeoutError:
                pass
        check_sequence(received, state["expected"]["all"], "slow all=true subscriber")
        check_sequence(stream_events, state["expected"]["stream"], "slow stream subscriber")
        check_eq(stream_caught_up, 0, "no second caughtUp on the stream subscription")
        return caught_up

    caught_up = asyncio.run(run())
    switched = s.metric("vellum_subscribers_switched_to_catchup_total")
    check(switched > 0, f"vellum_subscribers_switched_to_catchup_total is {switched}")
    check_eq(caught_up, 1, "caughtUp frames (once, per docs/api/http.md)")
    check_eq(s.stop(), 0, "exit code")


def write_config(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def key_entry(name, token, role, streams):
    digest = hashlib.sha256(token.encode()).hexdigest()
    return (f'[[api_keys]]\nname = "{name}"\nsha256 = "{digest}"\nrole = "{role}"\n'
            f"streams = {json.dumps(streams)}\n")


@test
def hash_key_command(env):
    out = subprocess.run([VELLUM, "hash-key"], input=b"s3cret\n", capture_output=True,
                         timeout=10)
    check_eq(out.returncode, 0, f"hash-key: {out.stderr!r}")
    check_eq(out.stdout.decode().strip(), hashlib.sha256(b"s3cret").hexdigest(), "hash-key")


@test
def auth_grants(env):
    config = write_config("auth.toml", "".join([
        key_entry("reader", "tok-reader", "reader", ["acct-"]),
        key_entry("writer", "tok-writer", "writer", ["acct-"]),
        key_entry("other", "tok-other", "writer", ["other-"]),
        key_entry("admin", "tok-admin", "admin", ["*"])]))
    s = Server("auth", global_args=["--durability", "none"], args=["--config", config])
    env.servers["auth"] = s
    s.start()
    R, W, O, A = "tok-reader", "tok-writer", "tok-other", "tok-admin"
    # No key, a wrong key, a wrong scheme: 401.
    for token, headers in ((None, {}), ("wrong", {}), (None, {"Authorization": "Basic abc"})):
        r = s.append("acct-1", [ev()], token=token) if not headers else \
            s.post("/streams/acct-1", [ev()], headers=headers)
        check_eq((r.status, r.json()["error"]), (401, "unauthenticated"), "append without key")
        check_eq(s.get("/streams/acct-1", token=token, headers=headers).status, 401, "read")
    check_eq(s.get("/health/live").status, 200, "/health needs no key")
    check_eq(s.get("/health/ready").status, 200, "/health/ready needs no key")
    check_eq(s.get("/metrics").status, 401, "/metrics without a key")
    check_eq(s.get("/metrics", token=W).status, 403, "/metrics as writer")
    check_eq(s.get("/metrics", token=A).status, 200, "/metrics as admin")
    # Writer inside its grants.
    first = s.append("acct-1", [ev("Opened", subject="carol")], token=W)
    check_eq(first.status, 200, f"writer append {first}")
    event_id = s.get("/streams/acct-1", token=R).json()["events"][0]["id"]
    # Outside the grants: 403 and nothing written.
    def forbidden(r, what):
        check_eq((r.status, r.json()["error"]), (403, "forbidden"), f"{what}: {r}")
    forbidden(s.append("other-1", [ev()], token=W), "writer outside its prefixes")
    forbidden(s.append("acct-2", [ev()], token=R), "reader appends")
    forbidden(s.append("acct-2", [ev()], token=O), "other writer")
    forbidden(s.post("/transactions", {"appends": [
        {"stream": "acct-3", "events": [ev()]}, {"stream": "other-3", "events": [ev()]}]},
        token=W), "transaction partly outside")
    forbidden(s.request("DELETE", "/streams/acct-1", token=R), "reader deletes")
    forbidden(s.request("DELETE", "/streams/acct-1?tombstone=true", token=W), "writer tombstones")
    forbidden(s.request("PUT", "/streams/acct-1/metadata", body={"maxCount": 1}, token=R),
              "reader sets metadata")
    forbidden(s.request("PUT", "/streams/other-1/metadata", body={"maxCount": 1}, token=W),
              "writer sets metadata outside")
    forbidden(s.get("/streams/other-1", token=R), "reader outside its prefixes")
    forbidden(s.get("/all", token=R), "reader /all without a filter")
    forbidden(s.get("/all?streamPrefix=other-", token=R), "reader /all outside")
    forbidden(s.get("/all?category=acct", token=R), "category wider than the grant")
    forbidden(s.get("/subjects/carol/events", token=R), "reader /subjects")
    forbidden(s.get("/positions?at=2030-01-01T00:00:00Z", token=R), "reader /positions")
    forbidden(s.get("/streams/acct-1/metadata", token=O), "metadata outside")
    for stream in ("other-1", "acct-2", "acct-3", "other-3"):
        check_eq(s.get(f"/streams/{stream}", token=A).status, 404, f"nothing written to {stream}")
    check_eq(s.get("/streams/acct-1/metadata", token=A).json()["maxCount"], None,
             "metadata untouched")
    check_eq(s.get("/streams/acct-1", token=A).status, 200, "not deleted by a 403")
    # Allowed reads.
    r = s.get("/all?streamPrefix=acct-", token=R)
    check_eq((r.status, len(r.json()["events"])), (200, 1), "reader /all inside its grant")
    check_eq(s.get("/events/" + event_id, token=R).status, 200, "event inside the grants")
    r = s.get("/events/" + event_id, token=O)
    check_eq((r.status, r.json()["error"]), (404, "event_not_found"), "event outside: 404")
    check_eq(s.get("/subjects/carol/events", token=A).status, 200, "admin /subjects")
    check_eq(s.get("/positions?at=2030-01-01T00:00:00Z", token=A).status, 200,
             "admin /positions")
    check_eq(s.get("/all", token=A).status, 200, "admin /all")
    check_eq(s.request("PUT", "/streams/acct-1/metadata", body={"maxAge": 3600},
                       token=W).status, 200, "writer sets metadata")
    check_eq(s.request("DELETE", "/streams/acct-1", token=W).status, 200, "writer soft-deletes")
    s.append("acct-9", [ev()], token=W)
    check_eq(s.request("DELETE", "/streams/acct-9?tombstone=true", token=A).status, 200,
             "admin tombstones")
    # WebSocket subscriptions.
    check_eq(ws_status(s, "stream=acct-1"), 401, "subscribe without a key")
    check_eq(ws_status(s, "stream=acct-1", token="wrong"), 401, "subscribe with a bad key")
    check_eq(ws_status(s, "stream=other-1", token=R), 403, "subscribe outside the grants")
    check_eq(ws_status(s, "all=true", token=R), 403, "subscribe to all without *")
    check_eq(ws_status(s, "all=true&streamPrefix=acct-", token=R), 101, "prefix inside")
    check_eq(ws_status(s, "all=true", token=A), 101, "admin all")

    async def granted_subscription():
        async with s.ws_connect("stream=acct-5", token=R) as ws:
            await ws_expect_caught_up(ws)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: s.append("acct-5", [ev("Seen")], token=W))
            check_eq((await ws_expect_event(ws))["type"], "Seen", "granted subscription")
    asyncio.run(granted_subscription())


@test
def non_loopback_requires_keys(env):
    s = Server("exposed", listen="0.0.0.0:0", global_args=["--durability", "none"])
    try:
        s.start()
        raise TestFailure("a non-loopback listener without keys started")
    except TestFailure as error:
        check("exited with" in str(error) and "exited with 0" not in str(error),
              f"refused with a nonzero exit: {error}")
    check("refusing" in s.log_tail(), f"says why: {s.log_tail()}")
    # --insecure allows it; so do API keys.
    s = Server("exposed-insecure", listen="0.0.0.0:0", global_args=["--durability", "none"],
               args=["--insecure"]).start()
    check_eq(s.get("/health/live").status, 200, "--insecure")
    check_eq(s.stop(), 0, "exit code")
    config = write_config("exposed.toml", key_entry("k", "tok", "admin", ["*"]))
    s = Server("exposed-keys", listen="0.0.0.0:0", global_args=["--durability", "none"],
               args=["--config", config]).start()
    check_eq(s.get("/streams/x").status, 401, "keys are enforced")
    check_eq(s.stop(), 0, "exit code")
    # A config file with an unknown key is refused.
    bad = write_config("bad.toml", "max-body-byte = 10\n")
    s = Server("bad-config", global_args=["--durability", "none"], args=["--config", bad])
    try:
        s.start()
        raise TestFailure("a config file with an unknown key was accepted")
    except TestFailure as error:
        check("exited with" in str(error), str(error))


@test
def config_precedence(env):
    file_data = os.path.join(WORK, "from-toml-data")
    config = write_config("precedence.toml",
                          f'max-body-bytes = 1000\nmax-subscriptions = 1\n'
                          f'data = "{file_data}"\nlisten = "127.0.0.1:1"\n')
    def body_of(size):
        # A JSON append body of exactly `size` bytes.
        base = json.dumps([ev(data="")])
        return base.replace('""', '"' + "p" * (size - len(base)) + '"')
    def accepts(server, size):
        r = server.post("/streams/prec-1", body_of(size),
                        headers={"Content-Type": "application/json"})
        check(r.status in (200, 413), f"append of {size} bytes: {r}")
        return r.status == 200
    # File only (the listen address from the environment beats the file's).
    s = Server("prec-file", data=None, listen=None,
               env={"VELLUM_CONFIG": config, "VELLUM_LISTEN": "127.0.0.1:0"})
    s.data = file_data  # for the record; --data is not given
    s.command = lambda: [VELLUM, "--durability", "none", "serve"]
    s.start()
    check(s.port != 1, "VELLUM_LISTEN beats the file's listen")
    check(accepts(s, 900) and not accepts(s, 1100), "the file's max-body-bytes = 1000")
    check(os.path.isdir(file_data), "the file's data directory is used")
    # max-subscriptions = 1 from the file: a second subscription gets 429.
    async def two_subscriptions():
        async with s.ws_connect("all=true") as ws:
            await ws_expect_caught_up(ws)
            try:
                async with s.ws_connect("all=true"):
                    return 101
            except websockets.exceptions.InvalidStatusCode as error:
                return error.status_code
    check_eq(asyncio.run(two_subscriptions()), 429, "max-subscriptions")
    check_eq(s.stop(), 0, "exit code")
    # The environment beats the file.
    s = Server("prec-env", global_args=["--durability", "none"],
               env={"VELLUM_MAX_BODY_BYTES": "2000"}, args=["--config", config]).start()
    check(accepts(s, 1900) and not accepts(s, 2100), "env max-body-bytes = 2000 beats the file")
    check_eq(s.stop(), 0, "exit code")
    # The flag beats both.
    s = Server("prec-flag", global_args=["--durability", "none"],
               env={"VELLUM_MAX_BODY_BYTES": "2000"},
               args=["--config", config, "--max-body-bytes", "3000"]).start()
    check(accepts(s, 2900) and not accepts(s, 3100), "flag max-body-bytes = 3000 beats env")
    check_eq(s.stop(), 0, "exit code")


@test
def connection_limits(env):
    s = Server("limits", global_args=["--durability", "none"],
               args=["--max-connections", "2", "--idle-timeout-seconds", "1"]).start()
    connected = time.monotonic()
    first = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    second = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        time.sleep(0.2)  # both accepted
        status, body = raw_exchange(s.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        check_eq((status, json.loads(body)["error"]), (503, "too_many_connections"),
                 "beyond max-connections")
        # Idle connections are closed after idle-timeout-seconds.
        check_eq(first.recv(100), b"", "an idle connection is closed")
        elapsed = time.monotonic() - connected
        check(0.9 < elapsed < 6, f"idle connection closed after {elapsed:.2f} s")
        check_eq(second.recv(100), b"", "the other idle connection is closed")
        for _ in range(50):  # the sessions end just after closing
            status = s.get("/health/live").status
            if status == 200:
                break
            time.sleep(0.1)
        check_eq(status, 200, "room again after the idle connections closed")
    finally:
        first.close()
        second.close()
    check_eq(s.stop(), 0, "exit code")


def make_certificate():
    cert = os.path.join(WORK, "cert.pem")
    key = os.path.join(WORK, "key.pem")
    out = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, timeout=30)
    check_eq(out.returncode, 0, f"openssl: {out.stderr!r}")
    return cert, key


@test
def tls(env):
    s = Server("tls", global_args=["--durability", "none"], tls=make_certificate())
    env.servers["tls"] = s
    s.start()
    r = s.append("tls-1", [ev("Secure")])
    check_eq(r.status, 200, f"HTTPS append {r}")
    r = s.get("/streams/tls-1")
    check_eq([e["type"] for e in r.json()["events"]], ["Secure"], "HTTPS read")
    # Plain HTTP on the TLS port gets no HTTP answer.
    try:
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        conn.request("GET", "/health/live")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    check(status != 200, "plain HTTP served on the TLS port")

    async def wss():
        async with s.ws_connect("stream=tls-1&from=0") as ws:
            check_eq((await ws_expect_event(ws))["type"], "Secure", "WSS catch-up")
            await ws_expect_caught_up(ws)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: s.ok_append("tls-1", [ev("Live")]))
            check_eq((await ws_expect_event(ws))["type"], "Live", "WSS live")
    asyncio.run(wss())
    check_eq(s.get("/health/live").status, 200, "still serving")


@test
def graceful_shutdown_under_load(env):
    s = Server("shutdown", args=["--shutdown-grace-seconds", "10"]).start()  # fsync
    acked = []  # (id, result)
    outcomes = {}
    lock = threading.Lock()
    stop = threading.Event()

    def appender(index):
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = s.connection(timeout=10)
                event_id = new_id()
                conn.request("POST", f"/streams/gs-{index}",
                             body=json.dumps([ev("G", id=event_id, data={"w": index})]),
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                body = response.read()
                with lock:
                    outcomes[response.status] = outcomes.get(response.status, 0) + 1
                    if response.status == 200:
                        acked.append((event_id, json.loads(body)))
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with lock:
                    outcomes["connection error"] = outcomes.get("connection error", 0) + 1
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    close_codes = []

    async def subscriber():
        async with s.ws_connect("all=true&from=0") as ws:
            try:
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                close_codes.append(ws.close_code)

    threads = [threading.Thread(target=appender, args=(i,)) for i in range(4)]
    ws_thread = threading.Thread(target=lambda: asyncio.run(subscriber()))
    ws_thread.start()
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    with lock:
        before = len(acked)
    check(before > 0, f"no append succeeded before SIGTERM: {outcomes}")
    s.signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(20)
    except subprocess.TimeoutExpired:
        s.kill()
        raise TestFailure("no exit within 20 s of SIGTERM")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        ws_thread.join(10)
    check_eq(rc, 0, f"exit code after SIGTERM; log: {s.log_tail()}")
    check_eq(close_codes, [1001], "subscriber close code on shutdown")
    bad = {k: v for k, v in outcomes.items() if k not in (200, 503, "connection error")}
    check(not bad, f"unexpected answers during shutdown: {outcomes}")
    # Restart on the same data directory: every acknowledged append is there once.
    s2 = Server("shutdown-restart", data=s.data, global_args=["--durability", "none"]).start()
    try:
        everything = s2.read_all()
    finally:
        check_eq(s2.stop(), 0, "restarted server exit code")
    check_eq([e["position"] for e in everything], list(range(len(everything))), "gap-free log")
    by_id = {}
    for e in everything:
        by_id.setdefault(e["id"], []).append(e)
    for event_id, result in acked:
        found = by_id.get(event_id, [])
        check_eq(len(found), 1, f"acknowledged event {event_id} present exactly once")
        check_eq((found[0]["stream"], found[0]["position"]),
                 (result["stream"], result["position"]), "where the 200 said")
    check_eq(len(by_id), len(everything), "no duplicate ids in the log")
    env.notes.append(f"shutdown: {len(acked)} acked ({before} before SIGTERM), {outcomes}")


# ---- Projections (declared in the config file) ----

PROJECTIONS_CONFIG = """
[[projections]]
name = "users"
category = "user"
types = ["UserRegistered", "EmailChanged", "UserErased"]
key = "subject"
reduce = "merge"

[[projections]]
name = "events-per-user"
category = "user"
key = "subject"
reduce = "count"

[[projections]]
name = "last-order"
category = "order"
key = "/data/userId"
reduce = "latest"
"""


def projection_metric(server, name, projection):
    r = server.get("/metrics")
    check_eq(r.status, 200, f"GET /metrics: {r}")
    pattern = (re.escape(name) + r'\{projection="' + re.escape(projection) + r'"\} (\S+)$')
    match = re.search(pattern.encode(), r.body, re.M)
    check(match is not None, f"metric {name}{{projection={projection!r}}} missing")
    return float(match.group(1))


def state(server, projection, key, wait_for=None, status=200):
    """GET /projections/{projection}/state/{key}[?waitFor=]; the JSON value."""
    path = (f"/projections/{projection}/state/" + urllib.parse.quote(key, safe=""))
    if wait_for is not None:
        path += f"?waitFor={wait_for}&waitMs=10000"
    r = server.get(path)
    check_eq(r.status, status, f"GET {path}: {r}")
    return r.json()


def all_state(server, projection, limit=2):
    """Every key and value of a kv projection, following `next`."""
    items = {}
    after = None
    while True:
        query = f"limit={limit}" + (f"&after={urllib.parse.quote(after)}" if after else "")
        r = server.get(f"/projections/{projection}/state?{query}")
        check_eq(r.status, 200, f"state page: {r}")
        page = r.json()
        check(len(page["items"]) <= limit, f"page larger than limit: {page}")
        for item in page["items"]:
            check(item["key"] not in items, f"key {item['key']} on two pages")
            items[item["key"]] = item["value"]
        if page["next"] is None:
            return items
        after = page["next"]


@test
def projections_declared_in_config(env):
    config = write_config("projections.toml", PROJECTIONS_CONFIG)
    s = Server("projections", global_args=["--durability", "none"],
               args=["--config", config]).start()
    s.ok_append("user-1", [ev("UserRegistered", subject="alice",
                              data={"name": "Alice", "email": "a@x", "roles": {"admin": True}})])
    s.ok_append("user-2", [ev("UserRegistered", subject="bob", data={"name": "Bob"})])
    s.ok_append("user-1", [ev("LoggedIn", subject="alice", data={})])  # not a users type
    s.ok_append("order-1", [ev("OrderPlaced", data={"userId": "alice", "total": 5})])
    s.ok_append("order-2", [ev("OrderPlaced", data={"total": 1})])  # no userId: skipped
    last = s.ok_append("user-1", [ev("EmailChanged", subject="alice",
                                     data={"email": "alice@x", "roles": {"admin": None}})])
    position = last["lastPosition"]
    # Read-your-writes: waitFor the position the append returned.
    alice = state(s, "users", "alice", wait_for=position)
    check_eq(alice, {"name": "Alice", "email": "alice@x", "roles": {}}, "merged user")
    check_eq(state(s, "events-per-user", "alice", wait_for=position), 3, "count")
    order = state(s, "last-order", "alice", wait_for=position)
    check_eq((order["stream"], order["data"]["total"]), ("order-1", 5), "latest order event")
    state(s, "last-order", "nobody", status=404)
    check_eq(state(s, "users", "nobody", status=404)["error"], "key_not_found", "no key")
    check_eq(state(s, "nope", "x", status=404)["error"], "projection_not_found", "no proj")
    # List and status.
    r = s.get("/projections")
    check_eq(r.status, 200, f"GET /projections: {r}")
    listed = r.json()["projections"]
    check_eq([p["name"] for p in listed], ["events-per-user", "last-order", "users"], "names")
    for p in listed:
        check_eq((p["kind"], p["state"], p["error"], p["failedPosition"]),
                 ("kv", "running", None, None), f"status of {p['name']}")
        check(p["position"] > position, f"{p['name']} is past the last event: {p}")
        for field in ("eventsProcessed", "lagEvents", "lagMs"):
            check(isinstance(p[field], int), f"{field} in {p}")
    check_eq(s.get("/projections/users").json()["name"], "users", "GET /projections/users")
    # waitFor a position outside the projection's filter: examined, so answered at once.
    other = s.ok_append("order-3", [ev("OrderPlaced", data={"total": 2})])["lastPosition"]
    begin = time.monotonic()
    check_eq(state(s, "users", "alice", wait_for=other)["email"], "alice@x", "filtered waitFor")
    check(time.monotonic() - begin < 5, "waitFor past a filtered-out event waited too long")
    # Paging through every key.
    s.ok_append("user-3", [ev("UserRegistered", subject="carol", data={"name": "Carol"})])
    last = s.ok_append("user-4", [ev("UserRegistered", subject="dave", data={"name": "Dave"})])
    state(s, "users", "dave", wait_for=last["lastPosition"])
    before = all_state(s, "users")
    check_eq(sorted(before), ["alice", "bob", "carol", "dave"], "keys over pages")
    r = s.get("/projections/users/state?prefix=c")
    check_eq([i["key"] for i in r.json()["items"]], ["carol"], "prefix")
    # Stopped: appends build up lag, visible in /metrics and the status.
    r = s.post("/projections/users/stop", None)
    check_eq((r.status, r.json()["state"]), (200, "stopped"), f"stop: {r}")
    check_eq(projection_metric(s, "vellum_projection_state", "users"), 0, "state metric stopped")
    for i in range(3):
        last = s.ok_append("user-5", [ev("UserRegistered", subject="erin", data={"n": i})])
    check_eq(projection_metric(s, "vellum_projection_lag_events", "users"), 3, "lag in events")
    check(projection_metric(s, "vellum_projection_lag_seconds", "users") >= 0, "lag seconds")
    check_eq(s.get("/projections/users").json()["lagEvents"], 3, "lagEvents in the status")
    r = s.get(f"/projections/users/state/erin?waitFor={last['lastPosition']}")
    check_eq((r.status, r.json()["error"]), (409, "failed_precondition"), "waitFor on stopped")
    check_eq(s.post("/projections/users/start", None).json()["state"], "running", "start")
    check_eq(state(s, "users", "erin", wait_for=last["lastPosition"]), {"n": 2}, "erin")
    check_eq(projection_metric(s, "vellum_projection_state", "users"), 1, "state metric running")
    check_eq(projection_metric(s, "vellum_projection_lag_events", "users"), 0, "caught up")
    before["erin"] = {"n": 2}
    # Reset empties the read model; rebuild gives the same state again.
    r = s.post("/projections/users/reset", None)
    check_eq((r.status, r.json()["state"], r.json()["position"]), (200, "stopped", 0), f"{r}")
    state(s, "users", "alice", status=404)
    r = s.post("/projections/users/rebuild", None)
    check_eq((r.status, r.json()["state"]), (200, "running"), f"rebuild: {r}")
    state(s, "users", "erin", wait_for=last["lastPosition"])
    check_eq(all_state(s, "users"), before, "state after rebuild")
    check_eq(s.post("/projections/nope/rebuild", None).status, 404, "rebuild unknown")
    check_eq(s.get("/projections/users/rebuild").status, 405, "GET on an action")
    check_eq(s.stop(), 0, "exit code")
    check(os.path.isdir(os.path.join(s.data, "toolkit")), "read models in <data>/toolkit")
    out = subprocess.run([VELLUM, "--data", s.data, "verify"], capture_output=True, timeout=60)
    check_eq(out.returncode, 0, f"verify with a toolkit/ directory beside the log: {out}")


@test
def projection_count_continues_after_restart(env):
    config = write_config("count.toml", '[[projections]]\nname = "per-subject"\n'
                          'key = "subject"\nreduce = "count"\n')
    data = os.path.join(WORK, "count-data")

    def serve(name):
        return Server(name, data=data, global_args=["--durability", "none"],
                      args=["--config", config]).start()

    def append_some(server, count):
        last = None
        for i in range(count):
            last = server.ok_append(f"c-{i % 3}", [ev("Counted", subject="s", data={"i": i})])
        return last["lastPosition"]

    s = serve("count-1")
    last = append_some(s, 10)
    check_eq(state(s, "per-subject", "s", wait_for=last), 10, "count before restart")
    check_eq(s.stop(), 0, "exit code")
    s = serve("count-2")
    last = append_some(s, 5)
    check_eq(state(s, "per-subject", "s", wait_for=last), 15, "count after SIGTERM restart")
    # SIGKILL: the read model and its checkpoint are written together, so
    # whatever survived, counting resumes from that checkpoint exactly.
    s.kill()
    s = serve("count-3")
    last = append_some(s, 5)
    check_eq(state(s, "per-subject", "s", wait_for=last), 20, "count after SIGKILL restart")
    check_eq(s.stop(), 0, "exit code")


@test
def projection_config_errors(env):
    one = '[[projections]]\nname = "a"\nkey = "subject"\nreduce = "count"\n'
    cases = [
        ('[[projections]]\nname = "a"\nkey = "data/x"\nreduce = "count"\n', "JSON pointer"),
        ('[[projections]]\nname = "a"\nkey = "subject"\nreduce = "sum"\n', 'reduce "sum"'),
        (one + one, 'the name "a" is already taken'),
        (one + 'streams = ["x"]\n', 'unknown key "streams"'),
        ('[[projections]]\nname = "a b"\nkey = "subject"\nreduce = "count"\n', "name"),
    ]
    for index, (text, words) in enumerate(cases):
        config = write_config(f"bad-projection-{index}.toml", text)
        out = subprocess.run([VELLUM, "--data", os.path.join(WORK, "bad-projection-data"),
                              "serve", "--listen", "127.0.0.1:0", "--config", config],
                             capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        check(out.returncode not in (0, None), f"{words}: exit code {out.returncode}")
        check_eq(out.stdout, b"", f"{words}: nothing on stdout")
        check(words.encode() in out.stderr, f"{words}: stderr {out.stderr!r}")


@test
def projection_routes_need_grants(env):
    admin, reader, writer = "adm-" + new_id(), "rd-" + new_id(), "wr-" + new_id()
    config = write_config("projection-keys.toml", key_entry("admin", admin, "admin", ["*"]) +
                          key_entry("reader", reader, "reader", ["*"]) +
                          key_entry("writer", writer, "writer", ["user-"]) +
                          '[[projections]]\nname = "p"\nkey = "stream"\nreduce = "count"\n')
    s = Server("projection-keys", global_args=["--durability", "none"],
               args=["--config", config]).start()
    check_eq(s.get("/projections").status, 401, "no key")
    check_eq(s.get("/projections", token=writer).status, 403, "a key without * may not read")
    check_eq(s.get("/projections", token=reader).status, 200, "reader granted *")
    check_eq(s.post("/projections/p/stop", None, token=reader).status, 403, "reader stops")
    check_eq(s.post("/projections/p/stop", None, token=admin).status, 200, "admin stops")
    check_eq(s.stop(), 0, "exit code")


def run_tests(tests, env, selected, passed, failed):
    """Runs each test whose name contains one of `selected` (all when empty), printing
    ok/FAIL lines; appends the names to `passed` / `failed`. Shared with rooms_test.py."""
    for function in tests:
        if selected and not any(name in function.__name__ for name in selected):
            continue
        begin = time.monotonic()
        try:
            function(env)
            passed.append(function.__name__)
            print(f"ok   {function.__name__} ({time.monotonic() - begin:.2f} s)", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported
            failed.append(function.__name__)
            print(f"FAIL {function.__name__} ({time.monotonic() - begin:.2f} s): {error}",
                  flush=True)
            if not isinstance(error, TestFailure):
                traceback.print_exc()


def script_main(name, tests, make_env):
    """The main() of this script and of the scripts that share its harness
    (rooms_test.py, replicache_test.py, demo_files_test.py): argv is
    <path to vellum> [test name substring ...]; runs `tests` with one
    make_env() and prints "<name>: N passed, M failed in S s"."""
    global VELLUM, WORK
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print(f"usage: {sys.argv[0]} <path to vellum binary> [test name substring ...]",
              file=sys.stderr)
        return 2
    VELLUM = os.path.abspath(sys.argv[1])
    selected = sys.argv[2:]
    WORK = tempfile.mkdtemp(prefix=f"vellum-{name}.")
    env = make_env()
    if not hasattr(env, "notes"):
        env.notes = []
    passed, failed = [], []
    started = time.monotonic()
    try:
        run_tests(tests, env, selected, passed, failed)
        for problem in env.stop_all():
            failed.append("server exit")
            print(f"FAIL server exit: {problem}", flush=True)
    finally:
        for server in STARTED:
            server.kill()
        for note in env.notes:
            print(f"note {note}")
        if failed or os.environ.get("VL_KEEP_WORK"):
            print(f"work directory (logs): {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    print(f"{name}: {len(passed)} passed, {len(failed)} failed "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if failed else 0


def main():
    return script_main("server_test", TESTS, Env)


if __name__ == "__main__":
    sys.exit(main())
