#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end test of rooms (docs/api/rooms.md) on the real `vellum serve`.

Real WebSocket clients (Debian's python3-websockets) against the real
server: concurrent editors converge; a participant that disconnects, misses
1,000 events and reconnects receives exactly those; a submit resent after a
dropped acknowledgement is applied once; presence join/leave/timeout; room
tokens (signed here with Python's hmac, independently of the C++ code);
signed events; the polling fallback; and SIGKILL + restart losing no
acknowledged event while clients resume.

Usage: /usr/bin/python3 rooms_test.py <path to vellum> [test name substring ...]
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import sys
import time
import uuid

import websockets
import websockets.exceptions

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402  (the Server helper and checks)
from server_test import TestFailure, check, check_eq  # noqa: E402

SCHEMA = {
    "policies": {"/title": "lww", "/members": "set", "/activities": "list",
                 "/best": "max", "/steps": "counter"},
    "actions": {
        "rename": [{"op": "set", "path": "/title", "value": "$payload.title"}],
        "join_trip": [{"op": "add", "path": "/members", "value": "$participant"}],
        "add_activity": [{"op": "insert", "path": "/activities",
                          "value": {"id": "$payload.id", "name": "$payload.name"}}],
        "score": [{"op": "max", "path": "/best", "value": "$payload.points"}],
        "step": [{"op": "increment", "path": "/steps", "value": "$payload.n"}],
    },
}
SECRET = "a-room-secret-of-32-bytes-length!"
SIGNING_KEY = "an-event-signing-key-32-bytes-ok!"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_token(app, room, participant, rights=("read", "write"), ttl=3600, secret=SECRET):
    """A room token as docs/api/rooms.md specifies it, made without the C++ code."""
    claims = {"app": app, "room": room, "participant": participant, "rights": list(rights),
              "exp": int(time.time()) + ttl}
    payload = b64url(canonical(claims).encode())
    signature = hmac.new(secret.encode(), ("v1." + payload).encode(), hashlib.sha256).digest()
    return f"v1.{payload}.{b64url(signature)}"


def sign_event(event, participant, key=SIGNING_KEY):
    signed = {"id": event["id"], "action": event["action"],
              "payload": event.get("payload", {}), "lamport": event.get("lamport", 0),
              "participant": participant}
    digest = hmac.new(key.encode(), canonical(signed).encode(), hashlib.sha256).digest()
    return b64url(digest)


def new_event(action, payload, lamport=0):
    return {"id": str(uuid.uuid4()), "action": action, "payload": payload, "lamport": lamport}


class Client:
    """One participant's WebSocket: collects frames, submits, waits for acks."""

    def __init__(self, server, room, participant, last_seq=None, token=None, app="trips"):
        query = f"participant={participant}&name={participant.upper()}"
        if last_seq is not None:
            query += f"&lastSeq={last_seq}"
        if token is not None:
            query += f"&token={token}"
        self.uri = f"ws://127.0.0.1:{server.port}/rooms/{app}/{room}?{query}"
        self.participant = participant
        self.frames = []
        self.ws = None
        self.reader = None
        self.ref = 0
        self.closed = None

    async def connect(self):
        self.ws = await websockets.connect(self.uri, open_timeout=10, close_timeout=2,
                                          max_size=None)
        self.reader = asyncio.ensure_future(self._read())
        await self.wait(lambda f: f["type"] == "live")
        return self

    async def _read(self):
        try:
            async for message in self.ws:
                self.frames.append(json.loads(message))
        except websockets.exceptions.ConnectionClosed as closed:
            self.closed = closed
        else:
            self.closed = self.ws.close_code

    async def wait(self, match, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames:
                if match(frame):
                    return frame
            await asyncio.sleep(0.01)
        raise TestFailure(f"{self.participant}: no matching frame in {timeout} s; last frames "
                          f"{self.frames[-3:]}")

    async def submit(self, events, wait=True, atomic=False):
        self.ref += 1
        ref = self.ref
        await self.ws.send(json.dumps({"op": "submit", "ref": ref, "events": events,
                                       "atomic": atomic}))
        if wait:
            return await self.wait(lambda f: f["type"] == "ack" and f.get("ref") == ref)
        return ref

    def events(self):
        return [e for f in self.frames if f["type"] == "events" for e in f["events"]]

    async def close(self):
        await self.ws.close()
        if self.reader:
            await asyncio.wait([self.reader], timeout=5)

    def drop(self):
        """The connection dies: no close handshake."""
        self.ws.transport.abort()


def start_server(name, *args, config=None):
    server_args = list(args)
    if config is not None:
        path = os.path.join(st.WORK, name + ".toml")
        with open(path, "w") as f:
            f.write(config)
        server_args += ["--config", path]
    server = st.Server(name, server_args).start()
    r = server.request("PUT", "/apps/trips/schema", SCHEMA)
    check_eq(r.status, 200, f"PUT schema: {r}")
    return server


def room_state(server, room, query=""):
    r = server.get(f"/rooms/trips/{room}/state{query}")
    check_eq(r.status, 200, f"GET state: {r}")
    return r.json()


# ---- Tests ----

def test_schema_endpoints_and_errors(env):
    server = env.server("schema")
    r = server.get("/apps/trips/schema")
    check_eq(r.status, 200, "GET schema")
    check_eq(r.json()["schema"], SCHEMA, "stored schema")
    bad = server.request("PUT", "/apps/trips/schema", {"policies": {"/x": "nope"}})
    check_eq(bad.status, 400, f"bad schema: {bad}")
    check_eq(server.get("/apps/nosuch/schema").status, 404, "no schema")
    # A room of an app without a schema cannot be joined: 404 before the upgrade.
    async def join_unknown():
        try:
            await websockets.connect(f"ws://127.0.0.1:{server.port}/rooms/nosuch/r?participant=a")
        except websockets.exceptions.InvalidStatusCode as error:
            return error.status_code
        return None
    check_eq(asyncio.run(join_unknown()), 404, "join without a schema")
    check_eq(server.get("/rooms/Bad!/r/state").status, 400, "bad app name")


def test_concurrent_editors_converge(env):
    server = env.server("converge")

    async def scenario():
        clients = [await Client(server, "r1", f"p{i}").connect() for i in range(5)]
        async def edit(client, seed):
            rng = random.Random(seed)
            for _ in range(40):
                kind = rng.randrange(4)
                lamport = rng.randrange(6)
                if kind == 0:
                    e = new_event("rename", {"title": f"t{rng.randrange(1000)}"}, lamport)
                elif kind == 1:
                    e = new_event("step", {"n": 1}, lamport)
                elif kind == 2:
                    e = new_event("score", {"points": rng.randrange(500)}, lamport)
                else:
                    e = new_event("add_activity", {"id": f"a{rng.randrange(9)}", "name": "x"},
                                  lamport)
                await client.submit([e], wait=False)
        await asyncio.gather(*(edit(c, i) for i, c in enumerate(clients)))
        for c in clients:
            await c.wait(lambda f: f["type"] == "ack" and f.get("ref") == 40)
        final = room_state(server, "r1")
        for c in clients:
            await c.wait(lambda f: f["type"] == "events" and f["seq"] == final["seq"])
        # Everyone saw the same events after its join, in seq order, gap-free.
        sequences = []
        for c in clients:
            seqs = [e["seq"] for e in c.events()]
            check_eq(seqs, list(range(seqs[0], final["seq"] + 1)), f"{c.participant} seqs")
            sequences.append({e["seq"]: e["id"] for e in c.events()})
        for s in sequences[1:]:
            for seq, event_id in s.items():
                if seq in sequences[0]:
                    check_eq(event_id, sequences[0][seq], f"event at seq {seq}")
        check_eq(final["state"]["steps"], sum(
            1 for e in clients[0].events() if e["action"] == "step"), "counter")
        # A late joiner gets the same state from a snapshot.
        late = await Client(server, "r1", "late").connect()
        snapshot = next(f for f in late.frames if f["type"] == "snapshot")
        check_eq(snapshot["hash"], room_state(server, "r1")["hash"], "late joiner's hash")
        for c in clients + [late]:
            await c.close()
    asyncio.run(scenario())


def test_reconnect_receives_exactly_what_was_missed(env):
    # Catch-up by events up to 2,000 behind: under a sanitizer the drop can outlast the
    # presence timeout, adding $left/$joined to the 1,000 missed events.
    server = env.server("reconnect", extra=("--rooms-catch-up-events-max", "2000"))

    async def scenario():
        ann = await Client(server, "r2", "ann").connect()
        bob = await Client(server, "r2", "bob").connect()
        joined = await bob.wait(lambda f: f["type"] == "events" and any(
            e["action"] == "$joined" and e["participant"] == "bob" for e in f["events"]))
        bob_seq = max(e["seq"] for e in bob.events())
        bob.drop()
        for batch in range(10):
            ack = await ann.submit([new_event("step", {"n": 1}) for _ in range(100)])
            check(all("seq" in r for r in ack["results"]), f"batch {batch}: {ack}")
        bob2 = await Client(server, "r2", "bob", last_seq=bob_seq).connect()
        missed = [e for e in bob2.events() if e.get("action") == "step"]
        check_eq(len(missed), 1000, "missed events")
        seqs = [e["seq"] for e in bob2.events()]
        check_eq(seqs, list(range(bob_seq + 1, bob_seq + 1 + len(seqs))), "gap-free catch-up")
        check(not any(f["type"] == "snapshot" for f in bob2.frames), "events, not a snapshot")
        # Live after the catch-up.
        await ann.submit([new_event("rename", {"title": "after"})])
        await bob2.wait(lambda f: f["type"] == "events" and f["events"][0]["action"] == "rename")
        await ann.close()
        await bob2.close()
        del joined
    asyncio.run(scenario())


def test_resent_submit_after_a_dropped_ack_is_applied_once(env):
    server = env.server("resend")

    async def scenario():
        ann = await Client(server, "r3", "ann").connect()
        event = new_event("step", {"n": 7})
        await ann.submit([event], wait=False)
        ann.drop()  # the acknowledgement is lost with the connection
        again = await Client(server, "r3", "ann").connect()
        ack = await again.submit([event])
        check("seq" in ack["results"][0], f"resend: {ack}")
        ack2 = await again.submit([event])
        check_eq(ack2["results"][0], ack["results"][0], "same original outcome")
        check_eq(room_state(server, "r3")["state"]["steps"], 7, "applied once")
        await again.close()
    asyncio.run(scenario())


def test_presence_join_leave_and_timeout(env):
    server = env.server("presence")

    async def scenario():
        ann = await Client(server, "r4", "ann").connect()
        bob = await Client(server, "r4", "bob").connect()
        await ann.wait(lambda f: f["type"] == "presence" and f["participant"] == "bob" and
                       f["event"] == "joined")
        await bob.ws.send(json.dumps({"op": "presence", "state": {"cursor": [3, 4]}}))
        updated = await ann.wait(lambda f: f["type"] == "presence" and f["event"] == "updated")
        check_eq(updated["state"], {"cursor": [3, 4]}, "ephemeral state")
        carl = await Client(server, "r4", "carl").connect()
        await carl.close()  # a clean leave: at once
        await ann.wait(lambda f: f["type"] == "presence" and f["participant"] == "carl" and
                       f["event"] == "left")
        started = time.monotonic()
        bob.drop()  # dies: left only after the timeout (600 ms here)
        await ann.wait(lambda f: f["type"] == "presence" and f["participant"] == "bob" and
                       f["event"] == "disconnected")
        await ann.wait(lambda f: f["type"] == "presence" and f["participant"] == "bob" and
                       f["event"] == "left")
        check(time.monotonic() - started >= 0.5, "left before the timeout")
        # Both leaves are recorded as events (committed just after the notices).
        deadline = time.monotonic() + 10
        while [e["action"] for e in ann.events()].count("$left") < 2:
            check(time.monotonic() < deadline, f"recorded leaves: {ann.events()[-3:]}")
            await asyncio.sleep(0.02)
        # Reconnecting replaces: never two connections of one participant.
        a2 = await Client(server, "r4", "ann").connect()
        await ann.wait(lambda f: True)
        await asyncio.sleep(0.3)
        check(ann.closed is not None, "the older connection was closed")
        names = [p["participant"] for p in a2.frames[0]["participants"]]
        check_eq(names.count("ann"), 1, "one ann")
        await a2.close()
    asyncio.run(scenario())


def test_room_tokens(env):
    config = f'[[room_apps]]\napp = "trips"\nsecret = "{SECRET}"\n'
    server = env.server("tokens", config=config)

    async def status_of(query):
        try:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{server.port}/rooms/trips/r5?{query}", open_timeout=10)
            await ws.close()
            return 101
        except websockets.exceptions.InvalidStatusCode as error:
            return error.status_code

    async def scenario():
        check_eq(await status_of("participant=ann"), 401, "missing token")
        good = make_token("trips", "r5", "ann")
        check_eq(await status_of(f"participant=ann&token={good}"), 101, "good token")
        forged = make_token("trips", "r5", "ann", secret="another-secret-of-enough-length")
        check_eq(await status_of(f"participant=ann&token={forged}"), 401, "forged")
        expired = make_token("trips", "r5", "ann", ttl=-3600)
        check_eq(await status_of(f"participant=ann&token={expired}"), 401, "expired")
        other_room = make_token("trips", "elsewhere", "ann")
        check_eq(await status_of(f"participant=ann&token={other_room}"), 403, "other room")
        check_eq(await status_of(f"participant=bob&token={good}"), 403, "another participant")
        wildcard = make_token("trips", "*", "ann")
        check_eq(await status_of(f"participant=ann&token={wildcard}"), 101, "any room")
        check_eq(await status_of("participant=ann&token=v1.garbage"), 401, "malformed")
        # A read-only token joins but cannot submit.
        reader = await Client(server, "r5", "rita",
                              token=make_token("trips", "r5", "rita", rights=("read",))).connect()
        await reader.ws.send(json.dumps({"op": "submit", "ref": 1,
                                         "events": [new_event("step", {"n": 1})]}))
        await reader.wait(lambda f: f["type"] == "error" and f["error"]["code"] == "forbidden")
        await reader.close()
        # HTTP: the token's participant only.
        r = server.post("/rooms/trips/r5/events",
                        {"participant": "bob", "events": [new_event("step", {"n": 1})]},
                        headers={"X-Room-Token": good})
        check_eq(r.status, 403, f"HTTP as another participant: {r}")
        r = server.post("/rooms/trips/r5/events",
                        {"participant": "ann", "events": [new_event("step", {"n": 1})]},
                        headers={"X-Room-Token": good})
        check_eq(r.status, 200, f"HTTP with a token: {r}")
    asyncio.run(scenario())


def test_signed_events(env):
    config = (f'[[room_apps]]\napp = "trips"\nsecret = "{SECRET}"\n'
              f'signing_key = "{SIGNING_KEY}"\n')
    server = env.server("signed", config=config)

    async def scenario():
        ann = await Client(server, "r6", "ann", token=make_token("trips", "r6", "ann")).connect()
        good = new_event("step", {"n": 2})
        good["sig"] = sign_event(good, "ann")
        unsigned = new_event("step", {"n": 3})
        as_bob = new_event("step", {"n": 4})
        as_bob["sig"] = sign_event(as_bob, "bob")  # signed for another participant
        ack = await ann.submit([good, unsigned, as_bob])
        results = ack["results"]
        check("seq" in results[0], f"signed: {results[0]}")
        check_eq(results[1]["error"]["code"], "signature_missing", "unsigned")
        check_eq(results[2]["error"]["code"], "signature_invalid", "wrong participant")
        await ann.close()
    asyncio.run(scenario())


def test_polling_fallback(env):
    server = env.server("polling")
    import threading
    result = {}

    def long_poll():
        result["r"] = server.get("/rooms/trips/r7/events?after=0&waitMs=5000")
    thread = threading.Thread(target=long_poll)
    thread.start()
    time.sleep(0.2)
    event = new_event("rename", {"title": "polled"}, lamport=9)
    r = server.post("/rooms/trips/r7/events", {"participant": "poller", "events": [event]})
    check_eq(r.status, 200, f"POST events: {r}")
    body = r.json()
    check_eq(body["results"][0]["outcome"], "applied", "outcome")
    check_eq(body["clock"], 10, "room clock = max(room, 9) + 1")
    thread.join(10)
    check_eq(result["r"].status, 200, "long poll")
    check_eq(result["r"].json()["events"][0]["id"], event["id"], "woken with the event")
    again = server.post("/rooms/trips/r7/events", {"participant": "poller", "events": [event]})
    check_eq(again.json()["results"][0]["seq"], body["results"][0]["seq"], "idempotent")
    at = room_state(server, "r7", "?at=0")
    check_eq(at["state"], {}, "state at seq 0")


def test_sigkill_loses_no_acknowledged_event_and_clients_resume(env):
    server = env.server("kill")

    async def phase_one():
        ann = await Client(server, "r8", "ann").connect()
        acked = []
        for i in range(30):
            ack = await ann.submit([new_event("step", {"n": 1})])
            acked += [r["id"] for r in ack["results"] if "seq" in r]
        # Some more without waiting: they may or may not survive the kill.
        for i in range(10):
            await ann.submit([new_event("step", {"n": 1})], wait=False)
        return acked, max(e["seq"] for e in ann.events())
    acked, seen = asyncio.run(phase_one())
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    restarted = st.Server("kill", ["--rooms-snapshot-every-events", "7"], data=server.data).start()
    env.servers.append(restarted)

    async def phase_two():
        ann = await Client(restarted, "r8", "ann", last_seq=seen).connect()
        r = restarted.get("/rooms/trips/r8/events?after=0&limit=1000")
        ids = {e["id"] for e in r.json()["events"]}
        missing = [i for i in acked if i not in ids]
        check_eq(missing, [], "acknowledged events lost")
        state = room_state(restarted, "r8")
        steps = sum(1 for e in r.json()["events"] if e["action"] == "step")
        check_eq(state["state"]["steps"], steps, "state = events after restart")
        ack = await ann.submit([new_event("step", {"n": 1})])
        check_eq(ack["results"][0]["seq"], state["seq"] + 1, "resumes at the next seq")
        await ann.close()
    asyncio.run(phase_two())


TESTS = [
    test_schema_endpoints_and_errors,
    test_concurrent_editors_converge,
    test_reconnect_receives_exactly_what_was_missed,
    test_resent_submit_after_a_dropped_ack_is_applied_once,
    test_presence_join_leave_and_timeout,
    test_room_tokens,
    test_signed_events,
    test_polling_fallback,
    test_sigkill_loses_no_acknowledged_event_and_clients_resume,
]


class Env:
    def __init__(self):
        self.servers = []

    def server(self, name, config=None, extra=()):
        server = start_server(name, "--rooms-presence-timeout-ms", "600",
                              "--rooms-snapshot-every-events", "7", *extra, config=config)
        self.servers.append(server)
        return server

    def stop_all(self):
        problems = []
        for server in self.servers:
            if server.proc.poll() is None:
                rc = server.stop()
                if rc != 0:
                    problems.append(f"{server.name} exited {rc}: {server.log_tail()}")
        return problems


def main():
    return st.script_main("rooms_test", TESTS, Env)


if __name__ == "__main__":
    sys.exit(main())
