"""Runs schemathesis (`--checks all`) against a real `byok serve` (embedded localcloud) with an
active tenant, once with the operator token over the operator's routes and once with the service
token over the data plane. Exits non-zero on any failure or server error.

Usage: run.py BYOK_BINARY SCHEMATHESIS [--max-examples N]
The config with every check that is wrong for this API, and why, is
crates/byok-server/schemathesis.toml (passed with --config-file).
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
CONFIG = os.path.join(ROOT, "crates", "byok-server", "schemathesis.toml")
sys.path.insert(0, os.path.join(ROOT, "benches"))
from broker_load import onboard_one, start_broker  # noqa: E402  (starting byok serve, onboarding through localcloud's fixture)


def main():
    binary, schemathesis = sys.argv[1], sys.argv[2]
    max_examples = sys.argv[sys.argv.index("--max-examples") + 1] if "--max-examples" in sys.argv else "20"
    data_dir = tempfile.mkdtemp(prefix="byok-fuzz-")
    # Webhook endpoints the fuzzer adds may point only at this machine: deliveries stay on loopback.
    os.environ["BYOK_WEBHOOK_ALLOWED_HOSTS"] = "localhost,127.0.0.1"
    proc, api, lc, op, svc = start_broker(data_dir, binary=binary)
    try:
        # An active tenant, `acme`, so that the fuzzer reaches past "unknown tenant".
        onboard_one(api, lc, op, 0, tenant="acme")

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
                # One worker: with several, Hypothesis' lambda-source parsing in threads fails on
                # Python 3.11 ("AST constructor recursion depth mismatch"), a runtime error.
                "--max-examples", max_examples, "--workers", "1", "--seed", "1",
                *selection,
            ]
            failed |= subprocess.run(cmd).returncode != 0
        sys.exit(1 if failed else 0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
