"""The redaction step every log record passes through."""

from __future__ import annotations

import logging

import pytest

from app.logs import RedactingFilter, redact
from app.masking import mask_email, mask_phone


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        (
            "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw loaded",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("key seam_live_1234abcd", "seam_live_1234abcd"),
        ("sendgrid SG.abc.def-ghi", "SG.abc.def-ghi"),
        ("header Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("link https://ik.seam.co/ABCXYZ sent", "ik.seam.co/ABCXYZ"),
        ("to +15555550123 failed", "5555550123"),
        ("to alex.rivera@example.com failed", "alex.rivera@"),
    ],
)
def test_redact_hides_secrets_and_contact_details(raw: str, hidden: str) -> None:
    """Secrets, Instant Key URLs, phone numbers and email addresses never survive redaction."""
    assert hidden not in redact(raw)


def test_masks_keep_enough_to_recognise() -> None:
    """Masked contact details still let an operator tell guests apart."""
    assert mask_phone("+15555550123") == "+1********23"
    assert mask_email("alex.rivera@example.com") == "a***@example.com"


def test_filter_redacts_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Arguments and exception text are redacted too, not only the format string."""
    logger = logging.getLogger("keycourier.test")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="keycourier.test"):
            logger.info("sending to %s", "+15555550123")
            try:
                raise ValueError("bad key seam_live_zzz for alex.rivera@example.com")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()

    text = caplog.text
    assert "+15555550123" not in text
    assert "+1********23" in text
    assert "seam_live_zzz" not in text
    assert "alex.rivera@example.com" not in text
    assert "ValueError" in text
