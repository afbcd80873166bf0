"""Senders that send nothing: each message can be written to an outbox directory instead.

Used when a channel's provider is not configured, and by `keycourier demo`. An outbox file
holds the whole message (it is what would have been sent, PIN included), so the outbox is a
local, private directory; the log line names only the reference and the masked destination.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.observability.masking import mask_destination
from app.ports import Email, Sent, Sms, WhatsApp

log = logging.getLogger(__name__)

PROVIDER = "dry_run"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DryRunSms:
    def __init__(self, outbox: Path | None = None) -> None:
        self._outbox = outbox

    def recent_messages(self, to: str, since: datetime) -> None:
        """A dry run never leaves a send in doubt."""
        return None

    def send_sms(self, message: Sms) -> Sent:
        record = {"channel": "sms", "to": message.to, "body": message.body}
        if message.sender:
            record["from"] = message.sender
        return _dry_send(self._outbox, "sms", message.to, message.reference, record)


class DryRunWhatsApp:
    def __init__(self, outbox: Path | None = None) -> None:
        self._outbox = outbox

    def recent_messages(self, to: str, since: datetime) -> None:
        """A dry run never leaves a send in doubt."""
        return None

    def send_whatsapp(self, message: WhatsApp) -> Sent:
        record: dict[str, Any] = {
            "channel": "whatsapp",
            "to": message.to,
            "content_sid": message.content_sid,
            "content_variables": dict(message.variables),
        }
        if message.sender:
            record["from"] = message.sender
        return _dry_send(self._outbox, "whatsapp", message.to, message.reference, record)


class DryRunEmail:
    def __init__(self, outbox: Path | None = None) -> None:
        self._outbox = outbox

    def recent_messages(self, to: str, since: datetime) -> None:
        """A dry run never leaves a send in doubt."""
        return None

    def send_email(self, message: Email) -> Sent:
        record = {
            "channel": "email",
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
        }
        if sender := _email_from(message):
            record["from"] = sender
        return _dry_send(self._outbox, "email", message.to, message.reference, record)


def _email_from(message: Email) -> str | None:
    if message.sender_name and message.sender:
        return f"{message.sender_name} <{message.sender}>"
    return message.sender_name or message.sender


def _dry_send(
    outbox: Path | None, channel: str, to: str, reference: str, record: dict[str, Any]
) -> Sent:
    where = None
    if outbox is not None:
        where = write_outbox_file(outbox, channel, reference, {**record, "reference": reference})
    log.info(
        "dry run: %s ref=%s to=%s not sent%s",
        channel,
        reference or "-",
        mask_destination(to),
        f", written to {where.name}" if where else "",
    )
    return Sent(provider=PROVIDER, provider_message_id=None, dry_run=True)


def write_outbox_file(outbox: Path, channel: str, reference: str, record: dict[str, Any]) -> Path:
    """Write `record` as "<UTC timestamp>-<reference>-<channel>.json", atomically, never
    overwriting an earlier file."""
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    stem = f"{stamp}-{_UNSAFE.sub('_', reference) or 'noref'}-{channel}"
    data = json.dumps(record, ensure_ascii=False, indent=2).encode()
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        for n in range(1000):
            target = outbox / (f"{stem}.json" if n == 0 else f"{stem}-{n}.json")
            try:
                os.link(tmp, target)  # fails if the name is taken, unlike a rename
            except FileExistsError:
                continue
            return target
        raise FileExistsError(f"no free outbox name for {stem}")
    finally:
        os.unlink(tmp)
