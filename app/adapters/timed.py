"""The ports, timed: each call to Seam, Twilio or SendGrid is observed by the provider latency
histogram (app/observability/metrics.py) without the adapters knowing. app/adapters/build.py wraps
the real adapters in these; the dry-run senders are not wrapped (no provider is called).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.observability.metrics import timed
from app.ports import (
    AccessGrant,
    AccessMethod,
    ActionAttempt,
    Email,
    EmailSender,
    Encoder,
    Guest,
    ProviderMessage,
    Related,
    SeamEventSummary,
    SeamReader,
    Sent,
    Sms,
    SmsSender,
    Space,
    WhatsApp,
    WhatsAppSender,
)


class TimedSeamReader:
    def __init__(self, inner: SeamReader) -> None:
        self._inner = inner

    def get_access_method(self, access_method_id: str) -> AccessMethod:
        return timed(
            "seam", "access_methods.get", lambda: self._inner.get_access_method(access_method_id)
        )

    def get_access_grant(self, access_grant_id: str) -> AccessGrant:
        return timed(
            "seam", "access_grants.get", lambda: self._inner.get_access_grant(access_grant_id)
        )

    def get_guest(self, user_identity_id: str) -> Guest:
        return timed("seam", "user_identities.get", lambda: self._inner.get_guest(user_identity_id))

    def get_spaces(self, access_method_id: str) -> list[Space]:
        return timed(
            "seam", "access_methods.get_related", lambda: self._inner.get_spaces(access_method_id)
        )

    def get_related(self, access_method_id: str) -> Related:
        return timed(
            "seam", "access_methods.get_related", lambda: self._inner.get_related(access_method_id)
        )

    def get_access_method_and_related(self, access_method_id: str) -> tuple[AccessMethod, Related]:
        # Timed as get_related: one call, unless Seam's batch lacks the access method.
        return timed(
            "seam",
            "access_methods.get_related",
            lambda: self._inner.get_access_method_and_related(access_method_id),
        )

    def list_events(self, since: datetime, event_types: Sequence[str]) -> list[SeamEventSummary]:
        return timed("seam", "events.list", lambda: self._inner.list_events(since, event_types))

    def list_encoders(self, acs_system_ids: Sequence[str] = ()) -> list[Encoder]:
        return timed("seam", "acs.encoders.list", lambda: self._inner.list_encoders(acs_system_ids))

    def encode_access_method(
        self, access_method_id: str, acs_encoder_id: str, wait_seconds: float
    ) -> ActionAttempt:
        # Includes the wait for the encoder: the histogram shows how long the desk waits.
        return timed(
            "seam",
            "access_methods.encode",
            lambda: self._inner.encode_access_method(
                access_method_id, acs_encoder_id, wait_seconds
            ),
        )

    def get_action_attempt(self, action_attempt_id: str) -> ActionAttempt:
        return timed(
            "seam",
            "action_attempts.get",
            lambda: self._inner.get_action_attempt(action_attempt_id),
        )

    def assign_card(
        self, access_method_id: str, card_number: str, wait_seconds: float
    ) -> ActionAttempt:
        return timed(
            "seam",
            "access_methods.assign_card",
            lambda: self._inner.assign_card(access_method_id, card_number, wait_seconds),
        )

    def scan_to_assign(
        self, acs_encoder_id: str, user_identity_id: str, wait_seconds: float
    ) -> ActionAttempt:
        # Includes the wait for the encoder, as encode_access_method.
        return timed(
            "seam",
            "acs.encoders.scan_to_assign_credential",
            lambda: self._inner.scan_to_assign(acs_encoder_id, user_identity_id, wait_seconds),
        )


class TimedSms:
    def __init__(self, inner: SmsSender, provider: str = "twilio") -> None:
        self._inner = inner
        self._provider = provider

    def send_sms(self, message: Sms) -> Sent:
        return timed(self._provider, "send", lambda: self._inner.send_sms(message))

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        return timed(self._provider, "lookup", lambda: self._inner.recent_messages(to, since))


class TimedEmail:
    def __init__(self, inner: EmailSender, provider: str = "sendgrid") -> None:
        self._inner = inner
        self._provider = provider

    def send_email(self, message: Email) -> Sent:
        return timed(self._provider, "send", lambda: self._inner.send_email(message))

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        return timed(self._provider, "lookup", lambda: self._inner.recent_messages(to, since))


class TimedWhatsApp:
    def __init__(self, inner: WhatsAppSender, provider: str = "twilio") -> None:
        self._inner = inner
        self._provider = provider

    def send_whatsapp(self, message: WhatsApp) -> Sent:
        return timed(self._provider, "send", lambda: self._inner.send_whatsapp(message))

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        return timed(self._provider, "lookup", lambda: self._inner.recent_messages(to, since))
