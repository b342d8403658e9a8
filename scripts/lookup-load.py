#!/usr/bin/env python3
"""Load generator for the gateway's Lookup RPC, used by scripts/bench-lookup.

    lookup-load.py prepare --addr 127.0.0.1:PORT --dir DIR [--sample 1000]
        Reads every tenant with ListTenants, computes every mailbox address
        with the simulator's naming rules (local parts parsed from
        src/sources/simulator/names.rs), checks a sample of them with exact
        Lookups, and writes DIR/addresses.tsv (address, tenant id) plus query
        sets DIR/exact.tsv, DIR/prefix.tsv and DIR/fuzzy.tsv (query, what it
        should find) drawn from real addresses, domains and tenant names.

    lookup-load.py run --addr ... --dir DIR --kind exact|prefix|fuzzy
                       --clients N --seconds S
        N client processes (one channel each, one call at a time, like
        pgbench clients) call Lookup in a loop for S seconds; prints one JSON
        line: p50/p99/max latency, queries per second, and how often the
        wanted mailbox/domain/tenant came first and within the results.

    lookup-load.py compare --dir DIR [--n 200]
        After `run --kind prefix`, which saves what Lookup answered: asks
        PostgreSQL (psql, PG* environment) the same prefixes with
        ORDER BY address USING ~<~ LIMIT 20 and counts identical answers.

    lookup-load.py pglog --kind K --clients N --tps X FILE...
        Percentiles from pgbench per-transaction logs (-l), as a JSON line.

    lookup-load.py table RESULTS.jsonl
        One side-by-side table of every JSON line.

Only the Python standard library, grpcio and protobuf are needed: the
contract is read through server reflection, nothing is generated.
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES_RS = os.path.join(ROOT, "src", "sources", "simulator", "names.rs")
LIMIT = 20
# Matches the gateway ranks before it cuts to LIMIT (src/lookup/engine/mod.rs).
CANDIDATES = 1000


# ------------------------------------------------------------------ gRPC

def connect(addr):
    import grpc
    from google.protobuf import descriptor_pool
    from google.protobuf.message_factory import GetMessageClass
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    channel = grpc.insecure_channel(addr)
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName("warroom.v1.WarRoom")
    kinds = pool.FindEnumTypeByName("warroom.v1.MatchKind")

    def method(name):
        m = svc.methods_by_name[name]
        req, resp = GetMessageClass(m.input_type), GetMessageClass(m.output_type)
        call = channel.unary_unary(
            f"/{svc.full_name}/{m.name}",
            request_serializer=req.SerializeToString,
            response_deserializer=resp.FromString,
        )
        return req, call

    names = {v.number: v.name for v in kinds.values}
    return channel, method, names


# ------------------------------------------------------------------ naming rules

def name_lists():
    src = open(NAMES_RS).read()

    def array(name):
        m = re.search(r"pub(?:\(\w+\))? const %s: \[&str; \d+\] = \[(.*?)\];" % name, src, re.S)
        if not m:
            sys.exit(f"cannot find {name} in {NAMES_RS}")
        return re.findall(r'"([^"]*)"', m.group(1))

    return array("FIRST"), array("LAST")


def local_part(k, first, last):
    f, l, n = first[k % 64], last[(k // 64) % 64], k // 4096
    return f"{f}.{l}" if n == 0 else f"{f}.{l}{n + 1}"


def tenant_domains(t):
    base, tld = t.primary_domain.split(".", 1)
    return [t.primary_domain] + [f"{base}{d + 1}.{tld}" for d in range(1, t.domain_count)]


def misspell(s, r):
    """One typo in the letters of s: swap two neighbours, drop one, or
    replace one (never a dot, dash or @)."""
    idx = [i for i in range(len(s) - 1)
           if s[i].isalpha() and s[i + 1].isalpha() and s[i] != s[i + 1]]
    if not idx:
        return s
    i = r.choice(idx)
    op = r.randrange(3)
    if op == 0:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if op == 1:
        return s[:i] + s[i + 1:]
    return s[:i] + ("q" if s[i] == "x" else "x") + s[i + 1:]


def prepare(a):
    channel, method, kinds = connect(a.addr)
    req, list_tenants = method("ListTenants")
    tenants, token = [], ""
    t0 = time.time()
    while True:
        page = list_tenants(req(page_size=1000, page_token=token), timeout=120)
        tenants += list(page.tenants)
        token = page.next_page_token
        if not token:
            break
    print(f"prepare: {len(tenants)} tenants listed in {time.time() - t0:.1f} s", file=sys.stderr)
    first, last = name_lists()
    os.makedirs(a.dir, exist_ok=True)
    t0 = time.time()
    n = 0
    with open(os.path.join(a.dir, "addresses.tsv"), "w") as f:
        for t in tenants:
            doms = tenant_domains(t)
            nd = len(doms)
            f.write("".join(
                f"{local_part(j // nd, first, last)}@{doms[j % nd]}\t{t.id}\n"
                for j in range(t.mailboxes)))
            n += t.mailboxes
    print(f"prepare: {n} addresses written in {time.time() - t0:.1f} s", file=sys.stderr)

    r = random.Random(2008)
    exact, prefix, fuzzy = [], [], []
    for i in range(a.sample):
        t = r.choice(tenants)
        doms = tenant_domains(t)
        j = r.randrange(t.mailboxes)
        local, dom = local_part(j // len(doms), first, last), doms[j % len(doms)]
        address = f"{local}@{dom}"
        exact.append((address, "MAILBOX", address))
        # Address prefixes (what PostgreSQL answers with LIKE 'p%' too):
        # the local part and half the domain, or a cut inside the local part.
        if i % 2 == 0:
            prefix.append((f"{local}@{dom[:max(1, len(dom) // 2)]}", "MAILBOX", address))
        else:
            prefix.append((address[:3 + r.randrange(max(1, len(local) - 2))], "MAILBOX", address))
        # Misspellings of the local part, the domain, both; of a domain
        # alone; of a tenant name.
        v = i % 5
        if v == 0:
            fuzzy.append((f"{misspell(local, r)}@{dom}", "MAILBOX", address))
        elif v == 1:
            fuzzy.append((f"{local}@{misspell(dom, r)}", "MAILBOX", address))
        elif v == 2:
            fuzzy.append((f"{misspell(local, r)}@{misspell(dom, r)}", "MAILBOX", address))
        elif v == 3:
            fuzzy.append((misspell(dom, r), "DOMAIN", dom))
        else:
            fuzzy.append((misspell(t.name.lower(), r), "TENANT", t.id))
    for name, rows in (("exact", exact), ("prefix", prefix), ("fuzzy", fuzzy)):
        with open(os.path.join(a.dir, f"{name}.tsv"), "w") as f:
            for row in rows:
                f.write("\t".join(row) + "\n")
    # The same queries as PostgreSQL tables: (id, address) and, for
    # prefixes, the byte range [lo, hi) that LIKE 'lo%' scans.
    with open(os.path.join(a.dir, "pg_exact.tsv"), "w") as f:
        for i, (q, _, _) in enumerate(exact, 1):
            f.write(f"{i}\t{q}\n")
    with open(os.path.join(a.dir, "pg_prefix.tsv"), "w") as f:
        for i, (q, _, _) in enumerate(prefix, 1):
            f.write(f"{i}\t{q}\t{q[:-1] + chr(ord(q[-1]) + 1)}\n")

    # The naming rules must still be the gateway's: exact lookups of a
    # sample of computed addresses must find them.
    req, lookup = method("Lookup")
    bad = 0
    for q, _, want in exact[:200]:
        m = lookup(req(query=q, limit=1), timeout=30).matches
        if not m or m[0].mailbox.address != want:
            bad += 1
    if bad:
        sys.exit(f"prepare: {bad} of 200 computed addresses not found by exact Lookup: "
                 f"the naming rules in this script no longer match the simulator")
    print("prepare: 200 computed addresses checked with exact Lookups", file=sys.stderr)
    channel.close()


# ------------------------------------------------------------------ load

def read_queries(d, kind):
    with open(os.path.join(d, f"{kind}.tsv")) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


def wanted(match, kinds, want_kind, want):
    k = kinds.get(match.kind, "")
    if want_kind == "MAILBOX":
        return k.endswith("MAILBOX") and match.mailbox.address == want
    if want_kind == "DOMAIN":
        return k.endswith("DOMAIN") and match.domain == want
    return k.endswith("TENANT") and match.tenant.id == want


def worker(addr, queries, offset, ready, seconds, out):
    _, method, _ = connect(addr)
    req, lookup = method("Lookup")
    reqs = [req(query=q[0], limit=LIMIT) for q in queries]
    lookup(reqs[0], timeout=30)  # connected, reflected, warm
    lat = []
    i = offset
    ready.wait()  # every client starts together
    end = time.perf_counter() + seconds
    pc = time.perf_counter
    while True:
        t = pc()
        if t >= end:
            break
        lookup(reqs[i % len(reqs)], timeout=30)
        lat.append(pc() - t)
        i += 1
    out.put(lat)


def run(a):
    queries = read_queries(a.dir, a.kind)
    # Recall, once, untimed.
    channel, method, kinds = connect(a.addr)
    req, lookup = method("Lookup")
    first = within = results = 0
    answers = []
    for q, want_kind, want in queries:
        m = lookup(req(query=q, limit=LIMIT), timeout=30).matches
        answers.append({"q": q, "total": len(m), "mailboxes": [
            x.mailbox.address for x in m if kinds.get(x.kind, "").endswith("MAILBOX")]})
        results += len(m)
        first += bool(m) and wanted(m[0], kinds, want_kind, want)
        within += any(wanted(x, kinds, want_kind, want) for x in m)
    channel.close()
    with open(os.path.join(a.dir, f"{a.kind}.answers.jsonl"), "w") as f:
        for x in answers:
            f.write(json.dumps(x) + "\n")

    # Fresh processes (grpcio does not like fork after a channel existed).
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    ready = ctx.Barrier(a.clients)
    procs = [ctx.Process(target=worker,
                         args=(a.addr, queries, c * len(queries) // a.clients, ready, a.seconds, out))
             for c in range(a.clients)]
    for p in procs:
        p.start()
    lat = []
    for _ in procs:
        lat += out.get()
    for p in procs:
        p.join()
    lat.sort()
    n = len(lat)
    print(json.dumps({
        "system": "warroom gRPC",
        "kind": a.kind,
        "clients": a.clients,
        "queries": n,
        "qps": n / a.seconds,
        "p50_ms": 1000 * lat[n // 2],
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))],
        "max_ms": 1000 * lat[-1],
        "results_per_query": results / len(queries),
        "first_pct": 100.0 * first / len(queries),
        "within_pct": 100.0 * within / len(queries),
    }))


def compare(a):
    import subprocess
    rows = [json.loads(line) for line in open(os.path.join(a.dir, "prefix.answers.jsonl"))][:a.n]
    same, diffs = 0, []
    for r in rows:
        q = r["q"]
        ours = [x for x in r["mailboxes"] if x.startswith(q)]
        lo, hi = q.replace("'", "''"), (q[:-1] + chr(ord(q[-1]) + 1)).replace("'", "''")
        sql = (f"SELECT address FROM mailboxes WHERE address ~>=~ '{lo}' AND address ~<~ '{hi}' "
               f"ORDER BY address USING ~<~ LIMIT {CANDIDATES}")
        pg = subprocess.run(["psql", "-X", "-At", "-c", sql], capture_output=True, text=True,
                            check=True).stdout.split()
        # The gateway takes the first 1,000 matches in address order, ranks
        # the affected ones first, then cuts to the limit: our prefix
        # matches must all be among PostgreSQL's first 1,000, and as many
        # as there are up to the limit; fewer only when tenant or domain
        # matches took the places.
        if set(ours) <= set(pg) and (len(ours) == min(len(pg), LIMIT) or r["total"] == LIMIT):
            same += 1
        else:
            diffs.append((q, ours[:3], pg[:3]))
    print(f"prefix answers drawn from PostgreSQL's first {CANDIDATES} matches in address order, "
          f"as many as it has up to {LIMIT}: "
          f"{same} of {len(rows)}")
    for q, ours, pg in diffs[:5]:
        print(f"  differs: {q!r}: warroom {ours}..., PostgreSQL {pg}...")


def pglog(a):
    lat = []
    for path in a.files:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1e6)
    lat.sort()
    n = len(lat)
    if not n:
        sys.exit("pglog: no transactions in the logs")
    print(json.dumps({
        "system": "PostgreSQL (pgbench)",
        "kind": a.kind,
        "clients": a.clients,
        "queries": n,
        "qps": a.tps,
        "p50_ms": 1000 * lat[n // 2],
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))],
        "max_ms": 1000 * lat[-1],
    }))


def table(a):
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    head = f"{'kind':<7} {'system':<22} {'clients':>7} {'queries':>8} {'q/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}  notes"
    print(head)
    print("-" * len(head))
    order = {"noop": -1, "exact": 0, "prefix": 1, "fuzzy": 2}
    for r in sorted(rows, key=lambda r: (order.get(r["kind"], 9), r["system"], r["clients"])):
        notes = r.get("notes", "")
        if "first_pct" in r:
            notes = (f"wanted hit first {r['first_pct']:.1f}%, in top {LIMIT} {r['within_pct']:.1f}%, "
                     f"{r['results_per_query']:.1f} results/query")
        print(f"{r['kind']:<7} {r['system']:<22} {r['clients']:>7} {r['queries']:>8} {r['qps']:>9.0f} "
              f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['max_ms']:>9.3f}  {notes}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--addr", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--sample", type=int, default=1000)
    p = sub.add_parser("run")
    p.add_argument("--addr", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--kind", choices=["exact", "prefix", "fuzzy"], required=True)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20)
    p = sub.add_parser("compare")
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, default=200)
    p = sub.add_parser("pglog")
    p.add_argument("--kind", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--tps", type=float, required=True)
    p.add_argument("files", nargs="+")
    p = sub.add_parser("table")
    p.add_argument("results")
    a = ap.parse_args()
    {"prepare": prepare, "run": run, "compare": compare, "pglog": pglog, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
