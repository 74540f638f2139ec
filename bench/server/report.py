#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns bench/server/run.sh output (JSON lines) into bench/server/results.md: each server
figure beside its in-process peer from the same run, as a ratio. --check only validates."""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def pick(rows, **want):
    for row in rows:
        if all(row.get(k) == v for k, v in want.items()):
            return row
    return None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv
    rows = load(args[0])
    engine1 = pick(rows, system="vellum", scenario="append", batch=1)
    engine100 = pick(rows, system="vellum", scenario="append", batch=100)
    engine_read = pick(rows, system="vellum", scenario="read-stream-100-copy")
    http1 = [r for r in rows if r.get("scenario") == "http-append"]
    read = pick(rows, scenario="http-read")
    fans = [r for r in rows if r.get("scenario") == "ws-fanout"]
    fan = fans[0] if fans else None
    missing = [n for n, r in [("engine append 1", engine1), ("engine append 100", engine100),
                              ("engine read", engine_read), ("http read", read),
                              ("fan-out", fan)] if r is None]
    if len(http1) != 2:
        missing.append("http appends")
    if missing:
        sys.exit("server bench: missing " + ", ".join(missing))
    if check:
        print("server bench smoke: ok")
        return
    h1, h100 = http1
    lines = [
        "## Server (`bench/server/run.sh`)",
        "",
        "HTTP load from wrk (2 threads, 64 connections) on the same 2 cores as the server; the "
        "peer is the engine in-process with 64 writer threads (`vellum-bench append --writers "
        "64`), durability fsync for both, measured in the same run.",
        "",
        "| Scenario | Server | Engine in-process | Ratio | Goal |",
        "|---|---|---|---|---|",
        f"| append, 1 event/request | {h1['events_per_s']:,.0f} ev/s (p50 {h1['p50_ms']} ms, "
        f"p99 {h1['p99_ms']} ms) | {engine1['events_per_sec']:,.0f} ev/s | "
        f"{h1['events_per_s'] / engine1['events_per_sec']:.2f}x | >= 0.5x |",
        f"| append, 100 events/request | {h100['events_per_s']:,.0f} ev/s (p99 {h100['p99_ms']} "
        f"ms) | {engine100['events_per_sec']:,.0f} ev/s | "
        f"{h100['events_per_s'] / engine100['events_per_sec']:.2f}x | |",
        f"| read 100-event pages (engine: read_stream, copying) | {read['events_per_s']:,.0f} ev/s (p99 {read['p99_ms']} ms) | "
        f"{engine_read['events_per_sec']:,.0f} ev/s | "
        f"{read['events_per_s'] / engine_read['events_per_sec']:.2f}x | |",
        "",
        "WebSocket fan-out (`vellum-fanout-bench`, a separate process on "
        "the same 2 cores as the server, writer and subscribers in it): 1 writer appends over HTTP (fsync) at a fixed rate, "
        "every subscriber receives every event; latency is append start to delivery, so it "
        "includes the fsync. Goal: p99 <= 10 ms at 1,000 subscribers x 1,000 events/s.",
        "",
        "| Subscribers | Target appends/s | Achieved appends/s | Deliveries/s | Delivered | p50 ms "
        "| p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {f['subscribers']:,} | {f['rate']:,} | {f['append_rate']:,.0f} | "
          f"{f['delivered_per_s']:,.0f} | {f['delivered']:,} / {f['expected']:,} | "
          f"{f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['max_ms']:.2f} |" for f in fans],
        "",
    ]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
