"""The long-lived objects a worker process needs, built once from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from app.adapters.dry_run import DryRunEmail, DryRunSms
from app.adapters.seam_api import SeamApiReader
from app.adapters.sendgrid_email import SendGridEmail
from app.adapters.timed import TimedEmail, TimedSeamReader, TimedSms
from app.adapters.twilio_sms import TwilioSms
from app.ledger.store import Ledger
from app.messages.live import LiveTemplates
from app.ports import EmailSender, SeamReader, SmsSender
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    seam: SeamReader
    sms: SmsSender
    email: EmailSender
    renderer: LiveTemplates

    @classmethod
    def from_settings(cls, settings: Settings, ledger: Ledger | None = None) -> Services:
        settings.require("SEAM_API_KEY")
        assert settings.seam_api_key is not None
        return cls(
            settings=settings,
            ledger=ledger or Ledger.from_url(settings.database_url, settings.database_pool_size),
            seam=TimedSeamReader(
                SeamApiReader(
                    api_key=settings.seam_api_key.get_secret_value(),
                    endpoint=settings.seam_endpoint,
                    timeout=settings.provider_timeout_seconds,
                )
            ),
            sms=build_sms_sender(settings),
            email=build_email_sender(settings),
            renderer=LiveTemplates.from_settings(settings),
        )


def build_sms_sender(settings: Settings) -> SmsSender:
    if not settings.sms_enabled:
        return DryRunSms(settings.dry_run_outbox)
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    twilio = TwilioSms(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        base_url=settings.twilio_base_url,
        timeout=settings.provider_timeout_seconds,
        status_callback=settings.twilio_status_callback_url,
    )
    return TimedSms(twilio)


def build_email_sender(settings: Settings) -> EmailSender:
    if not settings.email_enabled:
        return DryRunEmail(settings.dry_run_outbox)
    assert settings.sendgrid_api_key is not None
    assert settings.sendgrid_from_email is not None
    sendgrid = SendGridEmail(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        from_email=settings.sendgrid_from_email,
        base_url=settings.sendgrid_base_url,
        timeout=settings.provider_timeout_seconds,
    )
    return TimedEmail(sendgrid)
