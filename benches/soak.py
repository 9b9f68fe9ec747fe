#!/usr/bin/env python3
"""A soak: does byok (and the localcloud beside it) stay flat in memory and on disk under weeks'
worth of steady work, compressed?

1. Starts a release `localcloud serve` with a data directory and trail limits (--trail-mib: the
   in-memory window and each file; 2 files), and a release `byok serve --aws-endpoint` against
   it (SQLite, a 1 s monitor).
2. Onboards 2 tenants, then for --minutes runs saturating 4 KiB encrypts (wrk, in 60 s slices,
   -t1 -c8) while the monitor probes both tenants every second.
3. Every slice, samples each process's RSS (/proc/PID/status VmRSS) and the disk used by each
   data directory, and prints a line; at the end, the growth over the last half of the run.

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bins`
and Debian's `wrk`):
    .venv/bin/python benches/soak.py [--minutes 60] [--trail-mib 4]
Traffic goes to 127.0.0.1 only.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import broker_load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def disk_mib(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--trail-mib", type=int, default=4)
    args = parser.parse_args()
    for binary in ("byok", "localcloud"):
        if not os.path.exists(os.path.join(ROOT, "target/release", binary)):
            sys.exit("build them first: cargo build --release --bins")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package: wrk)")
    work = tempfile.mkdtemp(prefix="byok-soak-")
    lc_dir, byok_dir = os.path.join(work, "localcloud"), os.path.join(work, "byok")
    lc_port, api_port = broker_load.free_port(), broker_load.free_port()
    lc_proc = subprocess.Popen(
        [os.path.join(ROOT, "target/release/localcloud"), "serve", "--listen", f"127.0.0.1:{lc_port}", "--data-dir", lc_dir,
         "--trail-memory-mib", str(args.trail_mib), "--trail-file-mib", str(args.trail_mib), "--trail-files", "2"],
        stderr=subprocess.DEVNULL,
    )
    lc = f"http://127.0.0.1:{lc_port}"
    broker_load.wait_for(lc + "/_localcloud/health")
    byok_proc = subprocess.Popen(
        [os.path.join(ROOT, "target/release/byok"), "serve", "--aws-endpoint", lc, "--data-dir", byok_dir,
         "--listen", f"127.0.0.1:{api_port}", "--monitor-interval-seconds", "1"],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BYOK_LOG": "warn"},
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        broker_load.wait_for(api + "/healthz")
        read = lambda name: open(os.path.join(byok_dir, name)).read().strip()
        op, svc = read("operator.token"), read("service.token")
        tenants = broker_load.onboard(api, lc, op, 2)
        plaintext = base64.b64encode(broker_load.PAYLOAD).decode()
        enc = [(f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": plaintext, "context": f"rec-{t}"})) for t, _, _ in tenants]
        lua = broker_load.lua_requests(svc, enc)
        samples = []
        print("| minute | encrypts/s | byok RSS MiB | localcloud RSS MiB | byok data MiB | localcloud data MiB | trail events |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        started, seq = time.monotonic(), 0
        for minute in range(1, args.minutes + 1):
            rate, _, _, errors = broker_load.wrk(api, lua, 60, 8, threads=1)
            if errors:
                sys.exit(f"minute {minute}: {errors} answers were not 2xx")
            seq = last_seq(lc, seq)
            sample = (minute, rate, rss_mib(byok_proc.pid), rss_mib(lc_proc.pid), disk_mib(byok_dir), disk_mib(lc_dir), seq)
            samples.append(sample)
            print("| {} | {:,.0f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:,} |".format(*sample), flush=True)
        half = samples[len(samples) // 2 :]
        if len(half) >= 2:
            span = half[-1][0] - half[0][0]
            growth = lambda i: (half[-1][i] - half[0][i]) / span if span else 0.0
            print(f"\nOver the last half ({span} min, {time.monotonic() - started:.0f} s in all): byok RSS {growth(2):+.2f} MiB/min, "
                  f"localcloud RSS {growth(3):+.2f} MiB/min, byok disk {growth(4):+.2f} MiB/min, localcloud disk {growth(5):+.2f} MiB/min.")
    finally:
        for proc in (byok_proc, lc_proc):
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def last_seq(lc, since):
    """The trail's newest sequence number (its events so far), reading what came after `since`."""
    events = broker_load.trail(lc, since)
    return events[-1]["seq"] if events else since


if __name__ == "__main__":
    main()
