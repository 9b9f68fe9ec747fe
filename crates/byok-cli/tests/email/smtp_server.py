"""A real SMTP server (aiosmtpd) on loopback for the email test: each message received is
parsed with Python's email package and written to OUT_DIR as JSON (envelope, headers, the text
and HTML parts).

Usage: smtp_server.py PORT OUT_DIR
"""

import asyncio
import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller

PORT, OUT = int(sys.argv[1]), sys.argv[2]


class Save:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "content_type": message.get_content_type(),
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
        }
        path = os.path.join(OUT, f"{time.time_ns()}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


controller = Controller(Save(), hostname="127.0.0.1", port=PORT)
controller.start()
try:
    asyncio.get_event_loop().run_forever()
finally:
    controller.stop()
