"""A PMS's endpoint for status webhooks, as a test runs one: a real HTTP server in a thread that
verifies each request's Standard Webhooks signature with svix and keeps what it verified; it
answers each request with the next of `answers` (then 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from svix.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + "c3RhdHVzLXdlYmhvb2stc2VjcmV0LWZvci10ZXN0cw=="


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)
    verified: list[dict[str, Any]] = field(default_factory=list)
    # (webhook-id, the status answered) of every request, signed or not.
    requests: list[tuple[str, int]] = field(default_factory=list)
    refused: int = 0

    def types(self) -> list[str]:
        return [body["type"] for body in self.verified]


@contextmanager
def receiving(answers: list[int] | None = None, secret: str = SECRET) -> Iterator[Receiver]:
    lock = threading.Lock()
    receiver = Receiver("", list(answers or []))
    signer = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            with lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                try:
                    body = signer.verify(raw, headers)
                except WebhookVerificationError:
                    receiver.refused += 1
                    status = 400
                else:
                    if 200 <= status < 300:
                        receiver.verified.append(body)
                receiver.requests.append((headers.get("webhook-id", ""), status))
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/keycourier/status"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
