"""The status webhooks page (/ops/webhooks, admin): the latest webhooks sent to the PMS
(STATUS_WEBHOOK_URL), each with its state, every try (time, the PMS's status code or why there
was none) and when the next one is due; only those of the user's scope."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint


def page(console: Console) -> Endpoint:
    async def webhooks(request: Request) -> Response:
        found = await console.run(console.ledger.recent_status_webhooks, console.scope(request))
        return console.render(
            request,
            "webhooks.html",
            {
                "hooks": found,
                "configured": console.settings.status_webhook_url is not None,
            },
        )

    return webhooks
