#!/usr/bin/env python3
"""The broker under load, against its embedded localcloud, with the AWS Encryption SDK for
Python (caching materials manager) on the same localcloud for the ratio.

1. Starts a release `byok serve` (embedded localcloud, SQLite) on free loopback ports.
2. Onboards --tenants tenants in location `us` (two regions), each in its own customer
   account: the customer's role and keys made by localcloud's fixture endpoint from the
   broker's printed setup, the tenant added and verified through the broker's API (8 at a time).
3. wrk: 4 KiB Encrypt requests over HTTP spread over every tenant, then Decrypt of one record
   per tenant, for --seconds each: ops/s and latency percentiles.
4. KMS calls made by the broker during the load, counted from localcloud's trail (session
   name byok-data): the target is one unwrap per tenant per node per cache TTL.
5. ESDK-Python 4.x, one process, caching CMM, 4 KiB encrypt then decrypt for --seconds.

Usage (repository root, after `scripts/setup-venv --bench`, `cargo build --release --bin byok`,
and Debian's `wrk`):
    .venv/bin/python benches/broker_load.py [--tenants 100] [--seconds 10] [--connections 32]
    .venv/bin/python benches/broker_load.py --probes --tenants 10000 --interval 60   # the monitor
    .venv/bin/python benches/broker_load.py --probes --tenants 10000 --cmk-every 2   # half of them CMK
Traffic goes to 127.0.0.1 only and every loop is bounded in time.
"""

import argparse
import base64
import collections
import concurrent.futures
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD = os.urandom(4096)
# Commands put before the server under test and before the load generator (`taskset -c 0` and
# `taskset -c 1` when a benchmark pins them apart: see tls_and_neighbours.py --pin).
SERVER_PREFIX = []
LOAD_PREFIX = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The embedded localcloud's admin token (byok serve writes it beside its data), sent with every
# /_localcloud call.
LOCALCLOUD_ADMIN_TOKEN = None


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token is None and "/_localcloud/" in url and LOCALCLOUD_ADMIN_TOKEN:
        token = LOCALCLOUD_ADMIN_TOKEN
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(url):
    """Waits (20 s at most) until `url` answers."""
    for _ in range(400):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"no answer from {url}")


def start_broker(data_dir, monitor_interval=60, binary=None):
    """`byok serve` (the release build unless `binary` is given) with its embedded localcloud on
    free loopback ports: (process, API URL, localcloud URL, operator token, service token)."""
    api_port, lc_port = free_port(), free_port()
    binary = binary or os.path.join(ROOT, "target/release/byok")
    if not os.path.exists(binary):
        sys.exit("build it first: cargo build --release --bin byok")
    proc = subprocess.Popen(
        SERVER_PREFIX + [binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{api_port}", "--localcloud-listen", f"127.0.0.1:{lc_port}", "--monitor-interval-seconds", str(monitor_interval)],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BYOK_LOG": "warn"},
    )
    api, lc = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{lc_port}"
    wait_for(api + "/healthz")
    read = lambda name: open(os.path.join(data_dir, name)).read().strip()
    global LOCALCLOUD_ADMIN_TOKEN
    LOCALCLOUD_ADMIN_TOKEN = read("localcloud-admin.token")
    return proc, api, lc, read("operator.token"), read("service.token")


def onboard_one(api, lc, op, i, tenant=None, cmk=False):
    """One tenant in its own account: the account and the customer's role and keys made by
    localcloud's fixture endpoint (what the customer would make with IAM and KMS calls), then
    added and verified through the broker's API as a provider would; with `cmk`, a
    customer-managed-key tenant (no role: keys whose policy grants the provider). Returns
    (tenant, customer creds, key ARN in the location's first region)."""
    tenant = tenant or f"t{i:05d}"
    status, acct = http("POST", lc + "/_localcloud/accounts", {"name": f"customer-{i}"})
    assert status == 201, acct
    request = {"id": tenant, "location": "us", "account_id": acct["account_id"]}
    if cmk:
        request.update({"mode": "cmk", "context_tag": f"T{i:05d}"})
    status, added = http("POST", api + "/v1/tenants", request, op)
    assert status == 201, added
    ins = added["instructions"]
    fixture = {
        "roles": [] if cmk else [{"name": ins["role_name"], "trust_policy": ins["trust_policy"]}],
        "keys": [{"region": region, "alias": ins["alias"], "policy": ins["key_policy"], "description": f"byok key for tenant {tenant}"} for region in ins["regions"]],
    }
    status, made = http("POST", lc + f"/_localcloud/accounts/{acct['account_id']}/fixture", fixture)
    assert status == 201, made
    status, verified = http("POST", api + f"/v1/tenants/{tenant}/verify", None, op)
    assert status == 200, verified
    return tenant, acct, made["keys"][0]["arn"]


def onboard(api, lc, op, n, workers=8, cmk_every=0):
    """n tenants, each in its own account, onboarded `workers` at a time; with `cmk_every` k,
    every k-th one (i % k == k - 1) a customer-managed-key tenant."""
    cmk = lambda i: cmk_every > 0 and i % cmk_every == cmk_every - 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: onboard_one(api, lc, op, i, cmk=cmk(i)), range(n)))


def wrk(url, lua, seconds, connections, threads=2):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        out = subprocess.run(LOAD_PREFIX + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = {p: re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1) for p in ["50", "99"]}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, total, lat, int(non_2xx.group(1)) if non_2xx else 0


def lua_requests(token, requests):
    """A wrk script cycling through (path, body) pairs."""
    entries = ",\n".join("{" + json.dumps(p) + ", " + json.dumps(b) + "}" for p, b in requests)
    return f"""
local reqs = {{ {entries} }}
local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("POST", reqs[i][1], {{["Content-Type"]="application/json", ["Authorization"]="Bearer {token}"}}, reqs[i][2])
end
"""


def trail(lc, since):
    headers = {"authorization": f"Bearer {LOCALCLOUD_ADMIN_TOKEN}"} if LOCALCLOUD_ADMIN_TOKEN else {}
    with urllib.request.urlopen(urllib.request.Request(f"{lc}/_localcloud/trail?since={since}", headers=headers)) as resp:
        return [json.loads(line) for line in resp.read().decode().splitlines() if line]


def esdk(lc, creds, key_arn, seconds):
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    import botocore.session

    os.environ["AWS_ENDPOINT_URL"] = lc
    session = botocore.session.Session()
    session.set_credentials(creds["access_key_id"], creds["secret_access_key"])
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)
    cache = aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100)
    cmm = aws_encryption_sdk.CachingCryptoMaterialsManager(master_key_provider=provider, cache=cache, max_age=300.0, max_messages_encrypted=2**32)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ctx = {"tenant": "t0000", "record": "r1"}
    rates = {}
    ciphertext, _ = client.encrypt(source=PAYLOAD, materials_manager=cmm, encryption_context=ctx)
    for name, op in [
        ("encrypt", lambda: client.encrypt(source=PAYLOAD, materials_manager=cmm, encryption_context=ctx)),
        ("decrypt", lambda: client.decrypt(source=ciphertext, materials_manager=cmm)),
    ]:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            op()
            n += 1
        rates[name] = n / (time.perf_counter() - start)
    return rates


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(api, name):
    with urllib.request.urlopen(api + "/metrics") as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def next_pass(api, timeout):
    """Waits for the next monitor pass to end; returns its milliseconds and tenants probed."""
    before, deadline = metric(api, "byok_monitor_passes_total"), time.monotonic() + timeout
    spent = metric(api, "byok_monitor_pass_duration_seconds_sum") or 0.0
    while metric(api, "byok_monitor_passes_total") == before:
        if time.monotonic() > deadline:
            sys.exit(f"no monitor pass ended within {timeout} s")
        time.sleep(0.2)
    # The histogram's sum grew by the one pass that ended.
    took = (metric(api, "byok_monitor_pass_duration_seconds_sum") - spent) * 1000
    return took, metric(api, "byok_monitor_pass_tenants")


def probes(args):
    """The monitor over --tenants tenants at --interval: pass duration and CPU, AWS calls per
    tenant per pass from localcloud's trail, and the audit log's growth."""
    data_dir = tempfile.mkdtemp(prefix="byok-probe-bench-")
    proc, api, lc, op, svc = start_broker(data_dir, monitor_interval=args.interval)
    try:
        t0 = time.perf_counter()
        onboarded = onboard(api, lc, op, args.tenants, cmk_every=args.cmk_every)
        onboard_s = time.perf_counter() - t0
        # Each customer account's tenant mode, to count its calls by mode.
        modes = {acct["account_id"]: ("cmk" if args.cmk_every and i % args.cmk_every == args.cmk_every - 1 else "byok") for i, (_, acct, _) in enumerate(onboarded)}
        print(f"Onboarded {args.tenants} tenants (2 regions each) in {onboard_s:.1f} s ({args.tenants / onboard_s:.0f}/s).", flush=True)
        # Passes that started during onboarding saw fewer tenants: wait for a whole one to end,
        # then measure from that end to the end of --passes more (passes start every interval,
        # so that window holds exactly --passes of them).
        while next_pass(api, args.interval * 3)[1] < args.tenants:
            pass
        since = max([e["seq"] for e in trail(lc, 0)] or [0])
        cpu0, w0 = cpu_seconds(proc.pid), time.perf_counter()
        passes = [next_pass(api, args.interval * 3)[0] for _ in range(args.passes)]
        cpu1, w1 = cpu_seconds(proc.pid), time.perf_counter()
        events = trail(lc, since)
        proc.terminate()  # a graceful stop writes the pending hourly probe summaries
        proc.wait()
        db = sqlite3.connect(os.path.join(data_dir, "byok.db"))
        rows, size = db.execute(
            "SELECT count(*), coalesce(sum(length(coalesce(tenant_id,'')) + 8 + length(kind) + length(reason) + length(detail) + length(prev_hash) + length(hash) + 8), 0) FROM audit_log WHERE reason = 'probe'"
        ).fetchone()
        db.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    # Every call a customer's account received over the passes (no data-plane traffic runs, so
    # these are the probes), by its tenant's mode.
    calls = collections.Counter((modes[e["recipient_account_id"]], e["event_name"]) for e in events if e.get("recipient_account_id") in modes)
    tenants_in = collections.Counter(modes.values())
    n = len(passes)
    minutes = (w1 - w0) / 60
    print(f"\n| monitor, {args.tenants} tenants x 2 regions, interval {args.interval} s, {n} passes | value |")
    print("|---|---:|")
    print(f"| pass duration (ms), each pass | {', '.join(f'{p:,.0f}' for p in passes)} |")
    print(f"| broker CPU over the passes (both cores = 200 %) | {100 * (cpu1 - cpu0) / (w1 - w0):.0f} % |")
    for (mode, name), count in sorted(calls.items()):
        print(f"| {mode.upper()}: {name} per tenant per pass ({tenants_in[mode]} tenants) | {count / tenants_in[mode] / n:.2f} |")
    for mode in sorted(tenants_in):
        if not any(m == mode and name == "AssumeRole" for m, name in calls):
            print(f"| {mode.upper()}: AssumeRole per tenant per pass ({tenants_in[mode]} tenants) | 0.00 |")
    per_row = size / rows if rows else 0
    print(f"| probe audit rows written over {minutes:.1f} min (hourly summaries, flushed at stop) | {rows:,} ({per_row:.0f} bytes each) |")
    print(f"| probe audit per day: one summary per (tenant, region) per hour | {args.tenants * 2 * 24:,} rows, {args.tenants * 2 * 24 * per_row / 1e6:,.1f} MB |")
    per_pass = args.tenants * 2 * 86400 / args.interval
    print(f"| before (one row per probe, same row size) | {per_pass:,.0f} rows, {per_pass * per_row / 1e9:,.2f} GB |")
    print("\n(localcloud runs inside the broker process here, so the CPU figure includes it.)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--probes", action="store_true", help="measure the monitor instead of the data plane")
    parser.add_argument("--interval", type=int, default=60, help="--probes: the monitor interval in seconds")
    parser.add_argument("--passes", type=int, default=2, help="--probes: whole passes to measure")
    parser.add_argument("--cmk-every", type=int, default=0, help="--probes: every K-th tenant uses customer-managed keys (2: half)")
    args = parser.parse_args()
    if args.probes:
        return probes(args)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package: wrk)")
    data_dir = tempfile.mkdtemp(prefix="byok-bench-")
    proc, api, lc, op, svc = start_broker(data_dir)
    try:
        t0 = time.perf_counter()
        tenants = onboard(api, lc, op, args.tenants)
        onboard_s = time.perf_counter() - t0
        since = max([e["seq"] for e in trail(lc, 0)] or [0])
        plaintext = base64.b64encode(PAYLOAD).decode()
        enc = [(f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": plaintext, "context": f"rec-{t}"})) for t, _, _ in tenants]
        e_rate, e_total, e_lat, e_err = wrk(api, lua_requests(svc, enc), args.seconds, args.connections)
        records = []
        for t, _, _ in tenants:
            _, sealed = http("POST", api + f"/v1/tenants/{t}/encrypt", {"plaintext": plaintext, "context": f"rec-{t}"}, svc)
            records.append((f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": sealed["ciphertext"], "context": f"rec-{t}"})))
        d_rate, d_total, d_lat, d_err = wrk(api, lua_requests(svc, records), args.seconds, args.connections)
        calls = collections.Counter(
            (e["event_name"], (e.get("user_identity") or {}).get("session_name")) for e in trail(lc, since) if e["event_source"] in ("kms.amazonaws.com", "sts.amazonaws.com")
        )
        esdk_rates = esdk(lc, tenants[0][1], tenants[0][2], args.seconds)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)

    ops = e_total + d_total
    print(f"Onboarded {len(tenants)} tenants (2 regions each) in {onboard_s:.1f} s.\n")
    print(f"| load (4 KiB, {args.seconds} s, wrk -t2 -c{args.connections}, {len(tenants)} tenants) | ops/s | p50 | p99 | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    print(f"| byok HTTP encrypt (JSON) | {e_rate:,.0f} | {e_lat['50']} | {e_lat['99']} | {e_err} |")
    print(f"| byok HTTP decrypt (JSON) | {d_rate:,.0f} | {d_lat['50']} | {d_lat['99']} | {d_err} |")
    print(f"| ESDK-Python 4.0.7, caching CMM, 1 process: encrypt | {esdk_rates['encrypt']:,.0f} | | | |")
    print(f"| ESDK-Python 4.0.7, caching CMM, 1 process: decrypt | {esdk_rates['decrypt']:,.0f} | | | |")
    print(f"\nRatios: encrypt {e_rate / esdk_rates['encrypt']:.1f}x, decrypt {d_rate / esdk_rates['decrypt']:.1f}x (target >= 20x).\n")
    print(f"KMS/STS calls by the broker during {ops:,} data-plane operations over {len(tenants)} tenants:")
    for (event, session), n in sorted(calls.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"- {event} ({session}): {n}")


if __name__ == "__main__":
    main()
