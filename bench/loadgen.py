"""Open-loop load: POST pre-signed webhooks at a fixed rate, recording when each one left.

Run as its own process (`python -m bench.loadgen IN OUT --rate R`) so that its timing is not
disturbed by the stand-ins it is measuring against. It plays Seam's side, which in production
runs on Seam's machines: on this one it shares the cores with what it measures, so it is kept
lean (asyncio, pre-encoded requests, HTTP/1.1 keep-alive; ~0.1 ms of CPU a request where an
HTTP client library's took several times that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

CONNECTIONS = 32
TIMEOUT_SECONDS = 30.0
IDLE_SECONDS = 2.0


def encode(url: str, headers: dict[str, str], body: bytes) -> bytes:
    """One POST as it goes on the wire."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_status(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The response's status, and whether the server keeps the connection (body read)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            keep = False
    await reader.readexactly(length)
    return status, keep


class Connections:
    """Idle keep-alive connections to one server, opened as needed. One idle past
    IDLE_SECONDS is not used again (the server may have closed it: uvicorn does after 5 s), and
    a request that finds its kept connection closed is sent once more on a new one, as an HTTP
    client library would."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, payload: bytes) -> int:
        kept = self._kept()
        if kept is not None:
            try:
                return await self._exchange(*kept, payload)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # closed by the server while idle: once more, on a new connection
        return await self._exchange(*await asyncio.open_connection(self.host, self.port), payload)

    def _kept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self.idle:
            since, reader, writer = self.idle.pop()
            if now - since < IDLE_SECONDS:
                return reader, writer
            writer.close()
        return None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
    ) -> int:
        try:
            writer.write(payload)
            status, keep = await asyncio.wait_for(read_status(reader), TIMEOUT_SECONDS)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()
        return status


async def run(url: str, payloads: list[bytes], rate: float) -> tuple[list[float], list[int]]:
    parts = urlsplit(url)
    connections = Connections(parts.hostname or "127.0.0.1", parts.port or 80)
    sent_at = [0.0] * len(payloads)
    statuses = [0] * len(payloads)
    slots = asyncio.Semaphore(CONNECTIONS)

    async def post(index: int) -> None:
        async with slots:
            sent_at[index] = time.time()
            try:
                statuses[index] = await connections.post(payloads[index])
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                statuses[index] = -1

    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for index in range(len(payloads)):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(index)))
    await asyncio.gather(*tasks)
    return sent_at, statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("requests", type=Path, help="JSON list of {headers, body}")
    parser.add_argument("results", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    args = parser.parse_args()
    requests = json.loads(args.requests.read_text())
    payloads = [encode(args.url, r["headers"], r["body"].encode()) for r in requests]
    sent_at, statuses = asyncio.run(run(args.url, payloads, args.rate))
    args.results.write_text(json.dumps({"sent_at": sent_at, "statuses": statuses}))


if __name__ == "__main__":
    main()
