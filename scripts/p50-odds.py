#!/usr/bin/env python3
"""How much of `drill calibrate`'s verdict on the p50 is the seeds'.

Usage:
  ./target/release/warroom drill calibrate --seeds 20 --json --samples s.csv > t.jsonl
  scripts/p50-odds.py t.jsonl [s.csv [LATER_FAULT]]

From the JSON table: for each `warroom` row, the chance that its p50 coverage
would land within 40-60% (per sample and by mailbox) on another set of seeds
if its true coverage were exactly 50%, given the row's seed-clustered standard
error; and the chance that every row would. Rows with the same figures (a
cluster's reindex and queue ETAs when the queue waits for the reindex) count
once, and a row's two p50s are taken as one (the smaller chance): the product
is an upper bound.

From the samples (optional): for the cluster and queue ETAs, the share of p50s
before the actual end, on its very minute, and after it. The simulated world
moves in one-minute ticks, so a job ends on a minute; a p50 that names that
minute counts as held.

With LATER_FAULT (the time a later fault struck, RFC 3339): the p50 coverage
of the ETAs served before it, split by whether their episode ended before it
or was extended by the fault's new work, which no forecast could foresee.
"""
import csv
import json
import math
import sys
from collections import Counter, defaultdict
from datetime import datetime

LOW, HIGH = 0.40, 0.60


def at(text):
    """A time of the samples file (RFC 3339, UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_band(se):
    """P(|N(0.5, se)| within the band): the chance a true 50% lands in it."""
    if not se:
        return 1.0
    z = (HIGH - 0.5) / se
    return math.erf(z / math.sqrt(2))


def odds(path):
    rows = [r for r in map(json.loads, open(path)) if r["forecaster"] == "warroom" and r["n"] > 0]
    seen, every = set(), 1.0
    print(f"{'scenario':26} {'phase':18} {'target':8} {'p50':>5} {'p50/m':>5} {'±':>5} {'P(in band|50%)':>15}")
    for r in rows:
        key = (r["scenario"], r["phase"], r["p50_coverage"], r["p50_coverage_by_mailbox"])
        if key in seen:
            continue
        seen.add(key)
        ses = [r.get("p50_coverage_se"), r.get("p50_coverage_by_mailbox_se")]
        p = min(in_band(se) for se in ses)
        every *= p
        se = max((s or 0.0) for s in ses)
        print(f"{r['scenario'][:26]:26} {r['phase']:18} {r['target']:8} "
              f"{r['p50_coverage'] * 100:4.0f}% {r['p50_coverage_by_mailbox'] * 100:4.0f}% "
              f"{se * 100:5.1f} {p:15.2f}")
    print(f"every row within {LOW:.0%}-{HIGH:.0%} if each were truly 50%: at most {every:.2f}")


def ties(path):
    count = defaultdict(Counter)
    for r in csv.DictReader(open(path)):
        if r["target"] == "tenant" or not r["p50"] or not r["episode_end"]:
            continue
        minutes = (at(r["p50"]) - at(r["episode_end"])).total_seconds() / 60
        c = count[(r["scenario"], r["phase"], r["target"])]
        c["n"] += 1
        c["before" if minutes < 0 else "on" if minutes == 0 else "after"] += 1
        c["minute before"] += minutes == -1
    print(f"\n{'scenario':26} {'phase':18} {'target':8} {'n':>6} {'before':>7} {'(1 min)':>7} {'on':>5} {'after':>6}")
    for (s, phase, target), c in count.items():
        share = lambda k: f"{100 * c[k] / c['n']:5.0f}%"
        print(f"{s[:26]:26} {phase:18} {target:8} {c['n']:6} {share('before'):>7} "
              f"{share('minute before'):>7} {share('on'):>5} {share('after'):>6}")


def extended(path, fault):
    fault = at(fault)
    # (held, n, held weighted, weight) per row, for episodes ended before
    # the fault and for those it extended.
    split = defaultdict(lambda: {"ended": [0] * 4, "extended": [0] * 4, "seeds": set()})
    for r in csv.DictReader(open(path)):
        if not r["p50"] or not r["episode_end"] or at(r["at"]) >= fault:
            continue
        end = at(r["episode_end"])
        row = split[(r["scenario"], r["phase"], r["target"])]
        part = "extended" if end > fault else "ended"
        if part == "extended":
            row["seeds"].add(r["seed"])
        held, w = end <= at(r["p50"]), int(r["affected"] or 0)
        for i, v in enumerate((held, 1, held * w, w)):
            row[part][i] += v
    pct = lambda c: f"{100 * c[0] / c[1]:3.0f}/{100 * c[2] / c[3]:3.0f}" if c[1] and c[3] else "   -   "
    print(f"\nETAs served before the later fault at {fault:%Y-%m-%d %H:%M}, p50 coverage (per sample/by mailbox):")
    print(f"{'scenario':26} {'phase':18} {'target':8} {'ended before it':>16} {'extended by it':>15} {'runs':>5}")
    for (s, phase, target), row in split.items():
        print(f"{s[:26]:26} {phase:18} {target:8} {pct(row['ended']):>16} {pct(row['extended']):>15} "
              f"{len(row['seeds']):5}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(__doc__)
    odds(sys.argv[1])
    if len(sys.argv) >= 3:
        ties(sys.argv[2])
    if len(sys.argv) == 4:
        extended(sys.argv[2], sys.argv[3])
