#!/usr/bin/env python3
"""What TLS costs byok in time, measured so that the machine's drift cannot pass for it (issue
19). `tls_and_neighbours.py` measures HTTP, then restarts the node with TLS and measures HTTPS:
anything that changes between the two halves (another job on the shared machine, the CPU's clock)
is charged to TLS, and its decrypt figures moved by 10-15 % between runs. Here an HTTP node and an
HTTPS node run side by side, both on CPU 0 (`taskset`), wrk on CPU 1; each round measures the four
(protocol, operation) pairs in a new random order, and the medians over the rounds are compared.
`tls_instructions.py` says what TLS adds in instructions (the same for encrypt and decrypt).

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bin byok`,
Debian's `wrk`):
    .venv/bin/python benches/tls_interleaved.py [--rounds 7] [--seconds 6] [--connections 32]
Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker_load as bl  # noqa: E402
import tls_and_neighbours as tn  # noqa: E402


def node(directory, tls, cert, key):
    """A broker with one tenant and one sealed record; over TLS when `tls` (onboarded over HTTP,
    then restarted on the same ports with the certificate)."""
    data_dir = os.path.join(directory, "https" if tls else "http")
    proc, api, lc, op, svc = bl.start_broker(data_dir)
    bl.onboard(api, lc, op, 1)
    status, sealed = bl.http("POST", api + "/v1/tenants/t00000/encrypt", {"plaintext": tn.B64, "context": tn.CTX}, svc)
    assert status == 200, sealed
    if tls:
        tn.stop(proc)
        api_port, lc_port = int(api.rsplit(":", 1)[1]), int(lc.rsplit(":", 1)[1])
        proc = tn.serve(data_dir, api_port, lc_port, ["--tls-cert", cert, "--tls-key", key])
        api = f"https://127.0.0.1:{api_port}"
        tn.wait_tls(api + "/healthz")
    return proc, api, svc, sealed["ciphertext"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client-ciphersuites", help="TLS 1.3 suites wrk offers, most preferred first (OpenSSL's "
                        "Ciphersuites syntax, e.g. TLS_AES_128_GCM_SHA256); by default OpenSSL's, AES-256-GCM first. byok "
                        "(rustls) takes the client's preference among the suites it has.")
    args = parser.parse_args()
    if os.cpu_count() < 2 or not shutil.which("taskset") or not shutil.which("wrk"):
        sys.exit("needs two CPUs, taskset and wrk")
    bl.SERVER_PREFIX[:] = ["taskset", "-c", "0"]
    bl.LOAD_PREFIX[:] = ["taskset", "-c", "1"]
    directory = tempfile.mkdtemp(prefix="byok-tls-interleaved-")
    cert, key = tn.certificate(directory)
    if args.client_ciphersuites:
        conf = os.path.join(directory, "openssl.cnf")
        with open(conf, "w") as f:
            f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = tls\n"
                    f"[tls]\nCiphersuites = {args.client_ciphersuites}\n")
        os.environ["OPENSSL_CONF"] = conf  # read by wrk (and only wrk: the servers use rustls)
    nodes = {}
    try:
        for proto, tls in (("HTTP", False), ("HTTPS", True)):
            nodes[proto] = node(directory, tls, cert, key)
        pairs = [(proto, op) for proto in ("HTTP", "HTTPS") for op in ("encrypt", "decrypt")]
        samples = {pair: [] for pair in pairs}
        for r in range(args.rounds):
            order = pairs[:]
            random.shuffle(order)
            for proto, op in order:
                proc, api, svc, sealed = nodes[proto]
                body = {"plaintext": tn.B64, "context": tn.CTX} if op == "encrypt" else {"ciphertext": sealed, "context": tn.CTX}
                headers = {"Authorization": f"Bearer {svc}", "Content-Type": "application/json"}
                row = tn.wrk_row(f"{proto} {op}", api, headers, [(f"/v1/tenants/t00000/{op}", json.dumps(body))], args, proc.pid)
                assert not row["non_2xx"], row
                samples[(proto, op)].append(row)
            print(f"round {r + 1}: " + ", ".join(f"{p} {o} {samples[(p, o)][-1]['rate']:,.0f}/s" for p, o in pairs), flush=True)
    finally:
        for proc, *_ in nodes.values():
            tn.stop(proc)
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\nwrk offered: {args.client_ciphersuites or 'OpenSSL default (TLS_AES_256_GCM_SHA384 first)'}")
    print(f"\n| 4 KiB, pinned, {args.rounds} interleaved rounds of {args.seconds} s | HTTP req/s (median) | HTTPS req/s (median) "
          f"| TLS costs (medians) | TLS cost per round (min-max) | server CPU / request, HTTP → HTTPS (medians) |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ("encrypt", "decrypt"):
        http, https = samples[("HTTP", op)], samples[("HTTPS", op)]
        med = lambda rows, k: statistics.median(row[k] for row in rows)
        per_round = [1 - s["rate"] / h["rate"] for h, s in zip(http, https)]
        print(f"| {op} | {med(http, 'rate'):,.0f} | {med(https, 'rate'):,.0f} | {(1 - med(https, 'rate') / med(http, 'rate')) * 100:.1f} % "
              f"| {min(per_round) * 100:.1f}–{max(per_round) * 100:.1f} % "
              f"| {med(http, 'server_cpu_us_per_request'):.1f} → {med(https, 'server_cpu_us_per_request'):.1f} µs |")


if __name__ == "__main__":
    main()
