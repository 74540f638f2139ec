#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns bench/rooms/run.sh output (JSON lines of vellum-rooms-bench) into
bench/rooms/results.md: each figure against its goal from issue #5 (met / **missed**).
--check only validates a smoke run: every scenario present, complete and without errors."""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def pick(rows, label):
    for row in rows:
        if row.get("label") == label:
            return row
    return None


def met(ok):
    return "met" if ok else "**missed**"


def cpu(seconds):
    return "—" if seconds < 0 else f"{seconds:.1f}"


def errors_text(row):
    errors = row.get("errors") or {}
    return ", ".join(f"{k} {v:,}" for k, v in sorted(errors.items())) or "none"


def check(rows):
    problems = []
    for label in ("a", "b", "c"):
        row = pick(rows, label)
        if row is None:
            problems.append(f"scenario {label}: missing (see the output above)")
        elif not row["ok"]:
            problems.append(f"scenario {label}: not ok: {json.dumps(row)}")
        elif row["scenario"] == "rooms-load" and row["delivered"] == 0:
            problems.append(f"scenario {label}: delivered nothing")
    if problems:
        sys.exit("rooms bench: " + "; ".join(problems))
    print("rooms bench smoke: ok")


def load_goal_rows(a, b):
    rows = []
    if a:
        rate_ok = a["acked_per_s"] >= 0.95 * a["target_events_per_s"]
        rows.append(("(a) 100 rooms x 10 participants x 10 events/s: p99 end to end, fsync",
                     "<= 25 ms", f"{a['p99_ms']:.1f} ms",
                     a["p99_ms"] <= 25 and a["complete"] and rate_ok))
    if b:
        rows.append(("(b) 1 room, 50 participants: events/s into the room", ">= 1,000",
                     f"{b['acked_per_s']:,.0f}", b["acked_per_s"] >= 1000 and b["complete"]))
        rows.append(("(b) ... at p99", "<= 50 ms", f"{b['p99_ms']:.1f} ms",
                     b["p99_ms"] <= 50 and b["complete"]))
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = load(args[0])
    if "--check" in sys.argv:
        check(rows)
        return
    a, b, c = pick(rows, "a"), pick(rows, "b"), pick(rows, "c")
    goals = load_goal_rows(a, b)
    if c:
        goals.append(("(c) idle connections held", ">= 10,000",
                      f"{c['held']:,} of {c['target_connections']:,}",
                      c["held"] >= 10000 and c["ok"]))
    loads = [r for r in rows if r["scenario"] == "rooms-load"]
    lines = [
        "## Rooms (`bench/rooms/run.sh`)",
        "",
        "`vellum-rooms-bench` (Boost.Beast, one WebSocket per participant, a separate process "
        "on the same 2 cores as the server) against `vellum serve` with durability fsync. Each "
        "participant submits one event at a fixed rate carrying its steady-clock send time; "
        "latency is that time to each receiver's receipt of the broadcast `events` frame (the "
        "sender included), over every (event, receiver) pair, so it includes the durable append. "
        "Complete = every participant received every committed event of its room exactly once, "
        "in seq order. Goals from issue #5.",
        "",
        "| Goal | Target | Measured | |",
        "|---|---|---|---|",
        *[f"| {name} | {target} | {measured} | {met(ok)} |" for name, target, measured, ok in goals],
        "",
        "| Scenario | Rooms x participants | Target events/s | Acked events/s | Deliveries/s "
        "| Complete | p50 ms | p99 ms | p99.9 ms | max ms | CPU s server / client | Errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['label']} | {r['rooms']} x {r['participants']} | "
          f"{r['target_events_per_s']:,.0f} | {r['acked_per_s']:,.0f} | "
          f"{r['delivered_per_s']:,.0f} | "
          f"{'yes' if r['complete'] else '**no**'} ({r['delivered']:,} / "
          f"{r['expected_deliveries']:,}) | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
          f"{r['p999_ms']:.2f} | {r['max_ms']:.2f} | "
          f"{cpu(r['server_cpu_s'])} / {cpu(r['client_cpu_s'])} | {errors_text(r)} |"
          for r in loads],
        "",
    ]
    if c:
        def kib(value):
            return "—" if value is None else f"{value:,.1f} KiB"
        lines += [
            f"Idle (c): {c['connections']:,} participants over {c['rooms']} rooms, each joined "
            f"and live, held {c['hold_seconds']:.0f} s, then each answered a ping: "
            f"{c['held']:,} held, {c['closed_unexpectedly']} closed unexpectedly. Server "
            "memory (VmRSS deltas; includes the log and index caches the joins' `$joined` "
            "appends touch):",
            "",
            "| Per | Server memory |",
            "|---|---|",
            f"| empty room (joined once, then left: loaded, 0 participants) "
            f"| {kib(c['kib_per_empty_room'])} |",
            f"| room with its first idle participant | {kib(c['kib_per_room_with_one'])} |",
            f"| further idle connection in a room | {kib(c['kib_per_further_connection'])} |",
            f"| idle connection, rooms included | {kib(c['kib_per_connection_all_in'])} |",
            "",
            f"VmRSS KiB at start / after empty rooms / after one per room / all connected / "
            f"after holding: {' / '.join(f'{v:,}' for v in c['rss_kib'])}. "
            f"Errors: {errors_text(c)}.",
            "",
        ]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
