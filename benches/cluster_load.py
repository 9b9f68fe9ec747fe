#!/usr/bin/env python3
"""The data plane of a cluster: the same wrk load against one node, then spread over three.

1. Creates a PostgreSQL schema, starts a localcloud (`byok localcloud`) and --nodes release
   `byok serve` nodes sharing that schema, as `scripts/cluster` does.
2. Onboards --tenants tenants through node 1 (localcloud's fixture endpoint for the customer's
   side, as benches/broker_load.py does) and seals one 4 KiB record per tenant.
3. 4 KiB JSON encrypts, then decrypts, spread over every tenant, for --seconds each:
   - one node: `wrk -t2 -c32` against node 1;
   - every node: one `wrk -t1` per node, the 32 connections split among them, run at once.
   Records/s are summed; p99 is the worst node's. All nodes and wrk share this machine's cores,
   so on 2 cores this measures what spreading costs or gains, not what more machines would add.

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bin byok`,
Debian's `wrk` and `psql`):
    .venv/bin/python benches/cluster_load.py [--nodes 3] [--tenants 100] [--seconds 10]
PostgreSQL: BYOK_CLUSTER_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
"""

import argparse
import base64
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from broker_load import PAYLOAD, ROOT, free_port, http, lua_requests, onboard, wait_for, wrk


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    binary = os.path.join(ROOT, "target/release/byok")
    if not os.path.exists(binary):
        sys.exit("build it first: cargo build --release --bin byok")
    pg = os.environ.get("BYOK_CLUSTER_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    schema = f"byok_bench_{int(time.time())}_{os.getpid()}"
    subprocess.run(["psql", pg, "-qc", f"CREATE SCHEMA {schema}"], check=True)
    store = pg + ("&" if "?" in pg else "?") + f"options=-c%20search_path%3D{schema}"
    work = tempfile.mkdtemp(prefix="byok-cluster-bench-")
    procs = []
    env = {**os.environ, "BYOK_LOG": "warn"}
    try:
        lc_port = free_port()
        procs.append(subprocess.Popen([binary, "localcloud", "--listen", f"127.0.0.1:{lc_port}", "--data-dir", f"{work}/localcloud"], stderr=subprocess.DEVNULL, env=env))
        lc = f"http://127.0.0.1:{lc_port}"
        wait_for(lc + "/_localcloud/health")
        apis = []
        for i in range(1, args.nodes + 1):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [binary, "serve", "--aws-endpoint", lc, "--store-url", store, "--data-dir", f"{work}/cluster", "--listen", f"127.0.0.1:{port}", "--node-id", f"node-{i}"],
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            )
            apis.append(f"http://127.0.0.1:{port}")
            wait_for(apis[-1] + "/healthz")
        op = open(f"{work}/cluster/operator.token").read().strip()
        svc = open(f"{work}/cluster/service.token").read().strip()
        t0 = time.perf_counter()
        tenants = onboard(apis[0], lc, op, args.tenants)
        print(f"Onboarded {len(tenants)} tenants through node 1 in {time.perf_counter() - t0:.1f} s; {args.nodes} nodes.", flush=True)
        plaintext = base64.b64encode(PAYLOAD).decode()
        enc = [(f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": plaintext, "context": f"rec-{t}"})) for t, _, _ in tenants]
        dec = []
        for t, _, _ in tenants:
            _, sealed = http("POST", apis[0] + f"/v1/tenants/{t}/encrypt", {"plaintext": plaintext, "context": f"rec-{t}"}, svc)
            dec.append((f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": sealed["ciphertext"], "context": f"rec-{t}"})))
        rows = []
        for name, requests in (("encrypt", enc), ("decrypt", dec)):
            lua = lua_requests(svc, requests)
            one = wrk(apis[0], lua, args.seconds, args.connections)
            per_node = max(1, args.connections // len(apis))
            with concurrent.futures.ThreadPoolExecutor(len(apis)) as pool:
                spread = list(pool.map(lambda api: wrk(api, lua, args.seconds, per_node, threads=1), apis))
            rows.append((name, one, spread))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        subprocess.run(["psql", pg, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    def ms(v):
        return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000

    print(f"\n| 4 KiB JSON, {args.seconds} s, {args.connections} connections in all, {len(tenants)} tenants | one node: records/s | p99 | {len(apis)} nodes: records/s | worst p99 | ratio | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (rate, _, lat, err), spread in rows:
        total = sum(r for r, _, _, _ in spread)
        worst = max((l["99"] for _, _, l, _ in spread), key=ms)
        errors = err + sum(e for _, _, _, e in spread)
        print(f"| {name} | {rate:,.0f} | {lat['99']} | {total:,.0f} | {worst} | {total / rate:.2f}x | {errors} |")


if __name__ == "__main__":
    main()
