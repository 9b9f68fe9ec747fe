#!/usr/bin/env python3
"""Two questions a platform team asks before putting byok in production, measured in one run on
one machine:

1. **What does TLS cost?** 4 KiB encrypt and decrypt for one tenant, the same wrk load
   (`wrk -t2 -cN --latency`) against a release `byok serve` over plain HTTP, then the same node
   restarted with `--tls-cert/--tls-key` (HTTPS, HTTP/1.1); then h2load against the TLS node,
   HTTP/1.1 and HTTP/2 by ALPN (h2load reports means, not percentiles); then OpenBao Transit
   (`bao server -dev`, a derived aes256-gcm96 key) the same way over HTTP and with TLS on its
   listener (`-dev-tls`). The ratios: byok HTTPS / byok HTTP (goal: TLS costs at most 15 %), and
   byok / OpenBao with TLS on both (goal: at least 10x).
2. **Does a noisy service starve a quiet one?** Two service tokens for two tenants, the node
   started with `--rate-limit-per-identity R`. The quiet service sends a paced load well under
   its limit (wrk's `delay()`: each connection waits between requests); its p99 is measured
   alone, then again while the noisy service hammers its own tenant from more connections with
   no pacing, at 10x its limit and beyond (most answers 429). Goal: the quiet one's p99 stays
   within 2x of its solo figure.

Usage (repository root):
    scripts/setup-venv --bench && cargo build --release --bin byok
    apt-get install -y wrk nghttp2-client
    .venv/bin/python benches/tls_and_neighbours.py [--seconds 10] [--connections 32] [--pin]
Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

import argparse
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker_load as bl  # noqa: E402
import transit_compare as tc  # noqa: E402  (lua(): a wrk script of (path, body) pairs)

PAYLOAD = os.urandom(4096)
B64 = base64.b64encode(PAYLOAD).decode()
CTX = "record-1"


def certificate(directory):
    """A self-signed P-256 certificate for 127.0.0.1 (wrk and h2load do not verify)."""
    cert, key = os.path.join(directory, "api.crt"), os.path.join(directory, "api.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def serve(data_dir, api_port, lc_port, extra=()):
    proc = subprocess.Popen(
        bl.SERVER_PREFIX + [os.path.join(bl.ROOT, "target/release/byok"), "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{api_port}",
         "--localcloud-listen", f"127.0.0.1:{lc_port}", *extra],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BYOK_LOG": "warn"},
    )
    return proc


def wait_tls(url, seconds=20):
    """Waits until `url` answers (HTTP or HTTPS; the certificate is not checked)."""
    context = ssl._create_unverified_context()
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1, context=context)
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"no answer from {url}")


def stop(proc):
    proc.terminate()
    proc.wait()


def wrk_row(name, url, headers, requests, args, pid=None):
    """One wrk run; with the server's `pid`, also the server's CPU time per request (wrk shares
    the machine's cores, and over TLS it encrypts too: CPU per request is the server's own cost)."""
    before = bl.cpu_seconds(pid) if pid else None
    rate, total, lat, non_2xx = bl.wrk(url, tc.lua(headers, requests), args.seconds, args.connections)
    row = {"name": name, "rate": rate, "p50": lat["50"], "p99": lat["99"], "non_2xx": non_2xx}
    if pid:
        row["server_cpu_us_per_request"] = round((bl.cpu_seconds(pid) - before) / max(total, 1) * 1e6, 1)
    return row


def h2load_row(name, url, headers, body, args, h1):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
        data = f.name
    try:
        cmd = bl.LOAD_PREFIX + ["h2load", "-D", str(args.seconds), "-c", str(args.connections), "-t", "2", "-d", data]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        if h1:
            cmd.append("--h1")
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(data)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    failed = int(re.search(r"(\d+) failed", out).group(1))
    non_2xx = int(re.search(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", out).group(1))
    return {"name": name, "rate": rate, "mean": mean, "failed": failed, "non_2xx": non_2xx}


def tls_cost(args, out):
    rows = []
    directory = tempfile.mkdtemp(prefix="byok-tls-")
    cert, key = certificate(directory)
    data_dir = os.path.join(directory, "data")
    proc, api, lc, op, svc = bl.start_broker(data_dir)
    try:
        bl.onboard(api, lc, op, 1)
        t = "t00000"
        status, sealed = bl.http("POST", api + f"/v1/tenants/{t}/encrypt", {"plaintext": B64, "context": CTX}, svc)
        assert status == 200, sealed
        one = sealed["ciphertext"]
        api_port, lc_port = int(api.rsplit(":", 1)[1]), int(lc.rsplit(":", 1)[1])
        headers = {"Authorization": f"Bearer {svc}", "Content-Type": "application/json"}
        ops = [
            ("encrypt", f"/v1/tenants/{t}/encrypt", json.dumps({"plaintext": B64, "context": CTX})),
            ("decrypt", f"/v1/tenants/{t}/decrypt", json.dumps({"ciphertext": one, "context": CTX})),
        ]
        for name, path, body in ops:
            rows.append(wrk_row(f"byok {name}, HTTP", api, headers, [(path, body)], args, proc.pid))
    finally:
        stop(proc)
    proc = serve(data_dir, api_port, lc_port, ["--tls-cert", cert, "--tls-key", key])
    https = f"https://127.0.0.1:{api_port}"
    try:
        wait_tls(https + "/healthz")
        for name, path, body in ops:
            rows.append(wrk_row(f"byok {name}, HTTPS (HTTP/1.1)", https, headers, [(path, body)], args, proc.pid))
        h2 = []
        for name, path, body in ops:
            h2.append(h2load_row(f"byok {name}, HTTPS, h2load HTTP/1.1", https + path, headers, body, args, h1=True))
            h2.append(h2load_row(f"byok {name}, HTTPS, h2load HTTP/2", https + path, headers, body, args, h1=False))
        out["h2load"] = h2
    finally:
        stop(proc)

    ctx_b64 = base64.b64encode(CTX.encode()).decode()
    for tls in (False, True):
        port = bl.free_port()
        bao = os.path.join(os.path.dirname(sys.executable), "bao")
        cmd = [bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}", "-log-level=error"]
        if tls:
            cmd += ["-dev-tls", f"-dev-tls-cert-dir={directory}"]
        proc = subprocess.Popen(bl.SERVER_PREFIX + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        try:
            (wait_tls if tls else bl.wait_for)(url + "/v1/sys/health")
            vault = lambda method, path, body=None: bao_call(url, method, path, body)
            vault("POST", "/v1/sys/mounts/transit", {"type": "transit"})
            vault("POST", "/v1/transit/keys/acme", {"type": "aes256-gcm96", "derived": True})
            sealed = vault("POST", "/v1/transit/encrypt/acme", {"plaintext": B64, "context": ctx_b64})["data"]["ciphertext"]
            vh = {"X-Vault-Token": "root", "Content-Type": "application/json"}
            for name, path, body in [
                ("encrypt", "/v1/transit/encrypt/acme", {"plaintext": B64, "context": ctx_b64}),
                ("decrypt", "/v1/transit/decrypt/acme", {"ciphertext": sealed, "context": ctx_b64}),
            ]:
                rows.append(wrk_row(f"OpenBao {name}, {'HTTPS (HTTP/1.1)' if tls else 'HTTP'}", url, vh, [(path, json.dumps(body))], args, proc.pid))
        finally:
            stop(proc)
    shutil.rmtree(directory, ignore_errors=True)
    out["tls"] = rows


def bao_call(url, method, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"X-Vault-Token": "root", "content-type": "application/json"})
    with urllib.request.urlopen(req, context=ssl._create_unverified_context()) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def bl_ms(text):
    """wrk's latency ("784.00us", "1.89ms", "1.02s") in milliseconds."""
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def paced_lua(token, path, body, delay_ms):
    """wrk: each connection sends one request, then waits `delay_ms` before the next."""
    return f"""
request = function()
  return wrk.format("POST", {json.dumps(path)}, {{["Content-Type"]="application/json", ["Authorization"]="Bearer {token}"}}, {tc.lua_string(body)})
end
delay = function() return {delay_ms} end
"""


def neighbours(args, out):
    data_dir = tempfile.mkdtemp(prefix="byok-noisy-")
    proc, api, lc, op, _ = bl.start_broker(data_dir)
    try:
        bl.onboard(api, lc, op, 2)
    finally:
        stop(proc)
    api_port, lc_port = int(api.rsplit(":", 1)[1]), int(lc.rsplit(":", 1)[1])
    proc = serve(data_dir, api_port, lc_port, ["--rate-limit-per-identity", str(args.limit)])
    try:
        bl.wait_for(api + "/healthz")
        tokens = {}
        for t in ("t00000", "t00001"):
            status, made = bl.http("POST", api + "/v1/tokens", {"kind": "service", "tenants": [t]}, op)
            assert status == 201, made
            tokens[t] = made["token"]
        quiet, noisy = tokens["t00000"], tokens["t00001"]
        body = json.dumps({"plaintext": B64, "context": CTX})
        quiet_path, noisy_path = "/v1/tenants/t00000/encrypt", "/v1/tenants/t00001/encrypt"
        # The quiet service: 4 connections, each pausing 20 ms (≈ 200 requests/s, a fifth of
        # its limit at the default).
        quiet_lua = paced_lua(quiet, quiet_path, body, args.quiet_delay_ms)

        def run_quiet():
            rate, total, lat, non_2xx = bl.wrk(api, quiet_lua, args.seconds, 4, threads=1)
            return {"rate": rate, "requests": total, "p50": lat["50"], "p99": lat["99"], "non_2xx": non_2xx}

        if args.noisy_times:
            # Paced at about `noisy_times` its limit: each connection waits so that all of them
            # together send at least that many a second (wrk's delay() is whole milliseconds).
            delay = max(1, args.connections * 1000 // (args.limit * args.noisy_times))
            noisy_lua = paced_lua(noisy, noisy_path, body, delay)
        else:
            noisy_lua = tc.lua({"Authorization": f"Bearer {noisy}", "Content-Type": "application/json"}, [(noisy_path, body)])
        # Rounds of (alone, beside the noisy one): a p99 of ~1,500 requests moves with the
        # machine's other work, so the ratio is read per round and as the median.
        rounds = []
        for _ in range(args.rounds):
            solo = run_quiet()
            result = {}
            runner = threading.Thread(target=lambda: result.update(n=bl.wrk(api, noisy_lua, args.seconds + 2, args.connections, threads=1)))
            runner.start()
            time.sleep(1)
            beside = run_quiet()
            runner.join()
            rate, total, lat, non_2xx = result["n"]
            rounds.append({
                "quiet_solo": solo,
                "quiet_beside_noisy": beside,
                "p99_ratio": round(bl_ms(beside["p99"]) / bl_ms(solo["p99"]), 2),
                "noisy": {"rate": rate, "requests": total, "non_2xx": non_2xx, "accepted_per_s": (total - non_2xx) / (args.seconds + 2)},
            })
        ratios = sorted(r["p99_ratio"] for r in rounds)
        out["neighbours"] = {
            "limit": args.limit,
            "noisy_paced_at_times_limit": args.noisy_times or None,
            "rounds": rounds,
            "median_p99_ratio": ratios[len(ratios) // 2],
        }
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--limit", type=int, default=1000, help="--rate-limit-per-identity for the neighbours test")
    parser.add_argument("--quiet-delay-ms", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (quiet alone, quiet beside the noisy one)")
    parser.add_argument("--noisy-times", type=int, default=0,
                        help="pace the noisy service at about this many times its limit (0: as fast as it can)")
    parser.add_argument("--only", choices=["tls", "neighbours"])
    parser.add_argument("--pin", action="store_true",
                        help="run every server on CPU 0 and every load generator on CPU 1 (taskset), so that the client's own "
                             "TLS work is not charged to the server's throughput")
    args = parser.parse_args()
    if args.pin:
        if os.cpu_count() < 2 or not shutil.which("taskset"):
            sys.exit("--pin needs two CPUs and taskset (util-linux)")
        bl.SERVER_PREFIX[:] = ["taskset", "-c", "0"]
        bl.LOAD_PREFIX[:] = ["taskset", "-c", "1"]
    for tool in ("wrk", "h2load", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian packages: wrk, nghttp2-client, openssl)")
    out = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "pinned": args.pin}
    if args.only in (None, "tls"):
        tls_cost(args, out)
    if args.only in (None, "neighbours"):
        neighbours(args, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
