"""The operator's set-up and health commands of `keycourier`: register-webhook, doctor,
worker-health (app/ops/cli.py wires them in)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from app.settings import load_settings
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
    from app.adapters.seam_api import register_webhook as create
    from app.errors import CheckFailed
    from app.events.kinds import SUBSCRIBED_EVENT_TYPES

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
    lines = []
    for workspace in targets:
        try:
            hook = create(settings, args.url, SUBSCRIBED_EVENT_TYPES, workspace)
        except CheckFailed as exc:
            where = f" (workspace {workspace.name})" if workspace else ""
            print(f"keycourier: {exc}{where}", file=sys.stderr)
            return 1
        what = f" of workspace {workspace.name} ({workspace.workspace_id})" if workspace else ""
        print(f"created Seam webhook {hook.webhook_id}{what} for {hook.url}")
        variable = workspace.webhook_secret_env if workspace else "SEAM_WEBHOOK_SECRET"
        lines.append(f"{variable}={hook.secret}")
    print(f"events: {', '.join(SUBSCRIBED_EVENT_TYPES)}")
    print("set this on the web process, then restart it:" if len(lines) == 1 else "set these "
          "on the web process, then restart it:")  # fmt: skip
    for line in lines:
        print(line)
    return 0


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
