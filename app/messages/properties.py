"""templates/properties.toml: which language, time zone, hotel name and country each Seam
workspace or space gets, and, for a hotel group, where its front desk reads its email and which
SMS and email senders its guests see. The ops team edits it beside the templates; a space's entry
wins over its workspace's, and anything unset falls back to DEFAULT_LOCALE, TIMEZONE,
FRONT_DESK_EMAIL, TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID and SENDGRID_FROM_EMAIL (a
hotel with no country has guests' national phone numbers refused: only numbers with their
+country code are sent to). A hotel also turns on its guests' "resend my key" link here
(`guest_resend_link = true`, off by default: app/guest/).

WhatsApp (app/messages/whatsapp.py): a hotel's `channels` (their order: the first phone channel
goes, the next is its fallback), its `whatsapp_from` sender, and the content templates its
messages go out as: `[whatsapp.MESSAGE]` for every hotel, `[workspaces."ID".whatsapp.MESSAGE]`
for one (unset: DELIVERY_CHANNELS, TWILIO_WHATSAPP_FROM).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from app.errors import PropertiesError
from app.messages.whatsapp import ContentTemplate, parse_templates
from app.settings import Channel
from app.settings.locales import normalize_locale

_ROUTING_KEYS = (
    "front_desk_email",
    "twilio_from",
    "twilio_messaging_service_sid",
    "sendgrid_from_email",
    "sendgrid_from_name",
)
# Settings that are not text: a hotel's channel order and its WhatsApp content templates.
_LIST_KEYS = frozenset({"channels"})
_TABLE_KEYS = frozenset({"whatsapp"})
# Per-hotel switches: true or false, not text.
_SWITCH_KEYS = ("guest_resend_link",)
_ENTRY_KEYS = frozenset(
    {
        "locale",
        "timezone",
        "property_name",
        "country",
        "whatsapp_from",
        *_ROUTING_KEYS,
        *_SWITCH_KEYS,
    }
    | _LIST_KEYS
    | _TABLE_KEYS
)
_TABLES = ("workspaces", "spaces")
# Top-level tables besides those of workspaces and spaces: every hotel's WhatsApp templates.
_GLOBAL_TABLES = ("whatsapp",)
_CHANNELS: tuple[Channel, ...] = ("whatsapp", "sms", "email")
# What a mail provider accepts as one address: no spaces, one @, a dotted domain.
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")
MAX_SENDER_NAME = 100


@dataclass(frozen=True)
class Entry:
    locale: str | None = None
    timezone: str | None = None
    property_name: str | None = None
    # ISO 3166 alpha-2 (FR): the country a guest's national phone number is read in.
    country: str | None = None
    front_desk_email: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    sendgrid_from_email: str | None = None
    sendgrid_from_name: str | None = None
    # The channels its guests get their key on, in order (None: DELIVERY_CHANNELS).
    channels: tuple[Channel, ...] | None = None
    # Its WhatsApp sender: +E.164 or a Messaging Service SID (None: TWILIO_WHATSAPP_FROM).
    whatsapp_from: str | None = None
    # Its own WhatsApp content templates, by message (the global ones fill the rest).
    whatsapp: Mapping[str, ContentTemplate] = field(default_factory=dict)
    # Its guests' key messages carry a link to have the key sent again (app/guest/); None:
    # not set here (off, unless its workspace's entry turns it on).
    guest_resend_link: bool | None = None


@dataclass(frozen=True)
class Routing:
    """Where a property's messages go from and to; None where properties.toml sets nothing (the
    global settings apply): its front desk's address, the SMS sender its guests see (a phone
    number or a Twilio Messaging Service SID), and the email sender's address and name."""

    front_desk_email: str | None = None
    sms_sender: str | None = None
    email_sender: str | None = None
    email_sender_name: str | None = None
    # The channels a guest's key goes on, in order (None: DELIVERY_CHANNELS), and the
    # WhatsApp sender (None: TWILIO_WHATSAPP_FROM).
    channels: tuple[Channel, ...] | None = None
    whatsapp_sender: str | None = None


@dataclass(frozen=True)
class Audience:
    """Who a message is written for: its language, the hotel's time zone and name."""

    locale: str
    timezone: str
    property_name: str = ""


@dataclass(frozen=True)
class PropertyMap:
    workspaces: Mapping[str, Entry] = field(default_factory=dict)
    spaces: Mapping[str, Entry] = field(default_factory=dict)
    # [whatsapp.MESSAGE]: every hotel's content templates, unless its entry names its own.
    whatsapp: Mapping[str, ContentTemplate] = field(default_factory=dict)

    def lookup(self, workspace_id: str | None, space_ids: Iterable[str]) -> Entry:
        """The entry for these ids: each field from the first space that sets it, else the
        workspace's."""
        entries = [self.spaces[s] for s in space_ids if s in self.spaces]
        if workspace_id is not None and workspace_id in self.workspaces:
            entries.append(self.workspaces[workspace_id])

        def first(name: str) -> str | None:
            return next((getattr(e, name) for e in entries if getattr(e, name)), None)

        # The SMS sender is one setting written two ways: taken whole from the first entry
        # that names one, so a room's number is never overridden by its hotel's service.
        sms = next((e for e in entries if e.twilio_from or e.twilio_messaging_service_sid), None)
        return Entry(
            locale=first("locale"),
            timezone=first("timezone"),
            property_name=first("property_name"),
            country=first("country"),
            front_desk_email=first("front_desk_email"),
            twilio_from=sms.twilio_from if sms else None,
            twilio_messaging_service_sid=sms.twilio_messaging_service_sid if sms else None,
            sendgrid_from_email=first("sendgrid_from_email"),
            sendgrid_from_name=first("sendgrid_from_name"),
            channels=next((e.channels for e in entries if e.channels), None),
            whatsapp_from=first("whatsapp_from"),
            whatsapp={
                message: template
                for entry in reversed(entries)
                for message, template in entry.whatsapp.items()
            },
            guest_resend_link=next(
                (e.guest_resend_link for e in entries if e.guest_resend_link is not None), None
            ),
        )

    def routing(self, workspace_id: str | None, space_ids: Iterable[str]) -> Routing:
        """The front desk and senders of the property these ids are in."""
        entry = self.lookup(workspace_id, space_ids)
        return Routing(
            front_desk_email=entry.front_desk_email,
            sms_sender=entry.twilio_messaging_service_sid or entry.twilio_from,
            email_sender=entry.sendgrid_from_email,
            email_sender_name=entry.sendgrid_from_name,
            channels=entry.channels,
            whatsapp_sender=entry.whatsapp_from,
        )

    def whatsapp_template(
        self, message: str, workspace_id: str | None, space_ids: Iterable[str]
    ) -> ContentTemplate | None:
        """The content template `message` goes out as by WhatsApp for these ids: the first
        space's or the workspace's own, else every hotel's; None when none is named."""
        own = self.lookup(workspace_id, space_ids).whatsapp
        return own.get(message) or self.whatsapp.get(message)

    def entries(self) -> list[tuple[str, Entry]]:
        """Every entry, as `workspaces.ID` or `spaces.ID`, for the check's messages."""
        return [(f"workspaces.{key}", e) for key, e in self.workspaces.items()] + [
            (f"spaces.{key}", e) for key, e in self.spaces.items()
        ]

    def guest_resend_link(self, workspace_id: str | None, space_ids: Iterable[str]) -> bool:
        """Whether the guests of the property these ids are in get a "resend my key" link
        (a space's `guest_resend_link = false` turns off its workspace's true)."""
        return bool(self.lookup(workspace_id, space_ids).guest_resend_link)

    def offers_guest_resend_link(self) -> bool:
        """Whether any hotel or room turns the guest's resend link on (the check then measures
        every SMS with one)."""
        entries = [*self.workspaces.values(), *self.spaces.values()]
        return any(entry.guest_resend_link for entry in entries)

    def locales(self) -> set[str]:
        return {e.locale for e in [*self.workspaces.values(), *self.spaces.values()] if e.locale}

    def countries(self) -> set[str]:
        """Every country a hotel is in: where a national number typed in a search may be from."""
        entries = [*self.workspaces.values(), *self.spaces.values()]
        return {e.country for e in entries if e.country}


def check_country(text: str) -> str:
    """`fr` and `FR` alike become `FR`; raises ValueError unless it is a country with phones."""
    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{text!r} is not a country code (ISO 3166, two letters, e.g. FR, GB, US)"
        ) from None
    return code


def check_timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a time zone (e.g. Europe/Paris)") from None
    return text


def parse_properties(source: str) -> PropertyMap:
    """Parse properties.toml, or raise PropertiesError saying what and where."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise PropertiesError(
            f"not valid TOML: {exc}", int(match.group(1)) if match else None
        ) from None
    unknown = set(data) - set(_TABLES) - set(_GLOBAL_TABLES)
    if unknown:
        name = sorted(unknown)[0]
        raise PropertiesError(
            f"unknown section {name!r}: only [workspaces.ID], [spaces.ID] and "
            "[whatsapp.MESSAGE] are allowed",
            _line_of(source, name),
        )
    try:
        whatsapp = parse_templates(data.get("whatsapp", {}))
    except ValueError as exc:
        raise PropertiesError(str(exc), _line_of(source, "whatsapp")) from None
    tables: dict[str, dict[str, Entry]] = {}
    for table in _TABLES:
        section = data.get(table, {})
        tables[table] = {}
        for seam_id, values in section.items():
            if not isinstance(values, dict):
                raise PropertiesError(
                    f'{table}.{seam_id} must be a section like [{table}."ID"]',
                    _line_of(source, seam_id),
                )
            tables[table][seam_id] = _entry(source, table, seam_id, values)
    return PropertyMap(tables["workspaces"], tables["spaces"], whatsapp)


def _entry(source: str, table: str, seam_id: str, values: dict[str, object]) -> Entry:
    line = _line_of(source, seam_id)
    for key, value in values.items():
        if key not in _ENTRY_KEYS:
            raise PropertiesError(
                f"[{table}.{seam_id}] has an unknown setting {key!r} "
                f"(allowed: {', '.join(sorted(_ENTRY_KEYS))})",
                line,
            )
        if key in _SWITCH_KEYS:
            if not isinstance(value, bool):
                raise PropertiesError(
                    f"[{table}.{seam_id}] {key} must be true or false (without quotes)", line
                )
        elif key not in _LIST_KEYS | _TABLE_KEYS and not isinstance(value, str):
            raise PropertiesError(f"[{table}.{seam_id}] {key} must be text in quotes", line)
    if "twilio_from" in values and "twilio_messaging_service_sid" in values:
        raise PropertiesError(
            f"[{table}.{seam_id}] sets both twilio_from and twilio_messaging_service_sid: "
            "set one (the SMS sender its guests see)",
            line,
        )
    try:
        locale = values.get("locale")
        timezone = values.get("timezone")
        country = values.get("country")
        text = {key: str(value).strip() for key, value in values.items() if isinstance(value, str)}
        return Entry(
            locale=normalize_locale(locale) if isinstance(locale, str) else None,
            timezone=check_timezone(timezone) if isinstance(timezone, str) else None,
            property_name=str(values["property_name"]) if "property_name" in values else None,
            country=check_country(country) if isinstance(country, str) else None,
            front_desk_email=_checked(text, "front_desk_email", check_email),
            twilio_from=_checked(text, "twilio_from", check_phone_number),
            twilio_messaging_service_sid=_checked(
                text, "twilio_messaging_service_sid", check_messaging_service
            ),
            sendgrid_from_email=_checked(text, "sendgrid_from_email", check_email),
            sendgrid_from_name=_checked(text, "sendgrid_from_name", check_sender_name),
            channels=check_channels(values["channels"]) if "channels" in values else None,
            whatsapp_from=_checked(text, "whatsapp_from", check_whatsapp_sender),
            whatsapp=parse_templates(values.get("whatsapp", {})),
            guest_resend_link=_switch(values, "guest_resend_link"),
        )
    except ValueError as exc:
        raise PropertiesError(f"[{table}.{seam_id}] {exc}", line) from None


def countries_in(path: Path) -> set[str]:
    """The countries properties.toml at `path` gives its hotels; none when it is missing or
    cannot be read (`keycourier templates check` reports why)."""
    try:
        return parse_properties(path.read_text(encoding="utf-8")).countries()
    except (OSError, UnicodeDecodeError, PropertiesError):
        return set()


def _checked(values: Mapping[str, str], key: str, check: Callable[[str], str]) -> str | None:
    if key not in values:
        return None
    try:
        return check(values[key])
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _switch(values: Mapping[str, object], key: str) -> bool | None:
    value = values.get(key)
    return value if isinstance(value, bool) else None


def check_email(text: str) -> str:
    if not _EMAIL.fullmatch(text):
        raise ValueError(f"{text!r} is not an email address (e.g. frontdesk@hotel.example)")
    return text


def check_phone_number(text: str) -> str:
    if not _E164.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a phone number in E.164 form (+ then country code and number, "
            "no spaces, e.g. +33612345678)"
        )
    return text


def check_messaging_service(text: str) -> str:
    if not _MESSAGING_SERVICE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a Twilio Messaging Service SID (MG followed by 32 hex characters)"
        )
    return text


def check_channels(value: object) -> tuple[Channel, ...]:
    """`["whatsapp", "sms", "email"]`: each channel once, in the order they are tried."""
    if not isinstance(value, list) or not value:
        raise ValueError('channels must be a list, e.g. ["whatsapp", "sms", "email"]')
    channels: list[Channel] = []
    for item in value:
        name = item.strip().lower() if isinstance(item, str) else None
        channel = next((c for c in _CHANNELS if c == name), None)
        if channel is None:
            raise ValueError(
                f"channels: {item!r} is not a channel (they are: whatsapp, sms, email)"
            )
        if channel in channels:
            raise ValueError(f"channels: {channel} is listed twice")
        channels.append(channel)
    return tuple(channels)


def check_whatsapp_sender(text: str) -> str:
    """A WhatsApp sender: +E.164 (`whatsapp:+...` alike) or a Messaging Service SID."""
    sender = text.removeprefix("whatsapp:")
    if sender.startswith("MG"):
        return check_messaging_service(sender)
    return check_phone_number(sender)


def check_sender_name(text: str) -> str:
    if not text or len(text) > MAX_SENDER_NAME or any(ord(c) < 32 for c in text):
        raise ValueError(
            f"must be one line of 1 to {MAX_SENDER_NAME} characters (the name guests see as "
            "the sender)"
        )
    return text


def _line_of(source: str, needle: str) -> int | None:
    for number, line in enumerate(source.splitlines(), start=1):
        if needle in line and not line.lstrip().startswith("#"):
            return number
    return None
