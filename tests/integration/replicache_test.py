#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end test of the Replicache endpoints (docs/api/replicache.md).

The real `vellum serve` over real sockets, speaking the protocol as the
`replicache` npm client does (version 1 shapes): push/pull shapes, the first
pull's clear + puts, later patches, idempotent pushes (a replay appends
nothing), gaps refused, error mode (a refused mutation still advances
lastMutationID and is recorded as a $refused event), monotonic cookies,
lastMutationIDChanges per client group, the poke WebSocket, room tokens,
and lastMutationID surviving a SIGKILL and restart. Prints pull latency for a
room with many slots.

Usage: /usr/bin/python3 replicache_test.py <path to vellum> [test name substring ...]
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import sys
import time

import websockets

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402  (the Server helper and checks)
from server_test import check, check_eq  # noqa: E402

SCHEMA = {
    "policies": {"/title": "lww", "/votes/*": "counter", "/tags": "set"},
    "actions": {
        "rename": [{"op": "set", "path": "/title", "value": "$payload.title"}],
        "vote": [{"op": "increment", "path": "/votes/{payload.item}", "value": "$payload.n"}],
        "tag": [{"op": "add", "path": "/tags", "value": "$payload.tag"}],
        "untitle": [{"op": "delete", "path": "/title"}],
    },
}
SECRET = "a-replicache-secret-32-bytes-ok!!"
TESTS = []


def test(function):
    TESTS.append(function)
    return function


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def room_token(app, room, participant, write=True):
    rights = ["read", "write"] if write else ["read"]
    claims = {"app": app, "room": room, "participant": participant, "rights": rights,
              "exp": int(time.time()) + 3600}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(SECRET.encode(), f"v1.{payload}".encode(), hashlib.sha256).digest()
    return f"v1.{payload}.{b64url(signature)}"


class Env:
    def __init__(self):
        self.servers = {}

    def server(self):
        if "main" not in self.servers:
            config = os.path.join(st.WORK, "rc.toml")
            with open(config, "w") as f:
                f.write(f'[[room_apps]]\napp = "secured"\nsecret = "{SECRET}"\n')
            s = st.Server("main", global_args=["--durability", "fsync"],
                          args=["--config", config])
            self.servers["main"] = s
            s.start()
            for app in ("trips", "secured"):
                r = s.request("PUT", f"/apps/{app}/schema", body=SCHEMA)
                check_eq(r.status, 200, f"schema {app}: {r}")
        return self.servers["main"]

    def stop_all(self):
        problems = []
        for name, server in self.servers.items():
            rc = server.stop()
            if rc != 0:
                problems.append(f"{name} exited with {rc}: {server.log_tail()}")
        return problems


def mutation(client, id_, name, args):
    return {"id": id_, "clientID": client, "name": name, "args": args, "timestamp": 12.5}


def push(s, room, group, mutations, app="trips", version=1, token=None):
    body = {"pushVersion": version, "schemaVersion": "", "profileID": "p1",
            "clientGroupID": group, "mutations": mutations}
    return s.post(f"/replicache/{app}/{room}/push", body,
                  headers={"Authorization": "Bearer " + token} if token else None)


def pull(s, room, group, cookie, app="trips", version=1, token=None):
    body = {"pullVersion": version, "schemaVersion": "", "profileID": "p1",
            "clientGroupID": group, "cookie": cookie}
    r = s.post(f"/replicache/{app}/{room}/pull", body,
               headers={"Authorization": "Bearer " + token} if token else None)
    return r


def ok_pull(s, room, group, cookie, **kw):
    r = pull(s, room, group, cookie, **kw)
    check_eq(r.status, 200, f"pull: {r}")
    return r.json()


def apply_patch(view, patch):
    for op in patch:
        if op["op"] == "clear":
            view.clear()
        elif op["op"] == "put":
            view[op["key"]] = op["value"]
        elif op["op"] == "del":
            view.pop(op["key"], None)
        else:
            raise st.TestFailure(f"unknown patch op {op}")
    return view


def room_events(s, room, app="trips", token=None):
    r = s.get(f"/rooms/{app}/{room}/events?after=0&limit=1000",
              headers={"X-Room-Token": token} if token else None)
    check_eq(r.status, 200, f"events: {r}")
    return r.json()["events"]


@test
def push_then_pull_shapes(env):
    s = env.server()
    r = push(s, "r1", "g1", [mutation("c1", 1, "rename", {"title": "Tokyo"}),
                             mutation("c1", 2, "vote", {"item": "sushi", "n": 2}),
                             mutation("c2", 1, "vote", {"item": "sushi", "n": 5})])
    check_eq(r.status, 200, f"push: {r}")
    first = ok_pull(s, "r1", "g1", None)
    check_eq(first["patch"][0], {"op": "clear"}, "a first pull starts with clear")
    check_eq(apply_patch({}, first["patch"]), {"/title": "Tokyo", "/votes/sushi": 7}, "view")
    check_eq(first["lastMutationIDChanges"], {"c1": 2, "c2": 1}, "lastMutationIDChanges")
    check(isinstance(first["cookie"], int) and first["cookie"] == 3, f"cookie {first['cookie']}")
    state = s.get("/rooms/trips/r1/state").json()
    check_eq(state["state"], {"title": "Tokyo", "votes": {"sushi": 7}}, "room state")
    check_eq(state["seq"], first["cookie"], "the cookie is the room seq")
    events = room_events(s, "r1")
    check_eq([e["action"] for e in events], ["rename", "vote", "vote"], "events")
    check_eq(events[0]["participant"], "rc-g1", "development mode acts as rc-<clientGroupID>")
    check_eq(events[0]["id"][14], "8", "deterministic UUIDv8 ids")
    # Nothing changed: same cookie, empty patch and changes.
    again = ok_pull(s, "r1", "g1", first["cookie"])
    check_eq((again["cookie"], again["patch"], again["lastMutationIDChanges"]),
             (first["cookie"], [], {}), "an idle pull")
    # Another group sees the document, not g1's clients.
    other = ok_pull(s, "r1", "g2", None)
    check_eq(other["lastMutationIDChanges"], {}, "other groups' clients are not listed")


@test
def later_pulls_are_patches_since_the_cookie(env):
    s = env.server()
    check_eq(push(s, "r2", "g1", [mutation("c1", 1, "rename", {"title": "A"}),
                                  mutation("c1", 2, "tag", {"tag": "x"})]).status, 200, "push")
    first = ok_pull(s, "r2", "g1", None)
    view = apply_patch({}, first["patch"])
    check_eq(push(s, "r2", "g1", [mutation("c1", 3, "untitle", {}),
                                  mutation("c1", 4, "vote", {"item": "k", "n": 1})]).status,
             200, "push 2")
    second = ok_pull(s, "r2", "g1", first["cookie"])
    check(second["cookie"] > first["cookie"], "the cookie advances")
    check_eq(sorted((op["op"], op["key"]) for op in second["patch"]),
             [("del", "/title"), ("put", "/votes/k")], "only what changed")
    check_eq(second["lastMutationIDChanges"], {"c1": 4}, "changes since the cookie")
    apply_patch(view, second["patch"])
    full = apply_patch({}, ok_pull(s, "r2", "g1", None)["patch"])
    check_eq(view, full, "patches add up to a full pull")


@test
def a_replayed_push_appends_nothing(env):
    s = env.server()
    batch = [mutation("c1", 1, "vote", {"item": "a", "n": 1}),
             mutation("c1", 2, "vote", {"item": "a", "n": 1})]
    check_eq(push(s, "r3", "g1", batch).status, 200, "push")
    before = len(room_events(s, "r3"))
    for _ in range(3):
        check_eq(push(s, "r3", "g1", batch).status, 200, "replayed push")
    check_eq(len(room_events(s, "r3")), before, "no new events")
    check_eq(s.get("/rooms/trips/r3/state").json()["state"]["votes"]["a"], 2, "applied once")
    # A push that overlaps what was processed applies only the new tail.
    check_eq(push(s, "r3", "g1", batch + [mutation("c1", 3, "vote",
                                                   {"item": "a", "n": 1})]).status, 200, "tail")
    check_eq(s.get("/rooms/trips/r3/state").json()["state"]["votes"]["a"], 3, "tail applied")


@test
def a_gap_is_refused_and_nothing_after_it_applies(env):
    s = env.server()
    check_eq(push(s, "r4", "g1", [mutation("c1", 1, "tag", {"tag": "a"})]).status, 200, "push")
    r = push(s, "r4", "g1", [mutation("c1", 3, "tag", {"tag": "c"})])
    check_eq(r.status, 409, f"gap: {r}")
    check_eq(r.json()["error"], "mutation_gap", "gap error")
    check_eq(len(room_events(s, "r4")), 1, "nothing applied after the gap")
    check_eq(push(s, "r4", "g1", [mutation("c1", 2, "tag", {"tag": "b"}),
                                  mutation("c1", 3, "tag", {"tag": "c"})]).status, 200, "in order")
    check_eq(sorted(s.get("/rooms/trips/r4/state").json()["state"]["tags"]), ["a", "b", "c"],
             "applied in order")


@test
def refused_mutations_advance_last_mutation_id(env):
    s = env.server()
    r = push(s, "r5", "g1", [mutation("c1", 1, "no_such_action", {}),
                             mutation("c1", 2, "vote", {"item": "a"}),  # no n: reducer refuses
                             mutation("c1", 3, "rename", {"title": "ok"})])
    check_eq(r.status, 200, f"push: {r}")
    p = ok_pull(s, "r5", "g1", None)
    check_eq(p["lastMutationIDChanges"], {"c1": 3}, "error mode advances lastMutationID")
    check_eq(apply_patch({}, p["patch"]), {"/title": "ok"}, "refused ones change nothing")
    events = room_events(s, "r5")
    refused = [e for e in events if e["action"] == "$refused"]
    check_eq(len(refused), 2, f"refusals are recorded in the log: {events}")
    check(all(e.get("system") for e in refused), "as system events")
    check_eq(refused[0]["payload"]["action"], "no_such_action", "naming the action")
    check_eq(refused[0]["refused"]["code"], "unknown_action", "and why")
    check(p["cookie"] == 3, "refusals take a seq, so the cookie moves")
    check(s.metric("vellum_room_events_refused_total") >= 2, "refusals are counted")


@test
def errors_versions_groups_and_cookies(env):
    s = env.server()
    r = push(s, "r6", "g1", [], version=0)
    check_eq((r.status, r.json()), (200, {"error": "VersionNotSupported", "versionType": "push"}),
             "push v0")
    r = pull(s, "r6", "g1", None, version=0)
    check_eq(r.json(), {"error": "VersionNotSupported", "versionType": "pull"}, "pull v0")
    check_eq(push(s, "r6", "g1", [mutation("c1", 1, "tag", {"tag": "a"})]).status, 200, "push")
    r = push(s, "r6", "g2", [mutation("c1", 2, "tag", {"tag": "b"})])
    check_eq(r.status, 409, f"a client of another group: {r}")
    check_eq(r.json()["error"], "client_group_mismatch", "mismatch error")
    for cookie in [999, "abc", {"order": 1}]:
        r = pull(s, "r6", "g1", cookie)
        check_eq((r.status, r.json()), (200, {"error": "ClientStateNotFound"}), f"cookie {cookie}")
    check_eq(s.post("/replicache/trips/r6/push", "not json").status, 400, "bad JSON")
    check_eq(s.get("/replicache/trips/r6/pull").status, 405, "GET")
    check_eq(push(s, "r6", "g1", [], app="noschema").status, 404, "an app without a schema")


@test
def room_tokens_name_the_participant(env):
    s = env.server()
    ann = room_token("secured", "r7", "ann")
    check_eq(push(s, "r7", "g1", [mutation("c1", 1, "tag", {"tag": "a"})], app="secured").status,
             401, "no token")
    r = push(s, "r7", "g1", [mutation("c1", 1, "tag", {"tag": "a"})], app="secured", token=ann)
    check_eq(r.status, 200, f"push with a token: {r}")
    check_eq(room_events(s, "r7", app="secured", token=ann)[0]["participant"], "ann", "acts as ann")
    bob = room_token("secured", "r7", "bob")
    r = push(s, "r7", "g1", [mutation("c1", 2, "tag", {"tag": "b"})], app="secured", token=bob)
    check_eq(r.status, 403, f"ann's client group is not bob's: {r}")
    reader = room_token("secured", "r7", "ann", write=False)
    r = push(s, "r7", "g1", [mutation("c1", 2, "tag", {"tag": "b"})], app="secured", token=reader)
    check_eq(r.status, 403, f"a read-only token cannot push: {r}")
    check_eq(pull(s, "r7", "g1", None, app="secured", token=reader).status, 200, "but can pull")


async def poke_frames(s, room, actions):
    uri = f"ws://127.0.0.1:{s.port}/replicache/trips/{room}/poke"
    async with websockets.connect(uri, open_timeout=10, close_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await asyncio.get_running_loop().run_in_executor(None, actions)
        pokes = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except asyncio.TimeoutError:
                if pokes and pokes[-1]["cookie"] >= 10:
                    break
                continue
            pokes.append(frame)
        return first, pokes


@test
def pokes_follow_commits(env):
    s = env.server()

    def actions():
        for i in range(1, 11):
            check_eq(push(s, "r8", "g1", [mutation("c1", i, "tag", {"tag": str(i)})]).status,
                     200, "push")

    first, pokes = asyncio.run(poke_frames(s, "r8", actions))
    check_eq(first, {"type": "poke", "cookie": 0}, "the current cookie on connect")
    check(pokes, "pokes after commits")
    check(all(p["type"] == "poke" and set(p) == {"type", "cookie"} for p in pokes),
          f"content-free: {pokes}")
    cookies = [p["cookie"] for p in pokes]
    check_eq(cookies, sorted(cookies), "in commit order")
    check_eq(cookies[-1], 10, "the last commit is poked")
    check_eq(ok_pull(s, "r8", "g1", cookies[-1])["patch"], [], "the poked cookie is current")


@test
def last_mutation_id_survives_kill_and_restart(env):
    s = st.Server("restart", global_args=["--durability", "fsync"]).start()
    check_eq(s.request("PUT", "/apps/trips/schema", body=SCHEMA).status, 200, "schema")
    muts = [mutation("c1", i, "vote", {"item": "a", "n": 1}) for i in range(1, 6)]
    check_eq(push(s, "rk", "g1", muts).status, 200, "push")
    before = ok_pull(s, "rk", "g1", None)
    s.kill()
    # The cached records are derived: delete them too, the log alone must do.
    shutil.rmtree(os.path.join(s.data, "toolkit"), ignore_errors=True)
    s.start()
    try:
        check_eq(push(s, "rk", "g1", muts).status, 200, "replay after restart")
        after = ok_pull(s, "rk", "g1", None)
        check_eq(after["lastMutationIDChanges"], {"c1": 5}, "lastMutationID from the log")
        check_eq(after["cookie"], before["cookie"], "the replay appended nothing")
        check_eq(apply_patch({}, after["patch"]), {"/votes/a": 5}, "applied once")
        check_eq(push(s, "rk", "g1", [mutation("c1", 7, "tag", {"tag": "x"})]).status, 409,
                 "gap after restart")
        check_eq(push(s, "rk", "g1", [mutation("c1", 6, "tag", {"tag": "x"})]).status, 200,
                 "next after restart")
    finally:
        check_eq(s.stop(), 0, "restart server exit")


@test
def pull_latency(env):
    """Pull latency for a room with many slots (printed, not asserted)."""
    s = env.server()
    slots = 2000
    for start in range(0, slots, 500):
        muts = [mutation("c1", i + 1, "vote", {"item": f"i{i}", "n": 1})
                for i in range(start, start + 500)]
        check_eq(push(s, "big", "g1", muts).status, 200, "push")
    full, patch = [], []
    cookie = ok_pull(s, "big", "g1", None)["cookie"]
    for round_ in range(10):
        begin = time.monotonic()
        p = ok_pull(s, "big", "g1", None)
        full.append(time.monotonic() - begin)
        check_eq(len(p["patch"]), slots + 1, "every slot")
        check_eq(push(s, "big", "g1", [mutation("c1", slots + round_ + 1, "vote",
                                                 {"item": "i0", "n": 1})]).status, 200, "push")
        begin = time.monotonic()
        p = ok_pull(s, "big", "g1", cookie)
        patch.append(time.monotonic() - begin)
        check_eq(len(p["patch"]), 1, "one changed slot")
        cookie = p["cookie"]
    full.sort()
    patch.sort()
    print(f"     pull latency, {slots} slots: full p50 {full[5] * 1000:.1f} ms, "
          f"incremental p50 {patch[5] * 1000:.1f} ms (max {patch[-1] * 1000:.1f} ms)")


def main():
    return st.script_main("replicache_test", TESTS, Env)


if __name__ == "__main__":
    sys.exit(main())
