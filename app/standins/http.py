"""The part every stand-in shares: a threaded HTTP server that records, delays and fails on cue.

A stand-in is a local server that speaks a provider's wire format closely enough for the
provider's own SDK to talk to it. Subclasses implement `authorize` and `route`; this base
class parses and records each request, sleeps `latency` seconds, serves queued faults, and
writes JSON answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[str]] | None = None
    # Wall-clock time the request arrived (time.time()), for latency measurements.
    received_at: float = field(default_factory=time.time)

    def param(self, name: str) -> str | None:
        """A single-valued parameter, from the JSON body, the form body or the query string."""
        values = self.param_list(name)
        return values[0] if values else None

    def param_list(self, name: str) -> list[str] | None:
        """A list parameter; None when absent. Repeated query keys make a list, as do JSON
        arrays; an empty query value (`name=`) is how Seam's SDK sends an empty array."""
        if isinstance(self.json, dict) and name in self.json:
            value = self.json[name]
            if value is None:
                return None
            items = value if isinstance(value, list) else [value]
            return [item if isinstance(item, str) else json.dumps(item) for item in items]
        for source in (self.form, self.query):
            if source and name in source:
                return [v for v in source[name] if v != ""]
        return None


@dataclass(frozen=True)
class Answer:
    """What a stand-in sends back: `body` is JSON-encoded unless it is None (empty body)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    remaining: int
    answer: Answer
    method: str | None
    path: str | None

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and request.method != self.method.upper():
            return False
        return self.path is None or request.path.endswith(self.path)


class StandinServer:
    """Base of the stand-ins: start/stop (or `with`), `.url`, `.requests`, `.latency`, faults."""

    name = "standin"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._observers: list[Callable[[RecordedRequest, Answer], None]] = []
        self._stopping = threading.Event()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        self.latency: float = 0.0
        # Seconds to hold the answer after the request was acted on: the provider accepted
        # it, but its reply is late (a client timeout then leaves the outcome unknown).
        self.reply_delay: float = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _QuietServer((self._host, self._port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping out their latency
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def connections(self) -> int:
        """How many connections clients have opened to it so far."""
        return self._server.accepted if self._server is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    # -- recording and faults --------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(
        self,
        times: int,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` and JSON `body`.

        A request matches when its method equals `method` and its path ends with `path`
        (either left out matches anything). Faults are served before authentication.
        """
        answer = Answer(status, body, dict(headers or {}))
        with self._lock:
            self._faults.append(_Fault(times, answer, method, path))

    def observe(self, observer: Callable[[RecordedRequest, Answer], None]) -> None:
        """Call `observer(request, answer)` with every answer given from now on (faults and
        401s included), e.g. to check each one against the provider's API description."""
        with self._lock:
            self._observers.append(observer)

    def _take_fault(self, request: RecordedRequest) -> Answer | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(request):
                    fault.remaining -= 1
                    return fault.answer
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    # -- what subclasses provide -----------------------------------------------------------

    def authorize(self, request: RecordedRequest) -> Answer | None:
        """None when the request may proceed, else the provider's 401 answer."""
        return None

    def route(self, request: RecordedRequest) -> Answer:
        raise NotImplementedError

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> Answer:
        answer = self._answer(request)
        with self._lock:
            observers = list(self._observers)
        for observer in observers:
            observer(request, answer)
        return answer

    def _answer(self, request: RecordedRequest) -> Answer:
        with self._lock:
            self._requests.append(request)
        if self.latency > 0:
            self._stopping.wait(self.latency)
        fault = self._take_fault(request)
        if fault is not None:
            return fault
        denied = self.authorize(request)
        if denied is not None:
            return denied
        answer = self.route(request)
        if self.reply_delay > 0:
            self._stopping.wait(self.reply_delay)
        return answer


class _QuietServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: clients that open a connection per request
    # (SendGrid's SDK) were reset under load, an artefact of the stand-in, not of the provider.
    request_queue_size = 1024
    accepted = 0  # connections, counted by the one thread that accepts them

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g., after its own timeout) is not worth a traceback."""


def _parse(handler: BaseHTTPRequestHandler) -> RecordedRequest:
    parts = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length > 0 else b""
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    parsed_json: Any = None
    form: dict[str, list[str]] | None = None
    if body and content_type == "application/json":
        try:
            parsed_json = json.loads(body)
        except ValueError:
            parsed_json = None
    elif content_type == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return RecordedRequest(
        method=handler.command.upper(),
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers={k.lower(): v for k, v in handler.headers.items()},
        body=body,
        json=parsed_json,
        form=form,
    )


def _make_handler(standin: StandinServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"keycourier-{standin.name}"
        # Keep-alive, as the real APIs do: a new connection per request would measure the
        # stand-in's TCP set-up, not keycourier. Headers and body go out in two writes, so
        # Nagle's algorithm must be off or every answer waits for a delayed ACK (~40 ms).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            try:
                answer = standin._dispatch(_parse(self))
            except Exception as exc:
                # A stand-in bug must not look like a dropped connection.
                log.exception("%s failed on %s %s", standin.name, self.command, self.path)
                crash = {"type": "standin_error", "message": type(exc).__name__}
                answer = Answer(500, {"error": crash, "ok": False})
            payload = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            if answer.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default per-request line on stderr."""

    return Handler
