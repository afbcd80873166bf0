"""`keycourier doctor`: every setting checked against the service it names.

Each check answers ok, warn (works, but probably not what you want in production) or fail
(keycourier cannot do its job), with what is wrong and how to fix it. Nothing printed holds a
secret: provider errors are reduced to their status and code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import httpx

from app.adapters import seam_api, sendgrid_email, twilio_sms
from app.errors import BrokerUnavailable, CheckFailed, ConfigError
from app.messages.check import check_configured
from app.ops.ledger_state import State, ledger_state
from app.settings import Settings
from app.settings.workspaces import SeamWorkspace


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    area: str
    level: Level
    what: str
    fix: str | None = None


def diagnose(settings: Settings) -> list[Finding]:
    """Every finding, in the order an operator would fix them."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(settings))
    return findings


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.level.value:<4}  {finding.area}: {finding.what}")
        if finding.fix:
            lines.append(f"      fix: {finding.fix}")
    failed = sum(f.level is Level.FAIL for f in findings)
    warned = sum(f.level is Level.WARN for f in findings)
    lines.append(
        f"{failed} problem(s), {warned} warning(s)" if failed or warned else "all checks passed"
    )
    return "\n".join(lines)


def _seam(settings: Settings) -> Iterator[Finding]:
    yield from _seam_workspaces(settings)
    if settings.seam_api_key is None and settings.seam_workspaces:
        return  # every workspace has its own key
    if settings.seam_api_key is None:
        yield Finding(
            "seam", Level.FAIL, "SEAM_API_KEY is not set", "set it to an API key from Seam Console"
        )
        return
    try:
        workspace = seam_api.check_workspace(settings)
    except CheckFailed as exc:
        yield Finding("seam", Level.FAIL, str(exc), _seam_fix(exc, settings))
        return
    kind = "a sandbox" if workspace.is_sandbox else "a production"
    level = Level.WARN if workspace.is_sandbox else Level.OK
    fix = "use a production workspace's key to reach real locks" if workspace.is_sandbox else None
    yield Finding("seam", level, f"SEAM_API_KEY opens {kind} workspace: {workspace.name}", fix)


def _seam_fix(exc: CheckFailed, settings: Settings) -> str:
    """Seam that cannot be reached is a network problem, not a key to replace."""
    if _unreachable(exc):
        endpoint = (
            ", and SEAM_ENDPOINT (unset it to use Seam's own API)"
            if settings.seam_endpoint
            else " (a proxy or firewall between here and Seam's API?)"
        )
        return f"Seam did not answer: check this machine's network{endpoint}; the key was not tried"
    return (
        "create an API key in Seam Console (Developer > API Keys) and set SEAM_API_KEY; "
        "check SEAM_ENDPOINT if you set it"
    )


def _unreachable(exc: CheckFailed) -> bool:
    return isinstance(exc.__cause__, httpx.TransportError) or str(exc).startswith("cannot reach")


def _seam_workspaces(settings: Settings) -> Iterator[Finding]:
    """Each workspace of SEAM_WORKSPACES_FILE: its key opens it, its webhook is signed."""
    for workspace in settings.seam_workspaces:
        area = f"seam {workspace.name}"
        try:
            found = seam_api.check_workspace(settings, workspace)
        except CheckFailed as exc:
            fix = _seam_fix(exc, settings) if _unreachable(exc) else (
                f"set {workspace.api_key_env} to an API key of workspace "
                f"{workspace.workspace_id} (Seam Console > Developer > API Keys)"
            )  # fmt: skip
            yield Finding(area, Level.FAIL, str(exc), fix)
            continue
        if found.workspace_id != workspace.workspace_id:
            yield Finding(
                area,
                Level.FAIL,
                f"{workspace.api_key_env} opens workspace {found.workspace_id} ({found.name}), "
                f"not {workspace.workspace_id}",
                f"set {workspace.api_key_env} to a key of workspace {workspace.workspace_id}, or "
                "fix its id in SEAM_WORKSPACES_FILE",
            )
            continue
        kind = "sandbox" if found.is_sandbox else "production"
        yield Finding(
            area,
            Level.WARN if found.is_sandbox else Level.OK,
            f"{workspace.api_key_env} opens {kind} workspace {found.name}",
        )
        yield from _workspace_webhook(settings, workspace)


def _workspace_webhook(settings: Settings, workspace: SeamWorkspace) -> Iterator[Finding]:
    area = f"webhook {workspace.name}"
    register = (
        "run `keycourier register-webhook --url https://YOUR-HOST --workspace "
        f"{workspace.workspace_id}`"
    )
    if workspace.webhook_secret is None:
        yield Finding(area, Level.FAIL, f"{workspace.webhook_secret_env} is not set", register)
        return
    try:
        urls = seam_api.webhook_urls_for_secret(settings, workspace)
    except CheckFailed as exc:
        yield Finding(area, Level.WARN, f"could not list Seam's webhooks: {exc}")
        return
    path = f"/webhooks/seam/{workspace.workspace_id}"
    if urls is None:
        yield Finding(area, Level.OK, f"{workspace.webhook_secret_env} is set (Seam shows none)")
    elif any(url.rstrip("/").endswith(path) for url in urls):
        yield Finding(area, Level.OK, f"{workspace.webhook_secret_env} signs {', '.join(urls)}")
    else:
        yield Finding(
            area,
            Level.FAIL,
            f"no webhook of this workspace at .../{path.lstrip('/')} is signed with "
            f"{workspace.webhook_secret_env}: its events will be refused with 400",
            register,
        )


def _webhook_secret(settings: Settings) -> Iterator[Finding]:
    register = "run `keycourier register-webhook --url https://YOUR-HOST/webhooks/seam`"
    if settings.seam_webhook_secret is None and settings.seam_workspaces:
        return  # every workspace has its own webhook (checked with its key above)
    if settings.seam_webhook_secret is None:
        yield Finding("webhook", Level.FAIL, "SEAM_WEBHOOK_SECRET is not set", register)
        return
    if settings.seam_api_key is None:
        return
    try:
        urls = seam_api.webhook_urls_for_secret(settings)
    except CheckFailed as exc:
        yield Finding("webhook", Level.WARN, f"could not list Seam's webhooks: {exc}")
        return
    if urls is None:
        yield Finding("webhook", Level.OK, "SEAM_WEBHOOK_SECRET is set (Seam shows no secrets)")
    elif urls:
        yield Finding("webhook", Level.OK, f"SEAM_WEBHOOK_SECRET signs {', '.join(urls)}")
    else:
        yield Finding(
            "webhook",
            Level.FAIL,
            "no webhook in this Seam workspace is signed with SEAM_WEBHOOK_SECRET: "
            "every webhook will be refused with 400",
            f"{register}, or copy the secret of the existing webhook from Seam Console",
        )


def _twilio(settings: Settings) -> Iterator[Finding]:
    if not (settings.twilio_account_sid or settings.twilio_auth_token):
        yield Finding(
            "twilio", Level.WARN, "not configured: SMS runs dry (recorded, not sent)",
            "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER to send SMS",
        )  # fmt: skip
        return
    if not settings.sms_enabled:
        yield Finding(
            "twilio", Level.FAIL, "partly configured: SMS runs dry",
            "set all of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER "
            "(or TWILIO_MESSAGING_SERVICE_SID)",
        )  # fmt: skip
        return
    try:
        status = twilio_sms.check_account(settings)
    except CheckFailed as exc:
        yield Finding(
            "twilio", Level.FAIL, str(exc),
            "copy the Account SID and Auth Token from the Twilio Console's account info",
        )  # fmt: skip
        return
    if status != "active":
        yield Finding("twilio", Level.FAIL, f"the Twilio account is {status}", "reactivate it")
        return
    yield Finding("twilio", Level.OK, "credentials accepted; the account is active")


def _sendgrid(settings: Settings) -> Iterator[Finding]:
    if not (settings.sendgrid_api_key or settings.sendgrid_from_email):
        yield Finding(
            "sendgrid", Level.WARN, "not configured: email runs dry (recorded, not sent)",
            "set SENDGRID_API_KEY and SENDGRID_FROM_EMAIL to send email",
        )  # fmt: skip
        return
    if not settings.email_enabled:
        yield Finding(
            "sendgrid", Level.FAIL, "partly configured: email runs dry",
            "set both SENDGRID_API_KEY and SENDGRID_FROM_EMAIL",
        )  # fmt: skip
        return
    try:
        scopes = sendgrid_email.check_scopes(settings)
    except CheckFailed as exc:
        yield Finding(
            "sendgrid", Level.FAIL, str(exc),
            "create an API key with Mail Send permission in SendGrid (Settings > API Keys)",
        )  # fmt: skip
        return
    if "mail.send" not in scopes:
        yield Finding(
            "sendgrid", Level.FAIL, "SENDGRID_API_KEY may not send mail (no mail.send scope)",
            "give the key Mail Send permission in SendGrid (Settings > API Keys)",
        )  # fmt: skip
        return
    yield Finding("sendgrid", Level.OK, "key accepted, with Mail Send permission")


def _database(settings: Settings) -> Iterator[Finding]:
    """Asked without creating anything: a SQLite ledger that is not there yet is reported."""
    found = ledger_state(settings)
    if found.state is State.READY:
        yield Finding("database", Level.OK, f"reachable, migrated to {found.head}")
        return
    what, _, fix = (found.problem or "").partition(": ")
    if found.state is State.MISSING:
        fix = "run `keycourier migrate`, or start `keycourier serve`, which creates it"
        yield Finding("database", Level.WARN, what, fix)
        return
    if found.state is State.UNREACHABLE:
        what = f"cannot reach the ledger at {found.where} ({found.reason})"
        fix = "check DATABASE_URL and that the database server is up"
    elif found.state is State.NOT_MIGRATED:
        fix = "run `keycourier migrate` (the release phase does this on Heroku)"
    yield Finding("database", Level.FAIL, what, fix)


def _broker(settings: Settings) -> Iterator[Finding]:
    if settings.embedded_broker:
        yield Finding(
            "broker", Level.WARN, "REDIS_URL is not set: embedded broker (one machine only)",
            "set REDIS_URL to run web and workers as separate processes",
        )  # fmt: skip
        return
    from app.intake.queue import RedisEnqueuer

    assert settings.redis_url is not None
    enqueuer = RedisEnqueuer(settings.redis_url)
    try:
        enqueuer.ping()
    except BrokerUnavailable as exc:
        yield Finding(
            "broker", Level.FAIL, str(exc), "check REDIS_URL and that Redis is up"
        )  # fmt: skip
        return
    yield Finding("broker", Level.OK, "Redis answers")


def _templates(settings: Settings) -> Iterator[Finding]:
    problems = check_configured(settings).problems
    for problem in problems:
        yield Finding(
            "templates", Level.FAIL, f"{problem.where}: {problem.reason}",
            "fix the template (templates/README.md), then `keycourier templates check`",
        )  # fmt: skip
    if not problems:
        yield Finding("templates", Level.OK, f"every template in {settings.templates_dir} renders")


def _front_desk(settings: Settings) -> Iterator[Finding]:
    if settings.front_desk_email is None:
        yield Finding(
            "front desk", Level.WARN, "FRONT_DESK_EMAIL is not set: card flags, "
            "undelivered keys and issuing alerts are only logged", "set FRONT_DESK_EMAIL",
        )  # fmt: skip
    if settings.credential_hash_key is None:
        yield Finding(
            "fingerprints", Level.WARN, "CREDENTIAL_HASH_KEY is not set: rotating the "
            "webhook secret would make sent codes look new",
            "set CREDENTIAL_HASH_KEY to a long random string",
        )  # fmt: skip


def _delivery_status(settings: Settings) -> Iterator[Finding]:
    """Without the providers' reports a delivery stays "sent": nobody learns it bounced."""
    if settings.sms_enabled:
        if settings.public_base_url is None:
            yield Finding(
                "sms status", Level.WARN, "PUBLIC_BASE_URL is not set: SMS are sent without "
                "status callbacks, so an undelivered SMS falls back to nothing",
                "set PUBLIC_BASE_URL to the web process's public https:// address",
            )  # fmt: skip
        else:
            yield Finding(
                "sms status", Level.OK,
                f"Twilio reports to {settings.twilio_status_callback_url}",
            )  # fmt: skip
    if settings.email_enabled:
        if settings.sendgrid_webhook_public_key is None:
            yield Finding(
                "email status", Level.WARN, "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid's "
                "events are refused, so a bounced email falls back to nothing",
                "enable the signed Event Webhook at /webhooks/sendgrid/events and set "
                "SENDGRID_WEBHOOK_PUBLIC_KEY to its verification key",
            )  # fmt: skip
        else:
            yield Finding("email status", Level.OK, "SendGrid's signed events are verified")


def _console(settings: Settings) -> Iterator[Finding]:
    """The ops console needs both of its settings, in shape, or the web process will not start
    (a half set-up) or nobody can sign in (none)."""
    steps = (
        "run `keycourier ops-user NAME` for each person, set OPS_USERS to the printed lines "
        "(comma-separated) and OPS_SESSION_SECRET to a random string of 32 characters or more "
        "(`openssl rand -hex 32`), then restart web"
    )
    users, secret = settings.ops_users, settings.ops_session_secret
    if users is None and secret is None:
        yield Finding("console", Level.WARN, "OPS_USERS is not set: the console (/ops) is off",
                      steps)  # fmt: skip
        return
    if users is None or secret is None:
        missing = "OPS_USERS" if users is None else "OPS_SESSION_SECRET"
        consequence = (
            "nobody can sign in to the console" if users is None
            else "the web process will refuse to start"
        )  # fmt: skip
        yield Finding("console", Level.FAIL, f"{missing} is not set: {consequence}", steps)
        return
    from app.console.passwords import parse_users

    try:
        people = parse_users(users.get_secret_value())
    except ConfigError as exc:
        yield Finding("console", Level.FAIL, str(exc), steps)
        return
    if len(secret.get_secret_value()) < 32:
        yield Finding(
            "console", Level.FAIL, "OPS_SESSION_SECRET is too short: the web process will "
            "refuse to start", "set it to a random string of 32 characters or more",
        )  # fmt: skip
        return
    if not people:
        yield Finding("console", Level.FAIL, "OPS_USERS holds no entry: nobody can sign in", steps)
        return
    yield Finding("console", Level.OK, f"on at /ops: {len(people)} may sign in")


CHECKS: tuple[Callable[[Settings], Iterator[Finding]], ...] = (
    _seam,
    _webhook_secret,
    _twilio,
    _sendgrid,
    _database,
    _broker,
    _templates,
    _front_desk,
    _delivery_status,
    _console,
)
