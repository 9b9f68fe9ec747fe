#!/usr/bin/env python3
"""What TLS costs byok, in instructions instead of seconds (issue 19): a release `byok serve`
under `valgrind --tool=callgrind` answers the same 4 KiB encrypt and decrypt over HTTP and over
HTTPS (HTTP/1.1), and the instructions the whole server executed per request are compared.
Callgrind counts instructions, not time: the same binary and load give the same count whatever
else the shared machine is doing, so differences of a few per cent are real (timed runs here
vary by 10-15 % between runs).

1. A normal `byok serve` onboards one tenant and seals one record, then stops.
2. For HTTP, then HTTPS: the same data directory served under callgrind; after a warm-up, for
   each operation the counters are zeroed (`callgrind_control -z`), wrk sends the requests for
   --seconds, and the counters are dumped (`callgrind_control -d`). Instructions / requests.
3. For each operation, the --top functions whose own (self) instructions a request grew most from
   HTTP to HTTPS, from `callgrind_annotate`.

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bin byok`,
Debian's `wrk` and `valgrind`):
    .venv/bin/python benches/tls_instructions.py [--seconds 10] [--top 15]
Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker_load as bl  # noqa: E402
import tls_and_neighbours as tn  # noqa: E402
import transit_compare as tc  # noqa: E402


def totals(path):
    """Instructions in a callgrind dump, and each function's self count."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--tree=none", path], capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))
    functions = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+) \([\s\d.]+%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line and "events annotated" not in line and "=>" not in line and "<" not in line.split(":")[0]:
            name = re.sub(r"^\S+:", "", m.group(2)).split(" [")[0].strip()
            functions[name] = functions.get(name, 0) + int(m.group(1).replace(",", ""))
    return total, functions


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the callgrind dumps (their directory is printed)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="byok-tls-cg-")
    cert, key = tn.certificate(directory)
    data_dir = os.path.join(directory, "data")
    proc, api, lc, op, svc = bl.start_broker(data_dir)
    try:
        bl.onboard(api, lc, op, 1)
        t = "t00000"
        status, sealed = bl.http("POST", api + f"/v1/tenants/{t}/encrypt", {"plaintext": tn.B64, "context": tn.CTX}, svc)
        assert status == 200, sealed
    finally:
        tn.stop(proc)
    api_port, lc_port = int(api.rsplit(":", 1)[1]), int(lc.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {svc}", "Content-Type": "application/json"}
    ops = [
        ("encrypt", f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": tn.B64, "context": tn.CTX})),
        ("decrypt", f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": sealed["ciphertext"], "context": tn.CTX})),
    ]
    results = {}
    for proto in ("HTTP", "HTTPS"):
        out_dir = os.path.join(directory, proto)
        os.makedirs(out_dir)
        extra = ["--tls-cert", cert, "--tls-key", key] if proto == "HTTPS" else []
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p", os.path.join(bl.ROOT, "target/release/byok"),
               "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{api_port}", "--localcloud-listen", f"127.0.0.1:{lc_port}"]
        proc = subprocess.Popen(cmd + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "BYOK_LOG": "warn"})
        url = f"{proto.lower()}://127.0.0.1:{api_port}"
        try:
            tn.wait_tls(url + "/healthz", seconds=300)  # valgrind starts slowly
            for name, path, body in ops:
                # Warm-up: the tenant's keys unwrapped, connections and buffers made.
                bl.wrk(url, tc.lua(headers, [(path, body)]), 2, args.connections, threads=1)
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
                rate, total, lat, non_2xx = bl.wrk(url, tc.lua(headers, [(path, body)]), args.seconds, args.connections, threads=1)
                assert not non_2xx, f"{proto} {name}: {non_2xx} non-2xx"
                before = set(glob.glob(f"{out_dir}/cg.*"))
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
                time.sleep(1)
                dump = sorted(set(glob.glob(f"{out_dir}/cg.*")) - before)[-1]
                instructions, functions = totals(dump)
                results[(proto, name)] = (instructions, total, functions)
                print(f"{proto} {name}: {total:,} requests, {instructions / total:,.0f} instructions a request", flush=True)
        finally:
            tn.stop(proc)
    print("\n| 4 KiB, whole server under callgrind | HTTP instructions / request | HTTPS | TLS adds |")
    print("|---|---:|---:|---:|")
    for name, _, _ in ops:
        http_ir = results[("HTTP", name)][0] / results[("HTTP", name)][1]
        https_ir = results[("HTTPS", name)][0] / results[("HTTPS", name)][1]
        print(f"| {name} | {http_ir:,.0f} | {https_ir:,.0f} | {https_ir - http_ir:,.0f} ({(https_ir / http_ir - 1) * 100:.1f} %) |")
    for name, _, _ in ops:
        (_, n_http, f_http), (_, n_https, f_https) = results[("HTTP", name)], results[("HTTPS", name)]
        grown = {f: f_https.get(f, 0) / n_https - f_http.get(f, 0) / n_http for f in set(f_http) | set(f_https)}
        print(f"\n{name}: functions whose own instructions a request grew most from HTTP to HTTPS")
        for f, d in sorted(grown.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {d:>10,.0f}  {f[:140]}")
    if args.keep:
        print(f"\ndumps kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
