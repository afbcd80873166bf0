"""POST /webhooks/seam/<workspace_id>: one webhook per workspace of SEAM_WORKSPACES_FILE, each
verified with its own workspace's secret (app/web/webhooks/seam.py does the rest).

A workspace the file does not list is a 404, recorded nowhere, like any other unknown URL.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.intake.ingest import EventWriter
from app.settings.workspaces import SeamWorkspace
from app.web.webhooks.seam import SeamWebhookEndpoint

PATH = "/webhooks/seam/{workspace_id}"


class WorkspaceWebhooks:
    def __init__(self, workspaces: Sequence[SeamWorkspace], writer: EventWriter) -> None:
        self._endpoints = {
            workspace.workspace_id: SeamWebhookEndpoint(
                workspace.require_webhook_secret(), writer, workspace.workspace_id
            )
            for workspace in workspaces
        }

    async def handle(self, request: Request) -> Response:
        endpoint = self._endpoints.get(str(request.path_params.get("workspace_id", "")))
        if endpoint is None:
            return JSONResponse({"outcome": "unknown_workspace"}, status_code=404)
        return await endpoint.handle(request)
