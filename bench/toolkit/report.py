#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns bench/toolkit/run.sh output (JSON lines) into bench/toolkit/results.md: each projection
figure beside its peer from the same run. --check only validates."""
import datetime
import json
import os
import platform
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def pick(rows, scenario):
    return next((row for row in rows if row.get("scenario") == scenario), None)


def verdict(ok):
    return "met" if ok else "**missed**"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = load(args[0])
    rebuild = pick(rows, "projection-rebuild")
    lag = pick(rows, "projection-lag")
    if rebuild is None or lag is None:
        sys.exit("toolkit bench: missing " + ("rebuild" if rebuild is None else "lag"))
    if "--check" in sys.argv:
        print("toolkit bench smoke: ok")
        return
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    r, g = rebuild, lag
    lines = [
        "## Projections (`bench/toolkit/run.sh`)",
        "",
        f"Run on {now}, {platform.machine()}, 2 shared cores; each figure with its peer "
        "from the same run.",
        "",
        f"Rebuild of a trivial in-process projection (callback sink counting events, checkpoint "
        f"in the ToolkitDb every {r['batch_events']:,} events) over {r['events']:,} events of "
        f"{r['event_bytes']} bytes; the peer is a raw `Store::visit_all` scan of the same events. "
        f"Both run on one thread, so events/s is per core; best of {r['repeats']} alternating "
        "runs each.",
        "",
        "| Scenario | Projection | Peer: raw scan | Ratio | Goal |",
        "|---|---|---|---|---|",
        f"| rebuild, events/s | {r['projection_events_per_sec']:,.0f} | "
        f"{r['scan_events_per_sec']:,.0f} | {r['ratio']:.2f}x | >= 1,000,000/s per core: "
        f"{verdict(r['projection_events_per_sec'] >= 1e6)} |",
        "",
        f"Lag under load: {g['target_rate']:,} events/s appended in batches of {g['batch']} "
        f"(durability fsync) for {g['seconds']:.1f} s ({g['events']:,} events, achieved "
        f"{g['append_rate']:,.0f}/s) while a kv projection runs. Lag of an event = the moment "
        "the handler sees it - its recorded time (taken at commit, before the fsync, so the "
        "fsync is included). The peer is a raw live `Subscription` consuming the same events in "
        "the same process.",
        "",
        "| Consumer | Events | p50 ms | p99 ms | max ms | Goal |",
        "|---|---|---|---|---|---|",
        f"| kv projection | {g['projection_events']:,} | {g['projection_p50_ms']:.2f} | "
        f"{g['projection_p99_ms']:.2f} | {g['projection_max_ms']:.2f} | p99 < 200 ms: "
        f"{verdict(g['projection_p99_ms'] < 200)} |",
        f"| peer: raw subscription | {g['subscription_events']:,} | "
        f"{g['subscription_p50_ms']:.2f} | {g['subscription_p99_ms']:.2f} | "
        f"{g['subscription_max_ms']:.2f} | |",
        "",
    ]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
