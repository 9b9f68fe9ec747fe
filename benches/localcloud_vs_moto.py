#!/usr/bin/env python3
"""KMS Encrypt/Decrypt throughput: localcloud against moto_server, in one run, on one machine.

Two measurements, each on both servers back to back:
  1. boto3, one client in one process: Encrypt + Decrypt pairs of 4 KiB for --seconds.
     This is bound by boto3's own per-call cost, so it shows what an SDK user sees.
  2. wrk replaying one signed Encrypt (then Decrypt) request on --connections connections for
     --seconds: the servers' own capacity (the PRODUCT.md figure).

Usage (from the repository root, after `scripts/setup-venv --bench` and
`cargo build --release -p localcloud`; wrk from Debian's `wrk` package):
    .venv/bin/python benches/localcloud_vs_moto.py [--seconds 10] [--connections 32]
Prints a Markdown table for BENCHMARKS.md. Traffic goes to 127.0.0.1 only and stops by itself.
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "eu-west-1"
PAYLOAD = os.urandom(4096)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # answering, even with an error
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server at {url} did not start")


def start_localcloud():
    port = free_port()
    binary = os.path.join(ROOT, "target/release/localcloud")
    if not os.path.exists(binary):
        sys.exit("build it first: cargo build --release -p localcloud")
    proc = subprocess.Popen([binary, "serve", "--in-memory", "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    wait_up(endpoint + "/_localcloud/health")
    req = urllib.request.Request(endpoint + "/_localcloud/accounts", data=b'{"name":"bench"}', method="POST")
    account = json.loads(urllib.request.urlopen(req).read())
    return proc, endpoint, Credentials(account["access_key_id"], account["secret_access_key"])


def start_moto():
    port = free_port()
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([moto, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    wait_up(endpoint + "/moto-api/")
    return proc, endpoint, Credentials("AKIDMOTOBENCH", "secret")


def kms_client(endpoint, creds):
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )


def boto3_rate(endpoint, creds, key_id, seconds):
    kms = kms_client(endpoint, creds)
    ctx = {"tenant": "bench"}
    ops = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        blob = kms.encrypt(KeyId=key_id, Plaintext=PAYLOAD, EncryptionContext=ctx)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == PAYLOAD
        ops += 2
    return ops / (time.perf_counter() - started)


def signed(endpoint, creds, target, body):
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"X-Amz-Target": f"TrentService.{target}", "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(creds, "kms", REGION).add_auth(request)
    return dict(request.headers.items()), body


def wrk_rate(endpoint, creds, target, body, seconds, connections):
    headers, body = signed(endpoint, creds, target, body)
    lua = "wrk.method = 'POST'\nwrk.body = " + json.dumps(body) + "\n"
    for k, v in headers.items():
        if k.lower() != "host":
            lua += f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script, endpoint + "/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    return rate, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package: wrk)")

    results = {}
    for name, start in [("localcloud", start_localcloud), ("moto_server", start_moto)]:
        proc, endpoint, creds = start()
        try:
            kms = kms_client(endpoint, creds)
            key_id = kms.create_key(Description="bench")["KeyMetadata"]["Arn"]
            ctx = {"tenant": "bench"}
            blob = kms.encrypt(KeyId=key_id, Plaintext=PAYLOAD, EncryptionContext=ctx)["CiphertextBlob"]
            enc_body = json.dumps({"KeyId": key_id, "Plaintext": base64.b64encode(PAYLOAD).decode(), "EncryptionContext": ctx})
            dec_body = json.dumps({"CiphertextBlob": base64.b64encode(blob).decode(), "EncryptionContext": ctx})
            results[name] = {
                "boto3": boto3_rate(endpoint, creds, key_id, args.seconds),
                "wrk_encrypt": wrk_rate(endpoint, creds, "Encrypt", enc_body, args.seconds, args.connections),
                "wrk_decrypt": wrk_rate(endpoint, creds, "Decrypt", dec_body, args.seconds, args.connections),
            }
        finally:
            proc.terminate()
            proc.wait()

    lc, moto = results["localcloud"], results["moto_server"]
    print(f"| measurement (4 KiB, {args.seconds} s each) | localcloud | moto_server | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| boto3, 1 client, Encrypt+Decrypt ops/s | {lc['boto3']:,.0f} | {moto['boto3']:,.0f} | {lc['boto3'] / moto['boto3']:.1f}x |")
    for op in ["encrypt", "decrypt"]:
        (lr, le), (mr, me) = lc[f"wrk_{op}"], moto[f"wrk_{op}"]
        print(f"| wrk -t2 -c{args.connections}, one signed {op.title()}, requests/s | {lr:,.0f} | {mr:,.0f} | {lr / mr:.1f}x |")
        if le or me:
            print(f"|   non-2xx answers | {le} | {me} | |")


if __name__ == "__main__":
    main()
