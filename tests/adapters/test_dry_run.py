"""The dry-run senders: an outbox file per message, nothing sent, no content in the log."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from app.adapters.dry_run import DryRunEmail, DryRunSms
from app.ports import Email, Sent, Sms

DRY = Sent(provider="dry_run", provider_message_id=None, dry_run=True)
SMS = Sms("+15555550123", "Your door code is 4821.", reference="dlv-7")
EMAIL = Email(
    "alex.rivera@example.com", "Your key", "Code 4821", "<p>Code 4821</p>", reference="dlv-8"
)


def _only_file(outbox: Path) -> Path:
    [path] = list(outbox.iterdir())
    return path


def test_sms_writes_outbox_file(tmp_path: Path) -> None:
    """A dry-run SMS is written as <UTC timestamp>-<reference>-sms.json and reported as dry."""
    outbox = tmp_path / "outbox"
    assert DryRunSms(outbox).send_sms(SMS) == DRY
    path = _only_file(outbox)
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-dlv-7-sms\.json", path.name)
    record = json.loads(path.read_text())
    assert record == {
        "channel": "sms",
        "to": SMS.to,
        "body": SMS.body,
        "reference": "dlv-7",
    }


def test_email_writes_outbox_file(tmp_path: Path) -> None:
    """A dry-run email keeps subject, text, html and reference in its outbox file."""
    assert DryRunEmail(tmp_path).send_email(EMAIL) == DRY
    path = _only_file(tmp_path)
    assert path.name.endswith("-dlv-8-email.json")
    record = json.loads(path.read_text())
    assert (record["to"], record["subject"], record["text"], record["html"]) == (
        EMAIL.to,
        EMAIL.subject,
        EMAIL.text,
        EMAIL.html,
    )
    assert record["reference"] == "dlv-8"


def test_same_reference_never_overwrites(tmp_path: Path) -> None:
    """Two dry sends with the same reference leave two files."""
    sender = DryRunSms(tmp_path)
    sender.send_sms(SMS)
    sender.send_sms(SMS)
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".json"]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_without_outbox_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an outbox, a dry send writes no file anywhere and still reports dry."""
    monkeypatch.chdir(tmp_path)
    assert DryRunSms().send_sms(SMS) == DRY
    assert DryRunEmail().send_email(EMAIL) == DRY
    assert list(tmp_path.iterdir()) == []


def test_log_names_reference_not_content(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The log line names the reference and a masked destination, never the body."""
    caplog.set_level(logging.DEBUG)
    DryRunSms(tmp_path).send_sms(SMS)
    DryRunEmail(tmp_path).send_email(EMAIL)
    assert "dlv-7" in caplog.text
    assert "dlv-8" in caplog.text
    # The files' names start with the time they were written: at 15:48:21 it held "4821".
    text = re.sub(r"\d{8}T\d{6}\.\d{6}Z", "<written at>", caplog.text)
    assert text.count("<written at>") == 2
    assert "4821" not in text
    assert SMS.to not in text
    assert EMAIL.to not in text


def test_reference_is_made_filename_safe(tmp_path: Path) -> None:
    """A reference with path characters cannot escape the outbox."""
    DryRunSms(tmp_path).send_sms(Sms("+15555550123", "x", reference="../../etc/passwd"))
    path = _only_file(tmp_path)
    assert path.parent == tmp_path
    assert "/" not in path.name.removesuffix(".json")
