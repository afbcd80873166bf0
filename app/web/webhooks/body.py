"""Reading a webhook's raw body, refusing it past a size limit before it is all in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from app.errors import BodyTooLarge

log = logging.getLogger(__name__)


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def read_or_refuse(
    request: Request, limit: int, answer: Callable[[int, str], JSONResponse]
) -> bytes | JSONResponse:
    """The body, or the answer that refuses it: 413 past `limit` bytes, 400 when the client
    went away mid-body. `answer(status, outcome)` builds the endpoint's own response."""
    try:
        return await read_capped(request, limit)
    except BodyTooLarge:
        log.warning("%s refused: body over %d bytes", request.url.path, limit)
        return answer(413, "too_large")
    except ClientDisconnect:
        return answer(400, "client_disconnected")
