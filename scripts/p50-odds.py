#!/usr/bin/env python3
"""How much of `drill calibrate`'s verdict on the p50 is the seeds'.

Usage:
  ./target/release/warroom drill calibrate --seeds 20 --json --samples s.csv > t.jsonl
  scripts/p50-odds.py t.jsonl [s.csv [LATER_FAULT]] [--seeds K] [--blocks K]

From the JSON table: for each `warroom` row, the chance that its p50 coverage
would land within 40-60% (per sample and by mailbox) on another set of seeds
if its true coverage were exactly 50%, given the row's seed-clustered standard
error, and the product of those chances. Rows with the same figures (a
cluster's reindex and queue ETAs when the queue waits for the reindex) count
once, and a row's two p50s are taken as one (the smaller chance). The product
takes the rows as independent; they share their seeds, so it is only a guide.

From the samples (optional):
- a seed bootstrap, which keeps the rows' correlation: sets of K seeds (the
  table's own number unless --seeds says) drawn with replacement from the
  table's, and for each the p50 coverage of every row pooled over them, as the
  harness pools it. It prints the share of sets on which every row lands in
  40-60%, per sample and by mailbox, as the forecaster is, and if every row's
  coverage over all the table's seeds were moved to exactly 50% (each set's
  figure moved by the same amount): the chance that a forecaster whose every
  median is right passes the goal on K seeds.
- for the cluster and queue ETAs, the share of p50s before the actual end, on
  its very minute, and after it. The simulated world moves in one-minute
  ticks, so a job ends on a minute; a p50 that names that minute counts as
  held.

With --blocks K (and the samples): every row's p50 coverage on disjoint sets
of K seeds in the order the drill ran them (2008-2027, 2028-2047, ... for
K = 20), and how many rows are in the 40-60% band on each set: the same
forecaster judged on other seeds.

With LATER_FAULT (the time a later fault struck, RFC 3339): the p50 coverage
of the ETAs served before it, split by whether their episode ended before it
or was extended by the fault's new work, which no forecast could foresee.
"""
import argparse
import csv
import json
import math
import random
import sys
from collections import Counter, defaultdict
from datetime import datetime

LOW, HIGH = 0.40, 0.60


def at(text):
    """A time of the samples file (RFC 3339, UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def scored(path):
    """The samples with a p50 and an episode end, each as a dict by column.
    Split by hand: no field holds a comma, and csv.DictReader is several
    times slower on a 60-seed file (2 GB)."""
    with open(path) as f:
        names = next(csv.reader(f))
        for line in f:
            r = dict(zip(names, line.rstrip("\n").split(",")))
            if r["p50"] and r["episode_end"]:
                yield r


def tally(counts, held, weight):
    """Adds a sample to (held, n, held by mailbox, mailboxes)."""
    for i, v in enumerate((held, 1, held * weight, weight)):
        counts[i] += v


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
    print(f"every row within {LOW:.0%}-{HIGH:.0%} if each were truly 50%, rows taken as independent: {every:.2f}")


def bootstrap(path, k):
    """Every row in the band on `k` seeds drawn from the samples' (module doc)."""
    # (held, n, held by mailbox, mailboxes) per row and seed.
    per_seed = defaultdict(lambda: defaultdict(lambda: [0] * 4))
    for r in scored(path):
        row = per_seed[(r["scenario"], r["phase"], r["target"])]
        tally(row[r["seed"]], at(r["p50"]) >= at(r["episode_end"]), int(r["affected"] or 0))
    seeds = sorted({s for row in per_seed.values() for s in row})
    k = k or len(seeds)

    def coverage(row, pick):
        """(per sample, by mailbox) over the seeds picked; None without a
        sample, a row the harness does not judge (its `n == 0`)."""
        c = [sum(row[s][i] for s in pick if s in row) for i in range(4)]
        return (c[0] / c[1], c[2] / c[3]) if c[1] and c[3] else None

    whole = {key: coverage(row, seeds) for key, row in per_seed.items()}
    rng, draws = random.Random(2008), 2000
    as_is = centred = 0
    # Per row: sets on which it is in the band as it is, and centred.
    row_in = defaultdict(lambda: [0, 0])
    inside = lambda xs: all(LOW <= x <= HIGH for x in xs)
    for _ in range(draws):
        pick = [rng.choice(seeds) for _ in range(k)]
        a = c = True
        for key, row in per_seed.items():
            cov = coverage(row, pick)
            if cov is None:
                ra = rc = True
            else:
                ra, rc = inside(cov), inside([x - w + 0.5 for x, w in zip(cov, whole[key])])
            row_in[key][0] += ra
            row_in[key][1] += rc
            a &= ra
            c &= rc
        as_is += a
        centred += c
    print(f"\nseed bootstrap, {draws} sets of {k} seeds from {len(seeds)}, {len(per_seed)} rows: "
          f"every row within {LOW:.0%}-{HIGH:.0%} on {as_is / draws:.3f} of them as it is, "
          f"on {centred / draws:.3f} if every row were centred on 50%")
    print(f"{'scenario':26} {'phase':18} {'target':8} {'p50':>5} {'p50/m':>5} {'as is':>6} {'centred':>8}")
    for key in sorted(per_seed, key=lambda key: row_in[key][0]):
        (a, c), cov = row_in[key], whole[key]
        shown = f"{cov[0] * 100:4.0f}% {cov[1] * 100:4.0f}%" if cov else f"{'-':>5} {'-':>5}"
        print(f"{key[0][:26]:26} {key[1]:18} {key[2]:8} {shown} {a / draws:6.2f} {c / draws:8.2f}")


def ties(path):
    count = defaultdict(Counter)
    for r in scored(path):
        if r["target"] == "tenant":
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
    for r in scored(path):
        if at(r["at"]) >= fault:
            continue
        end = at(r["episode_end"])
        row = split[(r["scenario"], r["phase"], r["target"])]
        part = "extended" if end > fault else "ended"
        if part == "extended":
            row["seeds"].add(r["seed"])
        tally(row[part], end <= at(r["p50"]), int(r["affected"] or 0))
    pct = lambda c: f"{100 * c[0] / c[1]:3.0f}/{100 * c[2] / c[3]:3.0f}" if c[1] and c[3] else "   -   "
    print(f"\nETAs served before the later fault at {fault:%Y-%m-%d %H:%M}, p50 coverage (per sample/by mailbox):")
    print(f"{'scenario':26} {'phase':18} {'target':8} {'ended before it':>16} {'extended by it':>15} {'runs':>5}")
    for (s, phase, target), row in split.items():
        print(f"{s[:26]:26} {phase:18} {target:8} {pct(row['ended']):>16} {pct(row['extended']):>15} "
              f"{len(row['seeds']):5}")


def blocks(path, k):
    """Each row's p50 coverage on disjoint sets of `k` seeds, in the order
    the drill ran them (2008-2027, 2028-2047, ...), and how many rows are in
    the band on each: the same forecaster judged on other seeds."""
    per_seed = defaultdict(lambda: defaultdict(lambda: [0] * 4))
    for r in scored(path):
        row = per_seed[(r["scenario"], r["phase"], r["target"])]
        tally(row[int(r["seed"])], at(r["p50"]) >= at(r["episode_end"]), int(r["affected"] or 0))
    seeds = sorted({s for row in per_seed.values() for s in row})
    sets = [seeds[i:i + k] for i in range(0, len(seeds) - k + 1, k)]
    print(f"\np50 coverage (per sample/by mailbox) on {len(sets)} disjoint sets of {k} seeds:")
    print(f"{'scenario':26} {'phase':18} {'target':8} "
          + " ".join(f"{f'{s[0]}-{s[-1]}':>10}" for s in sets))
    in_band = [0] * len(sets)
    for key, row in per_seed.items():
        cells = []
        for i, pick in enumerate(sets):
            c = [sum(row[s][j] for s in pick if s in row) for j in range(4)]
            if not (c[1] and c[3]):
                in_band[i] += 1
                cells.append(f"{'-':>10}")
                continue
            p, m = c[0] / c[1], c[2] / c[3]
            ok = LOW <= p <= HIGH and LOW <= m <= HIGH
            in_band[i] += ok
            cells.append(f"{p * 100:4.0f}/{m * 100:3.0f}{' ' if ok else '*'}")
        print(f"{key[0][:26]:26} {key[1]:18} {key[2]:8} " + " ".join(cells))
    print(f"rows in the band (*: out): " + ", ".join(
        f"{n} of {len(per_seed)} on {s[0]}-{s[-1]}" for n, s in zip(in_band, sets)))


if __name__ == "__main__":
    args = argparse.ArgumentParser(usage=__doc__.replace("%", "%%"))
    args.add_argument("table")
    args.add_argument("samples", nargs="?")
    args.add_argument("later_fault", nargs="?")
    args.add_argument("--seeds", type=int, default=0)
    args.add_argument("--blocks", type=int, default=0)
    a = args.parse_args()
    odds(a.table)
    if a.samples:
        bootstrap(a.samples, a.seeds)
        ties(a.samples)
        if a.blocks:
            blocks(a.samples, a.blocks)
    if a.later_fault:
        extended(a.samples, a.later_fault)
