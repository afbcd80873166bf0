"""Properties of event processing over whatever Seam may send, generated from Seam's own schemas.

Access methods, access grants, user identities, spaces and events are drawn from the pinned
OpenAPI document (spec/seam, translated for JSON Schema as tests/contract/openapi.py does:
OpenAPI 3.0 `nullable`, discriminated oneOf) with hypothesis-jsonschema: optional fields absent
or present, empty lists, odd names (any text, long ones, empty). On top of the spec they get
error, warning and mutation codes Seam does not list yet, several grants per access method, a
grant whose guest is gone. Each drawn world is put in the Seam stand-in and its event is
recorded as the webhook records it and processed as the worker does (`process_event`, sending
what it hands on through the real SDKs to the Twilio and SendGrid stand-ins), then again as a
duplicate and as a second Seam event saying the same. What must hold:

- nothing raises;
- every event ends with an outcome in the ledger (finished, or to be looked at again later);
- a credential (PIN, Instant Key link) goes out only for an issued code or mobile key, and
  only to a phone number or email address of the user identity of one of its grants;
- no message goes out twice.

The examples are few and derandomized (the same ones on every run, CI included): about 30
worlds per ledger backend; KEYCOURIER_PROPERTY_EXAMPLES raises the number for a deeper run.
Shrinking is off: a failure is the same example on every run, and shrinking worlds this large
through HTTP stand-ins takes many minutes.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from app.context import Context
from app.events.kinds import SUBSCRIBED_EVENT_TYPES
from app.events.processing import FINAL, process_event
from app.ledger.models import EventStatus
from app.ports import Work
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.webhooks.seam import _read_event
from tests.contract.openapi import pinned
from tests.events.test_pipeline import GRANT_ID, GUEST_ID, record, run
from tests.queueing import send_and_hand_on

EXAMPLES = int(os.environ.get("KEYCOURIER_PROPERTY_EXAMPLES", "30"))
WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"
FRONT_DESK = "frontdesk@hotel.example"
# Event types drawn: every one keycourier acts on (issued and reissued, which send the guest's
# credential, three times as often), and two it does not.
EVENT_TYPES = (
    *SUBSCRIBED_EVENT_TYPES,
    *(["access_method.issued", "access_method.reissued"] * 2),
    "access_grant.created",
    "device.connected",
)
pytestmark = pytest.mark.filterwarnings(
    # hypothesis-jsonschema notes each format given in FORMATS replaces its own: on purpose.
    "ignore:Overriding standard format:hypothesis.errors.HypothesisWarning"
)
_ids = itertools.count(1)


def fresh_id() -> str:
    """An id no other example used: the stand-ins and the ledger are shared by the examples,
    and Hypothesis draws the same few uuids again and again."""
    return f"{next(_ids):08x}-7e57-4000-8000-{os.getpid():012x}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


FORMATS: dict[str, st.SearchStrategy[str]] = {
    "uuid": st.uuids().map(str),
    "date-time": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ).map(_iso),
    "uri": st.sampled_from(["https://ik.seam.co/ABC", "https://example.com/x?y=1"]),
    "email": st.emails(),
}


def _closed(schema: Any) -> Any:
    """The schema with no properties beyond those it names and lists of at most two items (a
    subset of what it allows), so that examples are Seam's fields, not thousands of random
    keys, and drawing one takes milliseconds, not seconds."""
    if isinstance(schema, dict):
        out = {key: _closed(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if out.get("type") == "array" or "items" in out:
            out["maxItems"] = min(out.get("maxItems", 2), 2)
        return out
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@functools.cache
def resource(name: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = copy.deepcopy(pinned().translated["components"]["schemas"][name])
    return from_schema(_closed(schema), custom_formats=FORMATS)


@functools.cache
def event_body(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    spec = pinned()
    [pointer, *_] = spec.event_variants(event_type)
    schema: Any = spec.translated
    for part in pointer.split("/")[1:]:
        schema = schema[int(part)] if isinstance(schema, list) else schema[part]
    return from_schema(_closed(copy.deepcopy(schema)), custom_formats=FORMATS)


# Names as a hotel's systems may write them: any text, empty, very long, with markup.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=180, max_size=320),
    st.sampled_from(["", " ", "<b>{{ pin_code }}</b>", "Zoë O'Brien-Łukasiewicz", "\u202e\x00"]),
)
unknown_code = st.from_regex(r"\A[a-z_]{3,20}\Z").filter(
    lambda c: c not in ("being_deleted", "failed_to_issue", "delay_in_issuing")
)


def _problem(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """An error, warning or pending mutation with a code Seam does not list yet."""
    field = {"errors": "error_code", "warnings": "warning_code"}.get(kind, "mutation_code")
    return st.fixed_dictionaries(
        {field: unknown_code, "message": odd_text, "created_at": st.just("2025-06-16T16:54:31Z")}
    )


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """An access method, 1-3 grants of it (their guests, some shared, some gone), spaces and
    an event about them, all in Seam's shapes."""
    method = draw(resource("access_method"))
    method_id = fresh_id()
    method.update(access_method_id=method_id, workspace_id=WORKSPACE_ID)
    if method["mode"] == "code" and method.get("code") is not None:
        method["code"] = f"9{next(_ids):07d}"  # distinctive: found in a message, it was sent
    if method["mode"] == "mobile_key" and "instant_key_url" in method:
        method["instant_key_url"] = f"https://ik.seam.co/K{next(_ids):09d}"
    for kind in ("errors", "warnings", "pending_mutations"):
        method[kind] = [*method[kind], *draw(st.lists(_problem(kind), max_size=1))]

    guests = []
    for index in range(draw(st.integers(1, 2))):
        guest = draw(resource("user_identity"))
        tag = next(_ids)
        guest.update(
            user_identity_id=fresh_id(),
            workspace_id=WORKSPACE_ID,
            full_name=draw(st.one_of(st.none(), odd_text)),
            # Unique per guest: one guest's message is never another's duplicate.
            phone_number=draw(
                st.sampled_from([None, f"+1555{tag:07d}", f"0{tag} {index}-odd", ""])
            ),
            email_address=draw(
                st.sampled_from([None, f"guest{tag}@example.com", f"not-an-address-{tag}"])
            ),
        )
        guests.append(guest)
    spaces = []
    for _ in range(draw(st.integers(0, 2))):
        space = draw(resource("space"))
        space.update(space_id=fresh_id(), workspace_id=WORKSPACE_ID, name=draw(odd_text))
        spaces.append(space)
    grants = []
    for _ in range(draw(st.integers(1, 3))):
        grant = draw(resource("access_grant"))
        owner = draw(st.sampled_from([*[g["user_identity_id"] for g in guests], "gone"]))
        grant.update(
            access_grant_id=fresh_id(),
            workspace_id=WORKSPACE_ID,
            user_identity_id=fresh_id() if owner == "gone" else owner,
            access_method_ids=[method_id, *grant["access_method_ids"][:1]],
            space_ids=[space["space_id"] for space in spaces],
            display_name=draw(odd_text),
        )
        if "reservation_key" in grant:
            grant["reservation_key"] = draw(odd_text)
        grants.append(grant)

    event_type = draw(st.sampled_from(EVENT_TYPES))
    event = draw(event_body(event_type))
    grant_ids = [grant["access_grant_id"] for grant in grants]
    named = draw(st.lists(st.sampled_from([*grant_ids, "unknown"]), min_size=1, max_size=3))
    named = [fresh_id() if g == "unknown" else g for g in dict.fromkeys(named)]
    event.update(event_id=fresh_id(), workspace_id=WORKSPACE_ID)
    if "access_method_id" in event:
        event["access_method_id"] = method_id
    if "access_grant_ids" in event:
        event["access_grant_ids"] = named
    if "access_grant_id" in event:
        event["access_grant_id"] = named[0]
    return {"method": method, "grants": grants, "guests": guests, "spaces": spaces,
            "event": event}  # fmt: skip


def _drain(services: Context, work: list[Any]) -> None:
    """Send what processing handed on, and what each send hands on, as the workers would."""
    queue = [queued.id for queued in work if queued.work is Work.SEND_DELIVERY]
    while queue:
        send_and_hand_on(services, queue.pop(0), queue)


def _process(services: Context, payload: dict[str, Any]) -> int:
    """Record the payload as the webhook does, then process it as the worker does."""
    recorded = services.ledger.record_event(_read_event(None, payload))
    outcome = process_event(services, recorded.event_id, send_now=True)
    _drain(services, list(outcome.next))
    return recorded.event_id


def _finished_or_waiting(services: Context, event_id: int) -> bool:
    event = services.ledger.get_event(event_id)
    assert event is not None
    if EventStatus(event.status) in FINAL:
        return event.detail is not None
    return event.next_attempt_at is not None and bool(event.detail)


def _sent_to(messages: list[tuple[str, str]], credential: str | None) -> list[str]:
    """The destinations of the messages that carry the credential."""
    if not credential:
        return []
    return [to for to, text in messages if credential in text]


@pytest.mark.timeout(300)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        # On purpose: the stand-ins and the ledger serve every example; each example's ids
        # are its own (fresh_id), so nothing one example leaves is seen by the next.
        HealthCheck.function_scoped_fixture,
        # Each example makes a dozen HTTP round trips to the stand-ins and ledger writes.
        HealthCheck.too_slow,
        # Seam's access grant schema is large; a drawn world is a few kilobytes of JSON.
        HealthCheck.data_too_large,
    ],
)
@given(world=worlds())
def test_any_seam_world_is_processed_safely(
    world: dict[str, Any],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """Whatever valid state and event Seam sends, processing records an outcome, sends a
    credential only for an issued key and only to its grants' guests, and never twice."""
    seam.clear()
    method = world["method"]
    seam.put_access_method(method)
    for kind in ("grants", "guests", "spaces"):
        for item in world[kind]:
            seam.put({"grants": "access_grant", "guests": "user_identity",
                      "spaces": "space"}[kind], item)  # fmt: skip
    sms_before, mail_before = len(twilio.sent), len(sendgrid.sent)

    first = _process(services, world["event"])
    again = process_event(services, first, send_now=True)  # the same event, handed on twice
    _drain(services, list(again.next))
    sms, mails = _messages(twilio, sendgrid, sms_before, mail_before)
    repeat = _process(services, {**world["event"], "event_id": fresh_id()})

    assert _finished_or_waiting(services, first)
    assert _finished_or_waiting(services, repeat)

    # The same event twice sends nothing twice.
    assert [m for m, n in Counter(sms + mails).items() if n > 1] == []
    # Seam saying it again under a new event id sends no guest message twice (a front-desk
    # alert about a grant is once per grant and event, by design: it may be told again).
    sms, mails = _messages(twilio, sendgrid, sms_before, mail_before)
    guests_told = [m for m in sms + mails if m[0] != FRONT_DESK]
    assert [m for m, n in Counter(guests_told).items() if n > 1] == []

    credential = method.get("code") if method["mode"] == "code" else None
    if method["mode"] == "mobile_key":
        credential = method.get("instant_key_url")
    owners = {g["user_identity_id"] for g in world["grants"]}
    phones = {g["phone_number"] for g in world["guests"] if g["user_identity_id"] in owners}
    emails = {g["email_address"] for g in world["guests"] if g["user_identity_id"] in owners}
    by_sms, by_email = _sent_to(sms, credential), _sent_to(mails, credential)
    if by_sms or by_email:
        assert method["is_issued"] is True
    assert set(by_sms) <= phones
    assert set(by_email) <= emails - {FRONT_DESK}


def _messages(
    twilio: TwilioStandin, sendgrid: SendGridStandin, sms_before: int, mail_before: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The SMS and emails this example sent: (to, everything they say)."""
    sms = [(m["to"], m["body"]) for m in twilio.sent[sms_before:]]
    mails = [
        (mail["personalizations"][0]["to"][0]["email"],
         mail["subject"] + "\n" + "\n".join(part["value"] for part in mail["content"]))
        for mail in sendgrid.sent[mail_before:]
    ]  # fmt: skip
    return sms, mails


def test_long_names_from_seam_are_recorded(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A guest name, grant name and reservation key longer than the ledger's columns (Seam
    sets no limit) still plan and send the guest's code."""
    guest = seam.get("user_identity", GUEST_ID)
    grant = seam.get("access_grant", GRANT_ID)
    assert guest is not None
    assert grant is not None
    seam.put_user_identity({**guest, "full_name": "Zoë " * 90})
    seam.put_access_grant({**grant, "display_name": "G" * 400, "reservation_key": "R" * 400})
    run(services, record(services, "access_method.issued.code"))

    assert len(twilio.sent) == 1
