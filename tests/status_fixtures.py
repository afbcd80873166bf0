"""What the provider status tests share: keycourier's web app and services on one ledger,
with the stand-ins' status reports enabled, and the way a worker would run what they queue."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.context import Context
from app.delivery.undelivered import after_undelivered
from app.events.processing import process_event
from app.ledger.models import Delivery, ProviderEvent
from app.ledger.store import Ledger
from app.settings import Settings, load_settings
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.events.test_pipeline import record
from tests.queueing import send_and_hand_on, sent_ids

PUBLIC = "https://keys.example.com"


@dataclass
class Keycourier:
    services: Context
    client: TestClient
    redis_url: str
    settings: Settings

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    def issue(self, sample: str = "access_method.issued.code") -> list[Delivery]:
        """Process an issued event and send what it plans, as a worker would."""
        queue = sent_ids(process_event(self.services, record(self.services, sample)).next)
        self.send_all(queue)
        return self.deliveries()

    def send_all(self, queue: list[int]) -> None:
        while queue:
            send_and_hand_on(self.services, queue.pop(0), queue)

    def run_fallbacks(self) -> list[str]:
        """Run every after_undelivered task waiting in Redis (and send what it plans)."""
        ran = []
        for name, args in take_tasks(self.redis_url):
            if name == "keycourier.after_undelivered":
                planned = after_undelivered(self.services, args[0])
                self.send_all(sent_ids(planned or []))
                ran.append("nothing" if planned is None else "planned")
        return ran

    def deliveries(self) -> list[Delivery]:
        with Session(self.ledger.engine) as session:
            return list(session.scalars(select(Delivery).order_by(Delivery.id)))

    def delivery(self, delivery_id: int) -> Delivery:
        [found] = [d for d in self.deliveries() if d.id == delivery_id]
        return found

    def provider_events(self) -> list[ProviderEvent]:
        with Session(self.ledger.engine) as session:
            return list(session.scalars(select(ProviderEvent).order_by(ProviderEvent.id)))


def make_keycourier(
    env: dict[str, str], ledger: Ledger, redis_url: str, **changes: str | None
) -> Keycourier:
    values = {**env, "REDIS_URL": redis_url, "PUBLIC_BASE_URL": PUBLIC, **changes}
    settings = load_settings({k: v for k, v in values.items() if v is not None})
    services = Context.from_settings(settings, ledger)
    client = TestClient(create_app(settings, ledger=ledger))
    return Keycourier(services, client, redis_url, settings)


def sendgrid_env(sendgrid: SendGridStandin) -> dict[str, str]:
    return {"SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.webhook_public_key}


def take_tasks(redis_url: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message in the broker's queue, oldest first; emptied."""
    client = redis.Redis.from_url(redis_url)
    raw_messages = client.lrange("keycourier", 0, -1)
    client.delete("keycourier")
    client.close()
    tasks = []
    for raw in reversed(raw_messages):  # LPUSH: the newest is first
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks


def post_twilio(
    kc: Keycourier,
    twilio: TwilioStandin,
    sid: str,
    status: str,
    error_code: int | None = None,
    **overrides: Any,
) -> Any:
    """POST Twilio's signed callback as a TLS proxy would pass it on: to the internal
    http://testserver address, not the public URL Twilio signed."""
    url, form, headers = twilio.status_callback(sid, status, error_code)
    internal = url.replace(PUBLIC, "http://testserver", 1)
    return kc.client.post(
        overrides.pop("url", internal),
        data=overrides.pop("form", form),
        headers=overrides.pop("headers", headers),
    )
