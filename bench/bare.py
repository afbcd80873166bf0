"""The baseline: a bare Starlette POST endpoint, served exactly like `keycourier serve`.

Same uvicorn call, same logging set-up, same process model: the difference between this and
POST /webhooks/seam is the work keycourier does per request.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.observability.logs import configure_logging
from app.settings import load_settings


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"outcome": "received"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure_logging(load_settings())
    app = Starlette(routes=[Route("/webhooks/seam", accept, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        proxy_headers=True,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
