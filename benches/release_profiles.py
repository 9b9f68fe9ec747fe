#!/usr/bin/env python3
"""Two builds of byok side by side: the binary's size on disk, and the data plane's throughput.

For each binary given (--binary LABEL=PATH, two or more), in alternation (A B A B … for
--rounds rounds, so that a noisy neighbour on the shared machine hits both alike): a fresh
`byok serve` (embedded localcloud, SQLite) on loopback, --tenants tenants onboarded, then wrk
4 KiB encrypt and decrypt for --seconds each. Prints each build's size and its median req/s
over the rounds, and the ratios to the first build.

Usage (repository root, after `scripts/setup-venv --bench` and Debian's `wrk`):
    cargo build --release --locked --bin byok && cp target/release/byok /tmp/byok-release
    cargo build --profile dist --locked --bin byok
    .venv/bin/python benches/release_profiles.py --binary release=/tmp/byok-release \
        --binary dist=target/dist/byok [--rounds 3] [--seconds 8]
Traffic goes to 127.0.0.1 only.
"""

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import broker_load  # noqa: E402  (the same broker start, onboarding and wrk runs)


def measure(binary, tenants, seconds, connections):
    data_dir = tempfile.mkdtemp(prefix="byok-profile-")
    proc, api, lc, op, svc = broker_load.start_broker(data_dir, binary=binary)
    try:
        onboarded = broker_load.onboard(api, lc, op, tenants)
        plaintext = base64.b64encode(broker_load.PAYLOAD).decode()
        enc = [(f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": plaintext, "context": f"rec-{t}"})) for t, _, _ in onboarded]
        e_rate, _, _, e_err = broker_load.wrk(api, broker_load.lua_requests(svc, enc), seconds, connections)
        records = []
        for t, _, _ in onboarded:
            _, sealed = broker_load.http("POST", api + f"/v1/tenants/{t}/encrypt", {"plaintext": plaintext, "context": f"rec-{t}"}, svc)
            records.append((f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": sealed["ciphertext"], "context": f"rec-{t}"})))
        d_rate, _, _, d_err = broker_load.wrk(api, broker_load.lua_requests(svc, records), seconds, connections)
        if e_err or d_err:
            sys.exit(f"{binary}: {e_err} encrypt and {d_err} decrypt answers were not 2xx")
        return e_rate, d_rate
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", action="append", required=True, help="LABEL=PATH (two or more)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    builds = [b.split("=", 1) for b in args.binary]
    if len(builds) < 2 or any(len(b) != 2 or not os.path.exists(b[1]) for b in builds):
        sys.exit("give two or more --binary LABEL=PATH, each an existing file")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package: wrk)")
    rates = {label: ([], []) for label, _ in builds}
    for _ in range(args.rounds):
        for label, path in builds:
            e, d = measure(path, args.tenants, args.seconds, args.connections)
            rates[label][0].append(e)
            rates[label][1].append(d)
            print(f"  {label}: encrypt {e:,.0f}/s, decrypt {d:,.0f}/s", file=sys.stderr)
    base_label = builds[0][0]
    base_e, base_d = (statistics.median(r) for r in rates[base_label])
    base_size = os.path.getsize(builds[0][1])
    print(f"| build | size | encrypt req/s (median of {args.rounds}) | decrypt req/s | size ratio | encrypt ratio | decrypt ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, path in builds:
        size = os.path.getsize(path)
        e, d = (statistics.median(r) for r in rates[label])
        print(f"| {label} | {size / 2**20:.1f} MiB | {e:,.0f} | {d:,.0f} | {size / base_size:.2f} | {e / base_e:.2f} | {d / base_d:.2f} |")


if __name__ == "__main__":
    main()
