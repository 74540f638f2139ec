#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns benchmark JSON lines (vellum-bench and bench/peers) into
docs/benchmarks.md: tables of figures and of ratios against the peers and
the disk measured in the same run, checked against the goals of issue #2.

  report.py --check FILE                      validate a smoke run's output
  report.py --engine E --peers P --write OUT  write the report
"""
import argparse
import datetime
import json
import os
import platform
import sys

REQUIRED = ["scenario", "events", "seconds", "events_per_sec", "mb_per_sec",
            "p50_us", "p99_us", "p999_us"]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def check(path):
    rows = load(path)
    if not rows:
        sys.exit("no benchmark output")
    for row in rows:
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            sys.exit(f"{row.get('scenario')}: missing {missing}")
        if row["events"] <= 0 or row["events_per_sec"] <= 0:
            sys.exit(f"{row['scenario']}: measured nothing")
    print(f"bench smoke: {len(rows)} scenarios ok")


def find(rows, system=None, scenario=None, **match):
    for row in rows:
        if system and row.get("system") != system:
            continue
        if scenario and row.get("scenario") != scenario:
            continue
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def fmt(value, unit=""):
    if value is None:
        return "—"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


def engine_table(engine):
    lines = ["| scenario | writers | batch | dist | events/s | MB/s | p50 µs | p99 µs | p99.9 µs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in engine:
        dist = "zipf" if r.get("zipf") else "uniform"
        lines.append(f"| {r['scenario']} | {r.get('writers', '')} | {r.get('batch', '')} | {dist} "
                     f"| {fmt(r['events_per_sec'])} | {fmt(r['mb_per_sec'])} | {fmt(r['p50_us'])} "
                     f"| {fmt(r['p99_us'])} | {fmt(r['p999_us'])} |")
    return lines


def peers_table(peers):
    lines = ["| system | scenario | writers | batch | dist / size | events/s | p50 µs | p99 µs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in peers:
        detail = f"{r['stream_events']} events" if "stream_events" in r else \
            ("zipf" if r.get("zipf") else "uniform")
        lines.append(f"| {r.get('system')} | {r['scenario']} | {r.get('writers', '')} "
                     f"| {r.get('batch', '')} | {detail} | {fmt(r['events_per_sec'])} "
                     f"| {fmt(r['p50_us'])} | {fmt(r['p99_us'])} |")
    return lines


def goal_rows(engine, peers):
    def eng(writers, batch):
        return find(engine, "vellum", "append", writers=writers, batch=batch, zipf=False)

    def peer(system, writers, batch):
        return find(peers, system, "append", writers=writers, batch=batch, zipf=False)

    def rate(row):
        return row["events_per_sec"] if row else None

    fio = find(peers, "fio", "fdatasync")
    rows = []
    v32 = rate(eng(32, 1))
    rows.append(("single-event appends, 32 writers vs PostgreSQL", "≥ 10×",
                 ratio(v32, rate(peer("postgres", 32, 1))), 10))
    rows.append(("single-event appends, 32 writers vs Redis", "≥ 6×",
                 ratio(v32, rate(peer("redis", 32, 1))), 6))
    best100 = max((rate(eng(w, 100)) or 0) for w in (8, 32, 256))
    best_peer100 = max((rate(peer(s, w, 100)) or 0) for s in ("postgres", "sqlite", "redis")
                       for w in (1, 8, 32))
    rows.append(("100-event appends, ≥ 8 writers: events/s", "≥ 1,000,000",
                 best100, 1_000_000))
    rows.append(("100-event appends, ≥ 8 writers vs best peer", "≥ 6×",
                 ratio(best100, best_peer100), 6))
    v1 = rate(eng(1, 1))
    rows.append(("1 writer, batch 1 vs fio fdatasync rate", "≥ 0.67×",
                 ratio(v1, rate(fio)), 0.67))
    rows.append(("1 writer, batch 1 vs SQLite FULL", "≥ 1×",
                 ratio(v1, rate(peer("sqlite", 1, 1))), 1))
    rs = find(engine, "vellum", "read-stream-10000")
    rows.append(("read a 10,000-event stream vs SQLite", "≥ 4×",
                 ratio(rate(rs), rate(find(peers, "sqlite", "read-stream", stream_events=10000))), 4))
    rows.append(("read a 10,000-event stream vs PostgreSQL", "≥ 20×",
                 ratio(rate(rs), rate(find(peers, "postgres", "read-stream",
                                           stream_events=10000))), 20))
    scan = find(engine, "vellum", "read-all")
    rows.append(("full-log scan: events/s", "≥ 5,000,000", rate(scan), 5_000_000))
    e32 = eng(32, 1)
    rows.append(("p99 append latency, 32 writers vs fio p99 fdatasync", "≤ 3×",
                 ratio(e32["p99_us"] if e32 else None, fio["p99_us"] if fio else None), -3))
    rec = find(engine, "vellum", "recover-with-index")
    rows.append(("open after N events with index checkpoint: seconds", "< 1 s",
                 rec["seconds"] if rec else None, -1))
    return rows


def goals_table(engine, peers):
    lines = ["| goal | target | measured | met |", "|---|---|---|---|"]
    for name, target, value, threshold in goal_rows(engine, peers):
        if value is None:
            met = "not measured"
        elif threshold < 0:
            met = "yes" if value <= -threshold else "**no**"
        else:
            met = "yes" if value >= threshold else "**no**"
        unit = " s" if "seconds" in name else "×"
        shown = fmt(value, unit) if (value is not None and value < 100) else fmt(value)
        lines.append(f"| {name} | {target} | {shown} | {met} |")
    return lines


def write(engine_path, peers_path, out_path):
    engine = load(engine_path)
    try:
        peers = load(peers_path)
    except FileNotFoundError:
        peers = []
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Benchmarks",
        "",
        f"Generated by `./vellum.sh bench` (bench/run.sh + bench/report.py) on {now}, "
        f"{platform.machine()}, 2 cores, one run: engine and peers measured back to back on the "
        "same machine and disk. Absolute numbers on this shared machine are noisy; read the "
        "ratios. 200-byte events, durability fsync unless noted. Reproduce: `./vellum.sh bench`.",
        "",
        "## Goals (issue #2), as ratios from this run",
        "",
        *goals_table(engine, peers),
        "",
        "## Vellum engine (in-process, `vellum-bench`)",
        "",
        *engine_table(engine),
        "",
        "## Peers (`bench/peers/run.sh`)",
        "",
        *(peers_table(peers) if peers else ["(peers not run)"]),
        "",
        "Latency is per append call (one transaction for the peers); read-stream latency is per "
        "whole-stream read; read-all per page. See bench/peers/README.md for the peers' settings.",
        "",
    ]
    server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server", "results.md")
    if os.path.exists(server):
        text += [open(server).read()]
    rooms = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rooms", "results.md")
    if os.path.exists(rooms):
        text += [open(rooms).read()]
    for name in ("results.md", "aggregate_results.md"):
        toolkit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toolkit", name)
        if os.path.exists(toolkit):
            text += [open(toolkit).read()]
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
    if os.path.exists(notes):
        text += [open(notes).read()]
    with open(out_path, "w") as f:
        f.write("\n".join(text))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check")
    parser.add_argument("--engine")
    parser.add_argument("--peers")
    parser.add_argument("--write")
    args = parser.parse_args()
    if args.check:
        check(args.check)
    elif args.engine and args.write:
        write(args.engine, args.peers or "", args.write)
    else:
        parser.error("--check FILE or --engine E --peers P --write OUT")


if __name__ == "__main__":
    main()
