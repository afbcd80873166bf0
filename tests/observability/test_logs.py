"""The redaction step and the JSON lines every log record becomes."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from app.observability.logs import LineHandler, bind_context, clear_context, configure_logging
from app.observability.masking import mask_email, mask_phone
from app.observability.redaction import redact, redact_value
from app.settings import load_settings


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
        ("header Authorization: Basic QUM6dG9rZW4=", "QUM6dG9rZW4="),
        ("link https://ik.seam.co/ABCXYZ sent", "ik.seam.co/ABCXYZ"),
        ("to +15555550123 failed", "5555550123"),
        ("to alex.rivera@example.com failed", "alex.rivera@"),
        ("Your door code is 739164.", "739164"),
        ("AccessMethod(code='739164', mode='code')", "739164"),
        ('{"pin_code": "4821"}', "4821"),
        ("PIN: 4821", "4821"),
    ],
)
def test_redact_hides_secrets_pins_and_contact_details(raw: str, hidden: str) -> None:
    """Secrets, PINs, Instant Key URLs, phone numbers and email addresses never survive."""
    assert hidden not in redact(raw)


def test_redact_keeps_what_an_operator_needs() -> None:
    """Ids, counts and a provider's error code are not mistaken for PINs."""
    assert redact("delivery 4821 failed: twilio: invalid (code 21211)") == (
        "delivery 4821 failed: twilio: invalid (code 21211)"
    )


def test_redact_value_drops_sensitive_keys_in_depth() -> None:
    """Structured values lose every sensitive key's value and have their strings redacted."""
    value = {
        "event_id": 7,
        "nested": {"code": "4821", "auth_token": "abc", "to": ["+15555550123"]},
        "api_key": "anything",
    }
    assert redact_value(value) == {
        "event_id": 7,
        "nested": {"code": "[redacted]", "auth_token": "[redacted]", "to": ["+1********23"]},
        "api_key": "[redacted]",
    }


def test_masks_keep_enough_to_recognise() -> None:
    """Masked contact details still let an operator tell guests apart."""
    assert mask_phone("+15555550123") == "+1********23"
    assert mask_email("alex.rivera@example.com") == "a***@example.com"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured as a keycourier process does, writing to a buffer."""
    stream = io.StringIO()
    configure_logging(load_settings({"LOG_LEVEL": "DEBUG"}), stream=stream)
    yield stream
    clear_context()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_lines_are_json_with_context(captured: io.StringIO) -> None:
    """A standard-library call becomes one JSON object with its extra= context and bound ids."""
    bind_context(task_id="t-1")
    logging.getLogger("app.delivery.send").info(
        "delivery %s to %s", "sent", "+15555550123", extra={"delivery_id": 12, "channel": "sms"}
    )

    [line] = lines(captured)
    assert line["message"] == "delivery sent to +1********23"
    assert line["delivery_id"] == 12
    assert line["channel"] == "sms"
    assert line["task_id"] == "t-1"
    assert line["level"] == "info"
    assert line["logger"] == "app.delivery.send"


def test_tracebacks_and_structlog_calls_are_redacted(captured: io.StringIO) -> None:
    """Exception text and structlog's own key-value calls go through redaction too."""
    try:
        raise ValueError("bad key seam_live_zzz for alex.rivera@example.com, code 739164")
    except ValueError:
        logging.getLogger("keycourier.test").exception("failed")
    structlog.get_logger("keycourier.test").warning("sent", to="+15555550123", code="739164")

    text = captured.getvalue()
    for hidden in ("seam_live_zzz", "alex.rivera@example.com", "739164", "+15555550123"):
        assert hidden not in text
    failed, sent = lines(captured)
    assert "ValueError" in str(failed["exception"])
    assert sent["to"] == "+1********23"
    assert sent["code"] == "[redacted]"


def test_console_format_is_key_value_text() -> None:
    """LOG_FORMAT=console writes readable text instead of JSON, redacted all the same."""
    stream = io.StringIO()
    configure_logging(load_settings({"LOG_FORMAT": "console"}), stream=stream)
    try:
        logging.getLogger("keycourier.test").warning("to %s", "+15555550123")
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert "to +1********23" in text
    assert not text.lstrip().startswith("{")


def test_configured_secrets_are_removed_by_value(captured: io.StringIO) -> None:
    """A secret setting with no recognisable shape (a Twilio auth token) is removed wherever
    it appears, once logging is configured with it."""
    token = "9f3b2c1d8e7a6b5c4d3e2f1a0b9c8d7e"
    configure_logging(load_settings({"TWILIO_AUTH_TOKEN": token}), stream=captured)
    logging.getLogger("keycourier.test").warning("auth failed with %s", token)

    [line] = lines(captured)
    assert line["message"] == "auth failed with [redacted]"


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_celerys_per_task_info_lines_only_at_debug(level: str) -> None:
    """Celery's "received" and "succeeded" lines (one each per task, saying nothing keycourier's
    own lines do not) are written at LOG_LEVEL=DEBUG only; its errors about a task always are."""
    from celery.utils.log import get_logger

    stream = io.StringIO()
    configure_logging(load_settings({"LOG_LEVEL": level}), stream=stream)
    try:
        get_logger("celery.worker.strategy").info("Task %s[%s] received", "process_event", "t-1")
        trace = get_logger("celery.app.trace")
        trace.info("Task %s[%s] succeeded in %ss: %r", "process_event", "t-1", 0.01, "processed")
        trace.error("Task %s[%s] raised unexpected: %r", "process_event", "t-2", "boom")
        messages = [line["message"] for line in lines(stream)]
    finally:
        logging.getLogger().handlers.clear()
    failure = "Task process_event[t-2] raised unexpected: 'boom'"
    if level == "DEBUG":
        assert messages[:2] == [
            "Task process_event[t-1] received",
            "Task process_event[t-1] succeeded in 0.01s: 'processed'",
        ]
        assert messages[2:] == [failure]
    else:
        assert messages == [failure]


def test_a_line_being_formatted_holds_no_other_thread_back() -> None:
    """The handler turns a record into its line before it takes its lock: while one thread's
    line is still being formatted, another thread's line is written, and both come out whole,
    one per line."""
    stream = io.StringIO()
    handler = LineHandler(stream)
    release = threading.Event()
    formatting = threading.Event()

    class SlowForOne(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if record.getMessage() == "slow":
                formatting.set()
                assert release.wait(10)
            return super().format(record)

    handler.setFormatter(SlowForOne("%(message)s"))
    logger = logging.getLogger("tests.line_handler")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        slow = threading.Thread(target=logger.warning, args=("slow",))
        slow.start()
        assert formatting.wait(10)
        fast = threading.Thread(target=logger.warning, args=("fast",))
        fast.start()
        fast.join(5)
        written_meanwhile = stream.getvalue()
        release.set()
        slow.join(10)
    finally:
        release.set()
        logger.removeHandler(handler)
        logger.propagate = True
    assert written_meanwhile == "fast\n"
    assert stream.getvalue() == "fast\nslow\n"
