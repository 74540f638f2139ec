#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Crash test of `vellum serve`: SIGKILL under concurrent HTTP appends.

Each round starts the server on the same data directory (--durability fsync,
the default), runs concurrent appenders (plain appends of 1-5 events and
two-stream transactions, every event with a client-chosen id), and kills the
server with SIGKILL at a random moment. After every restart it checks:

  - every acknowledged (200) event is in /all exactly once, at the stream and
    position its response named;
  - no event id appears twice; positions are 0..n-1 with no gap, and each
    stream's revisions are 0..k-1;
  - a transaction is all or nothing, acknowledged or not;
  - an append whose outcome was unknown (the connection died) and that is
    retried with the same ids after the restart answers 200 and its events are
    there once (idempotency across a crash).

Usage: /usr/bin/python3 server_kill_test.py <path to vellum>
Env: VL_SERVER_KILLS (rounds, default 5), VL_SEED (default: random, printed),
     VL_KEEP_WORK=1 keeps the data directory and logs.
"""
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

WRITERS = 4


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Server:
    def __init__(self, vellum, data, log_path):
        self.vellum = vellum
        self.data = data
        self.log_path = log_path
        self.proc = None
        self.port = None

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VELLUM_")}
        self.proc = subprocess.Popen(
            [self.vellum, "--data", self.data, "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise Failure(f"no 'listening on' line within {timeout} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise Failure(f"the server exited with {self.proc.wait()} before "
                                  f"listening:\n{self.log_tail()}")
                line += chunk
        match = re.fullmatch(rb"listening on \S+:(\d+)\n", line)
        check(match is not None, f"unexpected first line {line!r}")
        self.port = int(match.group(1))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.proc.stdout.close()
        return rc

    def log_tail(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get_json(self, path):
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            check(response.status == 200, f"GET {path}: {response.status} {body[:300]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def read_all(self):
        events = []
        position = 0
        while True:
            page = self.get_json(f"/all?from={position}&limit=5000")
            events += page["events"]
            if page["next"] is None:
                return events
            position = page["next"]


class Ledger:
    """What the clients know: acknowledged requests and ones of unknown outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        # Each request: {"kind": "append"|"tx", "parts": [(stream, [ids])], "result": ...}
        self.acked = []
        self.unknown = []  # outcome unknown, never retried successfully
        self.statuses = {}
        self.replays = 0  # retries answered with idempotentReplay

    def count(self, status):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def make_request(rng, writer, serial):
    """A new request: an append (1-5 events) or, one time in five, a transaction."""
    def events(stream, count):
        return [{"type": "K", "id": str(uuid.uuid4()),
                 "data": {"w": writer, "n": serial, "k": k, "pad": "x" * rng.randint(0, 300)}}
                for k in range(count)]
    if rng.random() < 0.2:
        parts = [(f"tx{writer}-a", events(f"tx{writer}-a", rng.randint(1, 3))),
                 (f"tx{writer}-b", events(f"tx{writer}-b", rng.randint(1, 3)))]
        body = {"appends": [{"stream": s, "events": e} for s, e in parts]}
        return {"kind": "tx", "path": "/transactions", "body": json.dumps(body),
                "parts": [(s, [x["id"] for x in e]) for s, e in parts]}
    # Streams shared between writers as well as private ones.
    stream = rng.choice([f"own{writer}", f"shared-{rng.randint(0, 2)}"])
    batch = events(stream, rng.randint(1, 5))
    return {"kind": "append", "path": "/streams/" + stream, "body": json.dumps(batch),
            "parts": [(stream, [x["id"] for x in batch])]}


def appender(server, ledger, writer, rng, stop, retries, only_retries=False):
    """Appends until the server dies or `stop` is set. `retries`: requests of
    unknown outcome from the previous round, sent again first (and only them
    with `only_retries`)."""
    conn = None
    serial = 0
    queue = list(retries)
    while not stop.is_set() and (queue or not only_retries):
        request = queue.pop(0) if queue else make_request(rng, writer, serial)
        serial += 1
        try:
            if conn is None:
                conn = server.connection()
            conn.request("POST", request["path"], body=request["body"],
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            # The server died with this request in flight: outcome unknown.
            with ledger.lock:
                ledger.unknown.append(request)
            if conn is not None:
                conn.close()
            conn = None
            # Anything still queued was never sent: keep it for the next round.
            with ledger.lock:
                ledger.unknown.extend(queue)
            return
        ledger.count(response.status)
        if response.status == 200:
            request["result"] = json.loads(body)
            if "was_written" in request:
                results = request["result"]["results"] if request["kind"] == "tx" else \
                    [request["result"]]
                replays = [r.get("idempotentReplay", False) for r in results]
                if replays != [request["was_written"]] * len(results):
                    raise Failure(f"writer {writer}: retry of a request "
                                  f"{'written' if request['was_written'] else 'not written'} "
                                  f"before the kill answered {request['result']}")
                with ledger.lock:
                    ledger.replays += request["was_written"]
            with ledger.lock:
                ledger.acked.append(request)
        elif response.status in (429, 503):
            with ledger.lock:
                ledger.unknown.append(request)  # not written; try again later
            time.sleep(0.01)
        else:
            raise Failure(f"writer {writer}: {response.status} {body[:300]!r}")
    if conn is not None:
        conn.close()
    with ledger.lock:
        ledger.unknown.extend(queue)


def verify(server, ledger, what):
    events = server.read_all()
    positions = [e["position"] for e in events]
    if positions != list(range(len(events))):
        bad = next((i for i, p in enumerate(positions) if p != i), len(positions))
        raise Failure(f"{what}: positions are not 0..{len(events) - 1} (first bad index {bad})")
    by_id = {}
    revisions = {}
    for e in events:
        by_id.setdefault(e["id"], []).append(e)
        revisions.setdefault(e["stream"], []).append(e["streamrevision"])
    duplicates = [i for i, found in by_id.items() if len(found) > 1]
    check(not duplicates, f"{what}: {len(duplicates)} ids appear more than once, e.g. "
          f"{duplicates[:3]}")
    for stream, revs in revisions.items():
        check(revs == list(range(len(revs))), f"{what}: stream {stream} revisions {revs[:20]}")
    with ledger.lock:
        acked = list(ledger.acked)
        unknown = list(ledger.unknown)
    for request in acked:
        results = request["result"]["results"] if request["kind"] == "tx" else \
            [request["result"]]
        for (stream, ids), result in zip(request["parts"], results):
            for k, event_id in enumerate(ids):
                found = by_id.get(event_id)
                check(found, f"{what}: acknowledged event {event_id} of {stream} is missing")
                e = found[0]
                check((e["stream"], e["position"], e["streamrevision"]) ==
                      (stream, result["position"] + k, result["firstRevision"] + k),
                      f"{what}: event {event_id} at {e['stream']}@{e['streamrevision']} "
                      f"position {e['position']}, the 200 said {result}")
    for request in unknown:
        present = [event_id in by_id for _, ids in request["parts"] for event_id in ids]
        check(all(present) or not any(present),
              f"{what}: a request of unknown outcome is partly written: {present}")
        request["was_written"] = all(present)
    return len(events)


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print(f"usage: {sys.argv[0]} <path to vellum binary>", file=sys.stderr)
        return 2
    vellum = os.path.abspath(sys.argv[1])
    kills = int(os.environ.get("VL_SERVER_KILLS", "5"))
    seed = int(os.environ.get("VL_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="vellum-server-kill.")
    server = Server(vellum, os.path.join(work, "data"), os.path.join(work, "server.log"))
    ledger = Ledger()
    started = time.monotonic()
    print(f"server_kill_test: seed {seed} (VL_SEED), {kills} kills (VL_SERVER_KILLS)", flush=True)
    ok = False
    try:
        total = 0
        for round_number in range(1, kills + 1):
            server.start()
            total = verify(server, ledger, f"after restart {round_number}")
            # Requests of unknown outcome are retried with the same ids.
            with ledger.lock:
                retries = ledger.unknown
                ledger.unknown = []
            per_writer = [retries[i::WRITERS] for i in range(WRITERS)]
            stop = threading.Event()
            errors = []

            def run(index, retry):
                try:
                    appender(server, ledger, index, random.Random(rng.random()), stop, retry)
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(f"writer {index}: {error!r}")
            threads = [threading.Thread(target=run, args=(i, per_writer[i]))
                       for i in range(WRITERS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.3, 1.5))
            acked_before = len(ledger.acked)
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(30)
            check(not errors, f"round {round_number}: {errors}")
            print(f"round {round_number}: killed with {acked_before} requests acknowledged, "
                  f"{len(ledger.unknown)} of unknown outcome, log {total} events before "
                  f"the round", flush=True)
            check(acked_before > 0, "no request was acknowledged in the first round")
        # Last restart: retry what is unknown, verify, shut down gracefully.
        server.start()
        verify(server, ledger, "after the last restart")
        with ledger.lock:
            retries = ledger.unknown
            ledger.unknown = []
        appender(server, ledger, 0, random.Random(seed), threading.Event(), retries,
                 only_retries=True)
        with ledger.lock:
            check(not ledger.unknown, f"retries failed: {len(ledger.unknown)}")
        total = verify(server, ledger, "after retrying every request of unknown outcome")
        check(len(ledger.acked) > 0, "nothing was acknowledged")
        events_acked = sum(len(ids) for r in ledger.acked for _, ids in r["parts"])
        check(events_acked == total,
              f"{total} events in the log, {events_acked} acknowledged after the retries")
        rc = server.stop()
        check(rc == 0, f"graceful stop exit code {rc}")
        ok = True
        print(f"server_kill_test: ok: {kills} kills, {len(ledger.acked)} requests "
              f"({events_acked} events) acknowledged and verified, "
              f"{ledger.replays} retries answered as replays, statuses {ledger.statuses}, "
              f"{time.monotonic() - started:.1f} s", flush=True)
    except Failure as error:
        print(f"server_kill_test: FAIL (seed {seed}): {error}", flush=True)
        print(f"server log tail:\n{server.log_tail()}", flush=True)
    finally:
        server.kill()
        if ok and not os.environ.get("VL_KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
