"""Open-loop load: POST pre-signed webhooks at a fixed rate, recording when each one left.

Run as its own process (`python -m bench.loadgen IN OUT --rate R`) so that its timing is not
disturbed by the stand-ins it is measuring against.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("requests", type=Path, help="JSON list of {headers, body}")
    parser.add_argument("results", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    args = parser.parse_args()
    requests = json.loads(args.requests.read_text())
    sent_at: list[float] = [0.0] * len(requests)
    statuses: list[int] = [0] * len(requests)
    client = httpx.Client(limits=httpx.Limits(max_connections=32), timeout=30)

    def post(index: int) -> None:
        request = requests[index]
        sent_at[index] = time.time()
        try:
            statuses[index] = client.post(
                args.url, content=request["body"].encode(), headers=request["headers"]
            ).status_code
        except httpx.HTTPError:
            statuses[index] = -1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for index in range(len(requests)):
            delay = start + index / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, index)
    client.close()
    args.results.write_text(json.dumps({"sent_at": sent_at, "statuses": statuses}))


if __name__ == "__main__":
    main()
