"""Prometheus metrics: what the web process and the pipeline count, and that no label says who."""

from __future__ import annotations

import json
import re

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.context import Context
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.signing import signed_headers
from app.standins.twilio import TwilioStandin
from tests.conftest import WEBHOOK_SECRET
from tests.events.test_pipeline import CODE_ID, PIN, record, run, set_method
from tests.web.webhooks.test_seam import make_client


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_endpoint_counts_webhooks_by_type_and_outcome(
    ledger: Ledger, redis_url: str
) -> None:
    """/metrics shows webhooks by event type and outcome; types keycourier does not know are
    'other', so a sender cannot grow the label set."""
    body = json.dumps({"event_id": "ev-m1", "event_type": "access_method.issued"}).encode()
    odd = json.dumps({"event_id": "ev-m2", "event_type": "guest+15555550123"}).encode()
    with make_client(ledger, redis_url) as client:
        for payload, msg_id in ((body, "msg_m1"), (body, "msg_m1"), (odd, "msg_m2")):
            client.post(
                "/webhooks/seam",
                content=payload,
                headers=signed_headers(WEBHOOK_SECRET, payload, msg_id=msg_id),
            )
        forged = {**signed_headers(WEBHOOK_SECRET, body, msg_id="msg_m3"), "svix-id": "other"}
        client.post("/webhooks/seam", content=body, headers=forged)
        exposed = client.get("/metrics")

    assert exposed.status_code == 200
    assert exposed.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposed.text)
        for sample in family.samples
    }

    def seen(event_type: str, outcome: str) -> float:
        key = (("event_type", event_type), ("outcome", outcome))
        return samples.get(("keycourier_webhooks_total", key), 0.0)

    assert seen("access_method.issued", "ignored") >= 1  # no access_method_id: nothing to do
    assert seen("access_method.issued", "duplicate") >= 1
    assert seen("other", "ignored") >= 1
    assert seen("other", "invalid_signature") >= 1
    assert "15555550123" not in exposed.text


def test_pipeline_counts_deliveries_latency_lag_and_events(
    services: Context, seam: SeamStandin
) -> None:
    """A processed event counts as processed; its SMS and email as sent, with provider latency
    and queue lag observed."""
    set_method(seam, CODE_ID, code=PIN)
    before = {
        "event": value(
            "keycourier_events_processed_total",
            event_type="access_method.issued",
            status="processed",
        ),
        "sms": value("keycourier_deliveries_total", channel="sms", status="sent"),
        "email": value("keycourier_deliveries_total", channel="email", status="sent"),
        "twilio": value(
            "keycourier_provider_request_seconds_count",
            provider="twilio",
            operation="send",
            result="ok",
        ),
        "seam": value(
            "keycourier_provider_request_seconds_count",
            provider="seam",
            operation="access_methods.get",
            result="ok",
        ),
        "lag": value("keycourier_queue_lag_seconds_count", channel="sms"),
    }

    run(services, record(services, "access_method.issued.code"))

    assert value(
        "keycourier_events_processed_total", event_type="access_method.issued", status="processed"
    ) == (before["event"] + 1)
    assert value("keycourier_deliveries_total", channel="sms", status="sent") == before["sms"] + 1
    assert value("keycourier_deliveries_total", channel="email", status="sent") == (
        before["email"] + 1
    )
    assert value(
        "keycourier_provider_request_seconds_count",
        provider="twilio",
        operation="send",
        result="ok",
    ) == (before["twilio"] + 1)
    assert (
        value(
            "keycourier_provider_request_seconds_count",
            provider="seam",
            operation="access_methods.get",
            result="ok",
        )
        > before["seam"]
    )
    assert value("keycourier_queue_lag_seconds_count", channel="sms") == before["lag"] + 1


def test_transient_failure_counts_a_retry(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A send Twilio refuses for now counts one SMS retry and a failed provider call."""
    set_method(seam, CODE_ID, code=PIN)
    retries = value("keycourier_retries_total", what="sms")
    errors = value(
        "keycourier_provider_request_seconds_count",
        provider="twilio",
        operation="send",
        result="error",
    )
    twilio.fail_next(1, 503, {"code": 20503, "message": "Service unavailable"}, method="POST")

    run(services, record(services, "access_method.issued.code"))

    assert value("keycourier_retries_total", what="sms") == retries + 1
    assert value(
        "keycourier_provider_request_seconds_count",
        provider="twilio",
        operation="send",
        result="error",
    ) == (errors + 1)


ALLOWED_LABELS = {
    "event_type": re.compile(r"^(access_(method|grant)\.[a-z_]+|other)$"),
    "outcome": re.compile(r"^[a-z_]+$"),
    "status": re.compile(r"^[a-z_]+$"),
    "channel": re.compile(r"^(sms|email|whatsapp)$"),
    "what": re.compile(r"^(event|sms|email|whatsapp)$"),
    "provider": re.compile(r"^(seam|twilio|sendgrid)$"),
    "operation": re.compile(r"^[a-z_.]+$"),
    "result": re.compile(r"^(ok|error)$"),
    # Why an event was set aside: the provider at fault, the data, a worker that died while
    # processing it, or anything else.
    "cause": re.compile(r"^(seam|twilio|sendgrid|data|worker_lost|other)$"),
    "le": re.compile(r"^[0-9.+Inf]+$"),
}


def test_no_label_holds_anything_personal(services: Context, seam: SeamStandin) -> None:
    """Every keycourier label is a known name with a value from a small, impersonal set."""
    set_method(seam, CODE_ID, code=PIN)
    run(services, record(services, "access_method.issued.code"))

    checked = 0
    for family in text_string_to_metric_families(generate_latest().decode()):
        if not family.name.startswith("keycourier_"):
            continue
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                assert label in ALLOWED_LABELS, label
                assert ALLOWED_LABELS[label].match(label_value), (label, label_value)
                checked += 1
    assert checked > 0


def test_metrics_token_guards_the_endpoint(ledger: Ledger, redis_url: str) -> None:
    """With METRICS_TOKEN set, /metrics answers only a scraper that presents it."""
    from starlette.testclient import TestClient

    from app.settings import load_settings
    from app.web.main import create_app

    settings = load_settings(
        {"SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "REDIS_URL": redis_url, "METRICS_TOKEN": "s3cret"}
    )
    with TestClient(create_app(settings, ledger=ledger)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert "keycourier_webhooks_total" in right.text
