"""Runs schemathesis (`--checks all`) against a real `byok serve` (embedded localcloud) with an
active tenant, once with the operator token over the operator's routes and once with the service
token over the data plane. Exits non-zero on any failure or server error.

Usage: run.py BYOK_BINARY SCHEMATHESIS [--max-examples N]
The config with every check that is wrong for this API, and why, is
crates/byok-server/schemathesis.toml (passed with --config-file).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
CONFIG = os.path.join(ROOT, "crates", "byok-server", "schemathesis.toml")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    binary, schemathesis = sys.argv[1], sys.argv[2]
    max_examples = sys.argv[sys.argv.index("--max-examples") + 1] if "--max-examples" in sys.argv else "20"
    data_dir = tempfile.mkdtemp(prefix="byok-fuzz-")
    api_port, lc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{api_port}", "--localcloud-listen", f"127.0.0.1:{lc_port}"],
        stderr=open(os.path.join(data_dir, "serve.log"), "w"),
        env={**os.environ, "BYOK_LOG": "warn"},
    )
    api, lc = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{lc_port}"
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(api + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("byok serve did not start")
        read = lambda name: open(os.path.join(data_dir, name)).read().strip()
        op, svc = read("operator.token"), read("service.token")
        # An active tenant, `acme`, so that the fuzzer reaches past "unknown tenant": its
        # account, role and keys made by localcloud's fixture endpoint as the setup would.
        status, acct = http("POST", lc + "/_localcloud/accounts", {"name": "acme-corp"})
        assert status == 201, acct
        status, added = http("POST", api + "/v1/tenants", {"id": "acme", "location": "us", "account_id": acct["account_id"]}, op)
        assert status == 201, added
        ins = added["instructions"]
        fixture = {
            "roles": [{"name": ins["role_name"], "trust_policy": ins["trust_policy"]}],
            "keys": [{"region": r, "alias": ins["alias"], "policy": ins["key_policy"]} for r in ins["regions"]],
        }
        status, made = http("POST", lc + f"/_localcloud/accounts/{acct['account_id']}/fixture", fixture)
        assert status == 201, made
        status, verified = http("POST", api + "/v1/tenants/acme/verify", None, op)
        assert status == 200, verified

        failed = False
        data_plane = r"^/v1/tenants/\{id\}/(encrypt|decrypt|rewrap)"
        for name, token, selection in [
            ("service token, data plane", svc, ["--include-path-regex", data_plane]),
            ("operator token, everything else", op, ["--exclude-path-regex", data_plane]),
        ]:
            print(f"== schemathesis: {name}", flush=True)
            cmd = [
                schemathesis, "--config-file", CONFIG, "run", api + "/openapi.json",
                "--checks", "all", "-H", f"Authorization: Bearer {token}",
                "--max-examples", max_examples, "--workers", "1", "--seed", "1",
                *selection,
            ]
            failed |= subprocess.run(cmd, env={**os.environ, "BYOK_FUZZ_TENANT": "acme"}).returncode != 0
        sys.exit(1 if failed else 0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
