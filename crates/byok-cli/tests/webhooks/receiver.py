"""A customer's webhook receiver, as a customer would write one with the `standardwebhooks`
library: every request's signature is verified with the secret(s) in SECRETS_FILE (one per
line, re-read on each request); events are de-duplicated by their id. It misbehaves on purpose:
the first request is answered 500, the second only after SLOW seconds (longer than byok waits),
then it recovers; with SLOW below 0 it behaves from the start. Each request is logged as a JSON
line to LOG_FILE.

Usage: receiver.py PORT SECRETS_FILE LOG_FILE SLOW
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

PORT, SECRETS, LOG, SLOW = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
lock = threading.Lock()
state = {"requests": 0, "seen": set()}


def verified(body, headers):
    for secret in open(SECRETS).read().split():
        try:
            Webhook(secret).verify(body, headers)
            return True
        except Exception:  # noqa: BLE001 (any failure is "not this secret")
            continue
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            state["requests"] += 1
            n = state["requests"]
        ok = verified(body, headers)
        event_id = headers.get("webhook-id")
        if SLOW >= 0 and n == 1:
            outcome = "failed"
        elif SLOW >= 0 and n == 2:
            outcome = "slow"
        else:
            with lock:
                outcome = "duplicate" if event_id in state["seen"] else "accepted"
                state["seen"].add(event_id)
        with lock, open(LOG, "a") as log:
            log.write(json.dumps({"n": n, "id": event_id, "type": json.loads(body).get("type"), "checkpoint": (json.loads(body).get("data") or {}).get("checkpoint"), "audit_seq": (json.loads(body).get("data") or {}).get("audit_seq"), "verified": ok, "outcome": outcome, "signatures": headers.get("webhook-signature", "").count("v1,"), "missing": (json.loads(body).get("data") or {}).get("missing"), "seqs": [e.get("seq") for e in ((json.loads(body).get("data") or {}).get("entries") or [])]}) + "\n")
        if outcome == "failed":
            self.send_response(500)
        elif outcome == "slow":
            time.sleep(SLOW)
            self.send_response(200)
        else:
            self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
