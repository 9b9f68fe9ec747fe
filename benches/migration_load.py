#!/usr/bin/env python3
"""Serving during a move to customer-managed keys (issue 21): 4 KiB decrypts under wrk while a
live role-based tenant is switched to CMK, against the same load with nothing happening; with
--adopt, a tenant on provider-held keys adopting its customer's keys instead, then every record
moved onto the fresh generation with `rewrap/batch` (the rate, and what `GET /v1/adoptions`
counted).

1. Starts a release `byok serve` (embedded localcloud, SQLite) on free loopback ports and
   onboards one role-based tenant (its role and keys made by localcloud's fixture endpoint).
2. Seals --records 4 KiB records (batches of 100). byok keeps no records: they are the product
   service's, and the move does not touch them (the tenant key does not change); wrk cycles
   through the first 1,000.
3. Idle: wrk decrypts for --seconds.
4. The customer's side of the move (`migration-setup`): each key's policy put with boto3, as
   the printed `aws kms put-key-policy` commands do.
5. During: the same wrk load for --seconds; a third of the way in, `POST .../migrate`.
   Reported: the move's duration, and the window's throughput, p50/p99 and non-2xx answers
   beside --rounds idle windows before the move and --rounds after it (the machine is noisy:
   the idle spread is the yardstick).

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bin byok`,
and Debian's `wrk`):
    .venv/bin/python benches/migration_load.py [--records 100000] [--seconds 10] [--rounds 3] [--adopt]
Traffic goes to 127.0.0.1 only and every loop is bounded in time.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_load import http, lua_requests, onboard_one, start_broker, wrk  # noqa: E402

B64 = base64.b64encode(os.urandom(4096)).decode()


def seal(api, svc, tenant, n, every=None):
    """n records of 4 KiB, sealed 100 a call; the first 1,000 (ciphertext, context) kept (all of
    them into `every`, if given)."""
    kept = []
    for start in range(0, n, 100):
        items = [{"plaintext": B64, "context": f"r{i}"} for i in range(start, min(n, start + 100))]
        status, answer = http("POST", api + f"/v1/tenants/{tenant}/encrypt/batch", {"items": items}, svc)
        assert status == 200 and answer["failed"] == 0, answer
        sealed = [(r["ciphertext"], item["context"]) for r, item in zip(answer["results"], items)]
        if every is not None:
            every += sealed
        if len(kept) < 1000:
            kept += sealed
    return kept[:1000]


def provider_held(api, lc, op, tenant):
    """A tenant on provider-held keys, and a customer account whose keys (made by localcloud's
    fixture endpoint from the printed adoption setup) grant the provider. Returns the account."""
    status, added = http("POST", api + "/v1/provider-held-tenants", {"id": tenant, "location": "us"}, op)
    assert status == 201, added
    status, acct = http("POST", lc + "/_localcloud/accounts", {"name": "adopting-customer"})
    assert status == 201, acct
    request = {"to": "cmk", "account_id": acct["account_id"], "context_tag": "Bench01"}
    status, ins = http("POST", api + f"/v1/tenants/{tenant}/adoption-setup", request, op)
    assert status == 200, ins
    fixture = {"roles": [], "keys": [{"region": r, "alias": ins["alias"], "policy": ins["key_policy"], "description": "adopted"} for r in ins["regions"]]}
    status, made = http("POST", lc + f"/_localcloud/accounts/{acct['account_id']}/fixture", fixture)
    assert status == 201, made
    return request


def rewrap_all(api, svc, tenant, records, batch=100, workers=4):
    """Every record moved onto the current generation with rewrap/batch, `workers` calls at a
    time; (seconds, failures)."""
    import concurrent.futures

    def one(start):
        items = [{"ciphertext": c, "context": ctx} for c, ctx in records[start:start + batch]]
        status, answer = http("POST", api + f"/v1/tenants/{tenant}/rewrap/batch", {"items": items}, svc)
        assert status == 200, answer
        return answer["failed"]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        failed = sum(pool.map(one, range(0, len(records), batch)))
    return time.perf_counter() - started, failed


def grant_provider(lc, api, op, tenant, account):
    """The customer runs the move's setup: each key's policy with the provider's statements."""
    import boto3

    status, setup = http("POST", api + f"/v1/tenants/{tenant}/migration-setup", {"to": "cmk", "context_tag": "Bench01"}, op)
    assert status == 200, setup
    status, shown = http("GET", api + f"/v1/tenants/{tenant}", None, op)
    assert status == 200, shown
    for region in shown["regions"]:
        kms = boto3.client(
            "kms",
            region_name=region["region"],
            endpoint_url=lc,
            aws_access_key_id=account["access_key_id"],
            aws_secret_access_key=account["secret_access_key"],
        )
        kms.put_key_policy(KeyId=region["key_arn"], PolicyName="default", Policy=json.dumps(setup["key_policy"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="idle windows before the move, and again after it")
    parser.add_argument("--adopt", action="store_true", help="a tenant on provider-held keys adopts its customer's keys")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="byok-migration-bench-")
    proc, api, lc, op, svc = start_broker(data_dir)
    every = [] if args.adopt else None
    moved_records = None
    try:
        if args.adopt:
            tenant = "hooli"
            adoption = provider_held(api, lc, op, tenant)
        else:
            tenant, account, _ = onboard_one(api, lc, op, 0, tenant="initech")
        t0 = time.perf_counter()
        kept = seal(api, svc, tenant, args.records, every)
        print(f"Sealed {args.records:,} records of 4 KiB in {time.perf_counter() - t0:.1f} s.", flush=True)
        script = lua_requests(svc, [(f"/v1/tenants/{tenant}/decrypt", json.dumps({"ciphertext": c, "context": ctx})) for c, ctx in kept])
        url = api + "/"
        rows = []
        for _ in range(args.rounds):
            rows.append(("idle", *wrk(url, script, args.seconds, args.connections)))
        if not args.adopt:
            grant_provider(lc, api, op, tenant, account)
        moved = {}

        def move():
            time.sleep(args.seconds / 3)
            started = time.perf_counter()
            if args.adopt:
                moved["status"], moved["answer"] = http("POST", api + f"/v1/tenants/{tenant}/adopt", adoption, op)
            else:
                moved["status"], moved["answer"] = http("POST", api + f"/v1/tenants/{tenant}/migrate", {"to": "cmk", "context_tag": "Bench01"}, op)
            moved["ms"] = (time.perf_counter() - started) * 1000

        mover = threading.Thread(target=move)
        mover.start()
        rows.append(("during the move", *wrk(url, script, args.seconds, args.connections)))
        mover.join()
        assert moved["status"] == 200, moved
        for _ in range(args.rounds):
            rows.append(("idle, after (CMK)", *wrk(url, script, args.seconds, args.connections)))
        status, shown = http("GET", api + f"/v1/tenants/{tenant}", None, op)
        assert shown["mode"] == "cmk", shown
        if args.adopt:
            seconds, failed = rewrap_all(api, svc, tenant, every)
            time.sleep(2.5)  # every node adds its count each second
            status, report = http("GET", api + "/v1/adoptions", None, op)
            assert status == 200, report
            moved_records = (len(every), seconds, failed, report)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\nThe move: {moved['ms']:.0f} ms as the operator saw it ({moved['answer']['elapsed_ms']} ms in the broker), "
          f"generations {moved['answer']['regions'][0]['generations']} rewrapped in {len(moved['answer']['regions'])} regions.\n")
    if moved_records:
        n, seconds, failed, report = moved_records
        print(f"Records moved onto the fresh generation with rewrap/batch (100 a call, 4 at a time): {n:,} in {seconds:.1f} s "
              f"({n / seconds:,.0f}/s), {failed} failed; GET /v1/adoptions counted {report['records_rewrapped']:,} "
              f"at {report['rate_per_s']:,.0f}/s.\n")
    print(f"| 4 KiB decrypts, {args.connections} connections, {args.seconds} s windows | decrypts/s | p50 | p99 | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, _total, lat, non2xx in rows:
        print(f"| {name} | {rate:,.0f} | {lat['50']} | {lat['99']} | {non2xx} |")


if __name__ == "__main__":
    main()
