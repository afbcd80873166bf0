"""From a Seam event to a message in the hotel's language and time zone: properties.toml maps
the workspace, compose builds the variables, the templates of that language are used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.context import Context
from app.events.processing import process_event
from app.ledger.models import DeliveryStatus
from app.ledger.store import Ledger, NewEvent
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.queueing import send_and_hand_on, sent_ids

CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"
SPACE_ID = "5e1a2b3c-4d5e-4f60-8172-839405162738"


def services_with(
    tmp_path: Path, settings_env: dict[str, str], ledger: Ledger, properties: str, **env: str
) -> Context:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "properties.toml").write_text(properties, encoding="utf-8")
    values = {**settings_env, "TEMPLATES_DIR": str(folder), **env}
    return Context.from_settings(load_settings(values), ledger)


def deliver(services: Context, sample: str = "access_method.issued.code", **changes: str) -> None:
    event = json.loads((SAMPLES / "events" / f"{sample}.json").read_text()) | changes
    recorded = services.ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id=event["event_id"],
            event_type=event["event_type"],
            access_method_id=event.get("access_method_id"),
            access_grant_ids=tuple(event.get("access_grant_ids", ())),
        )
    )
    queue = sent_ids(process_event(services, recorded.event_id).next)
    while queue:
        send_and_hand_on(services, queue.pop(0), queue)


@pytest.fixture(autouse=True)
def pin(seam: SeamStandin) -> None:
    """A PIN no other text contains."""
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": "739164"})


def test_workspace_mapped_to_french_gets_french_in_paris_time(
    tmp_path: Path,
    settings_env: dict[str, str],
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """A workspace set to fr and Europe/Paris gets the fr SMS and email, times in Paris time."""
    services = services_with(
        tmp_path,
        settings_env,
        ledger,
        f'[workspaces."{WORKSPACE_ID}"]\nlocale = "fr"\ntimezone = "Europe/Paris"\n'
        'property_name = "Hôtel Lumière"\n',
    )
    deliver(services)
    [sms] = twilio.sent
    assert sms["body"].startswith("Bonjour Alex, votre code de porte pour Room 204 est 739164")
    assert "du ven. 20 juin 2053, 17:00 au lun. 23 juin 2053, 13:00" in sms["body"]
    [mail] = sendgrid.sent
    text = next(p["value"] for p in mail["content"] if p["type"] == "text/plain")
    html = next(p["value"] for p in mail["content"] if p["type"] == "text/html")
    assert "séjour à Hôtel Lumière" in text
    assert 'lang="fr"' in html
    assert 'class="code" style="' in html  # the layout's styles, inlined


def test_space_entry_overrides_the_workspace_and_default_locale_fills_in(
    tmp_path: Path,
    settings_env: dict[str, str],
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """The room's own entry (de, no folder) beats the workspace's fr: DEFAULT_LOCALE=en is used."""
    services = services_with(
        tmp_path,
        settings_env,
        ledger,
        f'[workspaces."{WORKSPACE_ID}"]\nlocale = "fr"\n\n[spaces."{SPACE_ID}"]\nlocale = "de"\n',
        TIMEZONE="America/New_York",
    )
    deliver(services)
    [sms] = twilio.sent
    assert sms["body"].startswith("Hi Alex")
    assert "valid Fri, Jun 20, 2053, 11:00 AM to Mon, Jun 23, 2053, 7:00 AM" in sms["body"]


def test_a_changed_code_is_sent_from_the_code_changed_folder(
    tmp_path: Path,
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """A reissued, different PIN is written from code_changed/, in the workspace's language."""
    services = services_with(
        tmp_path, settings_env, ledger, f'[workspaces."{WORKSPACE_ID}"]\nlocale = "fr"\n'
    )
    deliver(services)
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": "582046"})
    deliver(services, "access_method.reissued.backup_code", code="582046")
    first, second = (message["body"] for message in twilio.sent)
    assert "a changé" not in first
    assert "a changé. Nouveau code : 582046" in second
    statuses = {d.status for d in services.ledger.recent_deliveries(10)}
    assert statuses == {DeliveryStatus.SENT}
