#!/usr/bin/env python3
"""Parse a message with Python's `email` package (a MIME reader nobody here wrote) and
print what it sees as JSON: headers, bodies, attachments (name, type, bytes as hex).

Usage: parse_mime.py FILE   (leading x-sender/x-receiver envelope lines are skipped)
"""
import email
import email.policy
import json
import sys

with open(sys.argv[1], "rb") as f:
    raw = f.read()
lines = raw.split(b"\r\n")
while lines and lines[0].lower().startswith((b"x-sender:", b"x-receiver:")):
    lines.pop(0)
msg = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)

text = msg.get_body(preferencelist=("plain",))
html = msg.get_body(preferencelist=("html",))
out = {
    "defects": [str(d) for d in msg.defects],
    "subject": str(msg["subject"]) if msg["subject"] is not None else None,
    "from": str(msg["from"]) if msg["from"] is not None else None,
    "to": str(msg["to"]) if msg["to"] is not None else None,
    "cc": str(msg["cc"]) if msg["cc"] is not None else None,
    "bcc": msg["bcc"] is not None,
    "header_names": [k.lower() for k in msg.keys()],
    "importance": msg["importance"],
    "x_priority": msg["x-priority"],
    "text": text.get_content() if text is not None else None,
    "html": html.get_content() if html is not None else None,
    "attachments": [
        {
            "name": part.get_filename(),
            "type": part.get_content_type(),
            "hex": (part.get_payload(decode=True) or b"").hex(),
        }
        for part in msg.iter_attachments()
    ],
}
for part in msg.walk():
    out["defects"] += [str(d) for d in part.defects]
print(json.dumps(out))
