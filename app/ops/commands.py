"""The operator's set-up and health commands of `keycourier`: register-webhook, doctor,
worker-health (app/ops/cli.py wires them in)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from app.settings import Settings, load_settings
from app.settings.workspaces import SeamWorkspace


def add_commands(commands: Any) -> None:
    register = commands.add_parser(
        "register-webhook", help="create the Seam webhook and print the secret to set"
    )
    register.add_argument("--url", required=True, help="https://YOUR-HOST/webhooks/seam")
    register.add_argument(
        "--workspace",
        metavar="ID",
        help="only this workspace of SEAM_WORKSPACES_FILE (default: every workspace it lists, "
        "each at https://YOUR-HOST/webhooks/seam/ID)",
    )
    register.set_defaults(run=register_webhook)

    doctor = commands.add_parser("doctor", help="check every setting against the real services")
    doctor.set_defaults(run=doctor_command)

    health = commands.add_parser(
        "worker-health", help="exit 0 if this machine's worker sent a heartbeat recently"
    )
    health.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    health.set_defaults(run=worker_health)


def register_webhook(args: argparse.Namespace) -> int:
    """One webhook per workspace of SEAM_WORKSPACES_FILE (or the one of SEAM_API_KEY), each made
    with its own key once that key is seen to open that very workspace. A workspace that fails
    does not stop the others: every secret Seam showed is printed, then the failures."""
    from app.adapters.seam_api import webhook_url
    from app.errors import CheckFailed

    settings = load_settings()
    listed = settings.seam_workspaces
    if args.workspace is not None:
        listed = tuple(w for w in listed if w.workspace_id == args.workspace)
        if not listed:
            print(
                f"keycourier: workspace {args.workspace} is not in SEAM_WORKSPACES_FILE",
                file=sys.stderr,
            )
            return 1
    targets: list[SeamWorkspace | None] = list(listed) or [None]
    if targets == [None]:
        settings.require("SEAM_API_KEY")
    try:
        # A URL Seam cannot call is refused before anything is made.
        webhook_url(args.url, targets[0].workspace_id if targets[0] else None)
    except CheckFailed as exc:
        print(f"keycourier: {exc}", file=sys.stderr)
        return 1
    lines, failures = [], []
    for workspace in targets:
        try:
            lines.append(_register_one(settings, args.url, workspace))
        except CheckFailed as exc:
            where = f" (workspace {workspace.name}, {workspace.workspace_id})" if workspace else ""
            failures.append(f"keycourier: {exc}{where}")
    if lines:
        from app.events.kinds import SUBSCRIBED_EVENT_TYPES

        print(f"events: {', '.join(SUBSCRIBED_EVENT_TYPES)}")
        print("set this on the web process, then restart it:" if len(lines) == 1 else "set these "
              "on the web process, then restart it:")  # fmt: skip
        for line in lines:
            print(line)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


def _register_one(settings: Settings, url: str, workspace: SeamWorkspace | None) -> str:
    """Create one workspace's webhook; returns the `VARIABLE=secret` line to set."""
    from app.adapters.seam_api import check_workspace
    from app.adapters.seam_api import register_webhook as create
    from app.errors import CheckFailed
    from app.events.kinds import SUBSCRIBED_EVENT_TYPES

    if workspace is not None:
        opened = check_workspace(settings, workspace)
        if opened.workspace_id != workspace.workspace_id:
            raise CheckFailed(
                f"{workspace.api_key_env} opens workspace {opened.workspace_id}, not "
                f"{workspace.workspace_id}: no webhook made"
            )
    hook = create(settings, url, SUBSCRIBED_EVENT_TYPES, workspace)
    what = f" of workspace {workspace.name} ({workspace.workspace_id})" if workspace else ""
    print(f"created Seam webhook {hook.webhook_id}{what} for {hook.url}")
    variable = workspace.webhook_secret_env if workspace else "SEAM_WEBHOOK_SECRET"
    return f"{variable}={hook.secret}"


def doctor_command(args: argparse.Namespace) -> int:
    from app.ops.doctor import Level, diagnose, format_findings

    findings = diagnose(load_settings())
    print(format_findings(findings))
    return 1 if any(finding.level is Level.FAIL for finding in findings) else 0


def worker_health(args: argparse.Namespace) -> int:
    """Every worker process `keycourier worker` runs here has touched its heartbeat lately."""
    from app.ops.cores import worker_processes
    from app.ops.supervise import heartbeat_files

    settings = load_settings()
    oldest = 0.0
    for heartbeat in heartbeat_files(settings.heartbeat_file, worker_processes(settings)):
        try:
            age = time.time() - heartbeat.stat().st_mtime
        except FileNotFoundError:
            print(f"no worker heartbeat yet ({heartbeat} is missing)", file=sys.stderr)
            return 1
        if age > args.max_age:
            print(f"the worker's last heartbeat was {age:.0f} s ago ({heartbeat})", file=sys.stderr)
            return 1
        oldest = max(oldest, age)
    print(f"worker alive: last heartbeat {oldest:.0f} s ago")
    return 0
