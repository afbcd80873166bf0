"""The adapters a worker uses, built from Settings: real ones, each timed, or dry-run senders for
a channel with no credentials."""

from __future__ import annotations

from app.adapters.dry_run import DryRunEmail, DryRunSms, DryRunWhatsApp
from app.adapters.seam_api import SeamApiReader
from app.adapters.sendgrid_email import SendGridEmail
from app.adapters.timed import TimedEmail, TimedSeamReader, TimedSms, TimedWhatsApp
from app.adapters.twilio_sms import TwilioSms
from app.adapters.twilio_whatsapp import TwilioWhatsApp
from app.ports import EmailSender, SeamReader, SmsSender, WhatsAppSender
from app.settings import Settings


def seam_reader(settings: Settings) -> SeamReader:
    settings.require("SEAM_API_KEY")
    assert settings.seam_api_key is not None
    return _reader(settings, settings.seam_api_key.get_secret_value())


def seam_readers(settings: Settings) -> tuple[SeamReader | None, dict[str, SeamReader]]:
    """The SEAM_API_KEY reader (None when only SEAM_WORKSPACES_FILE's keys are set), and one
    reader per workspace of SEAM_WORKSPACES_FILE, with its own key."""
    settings.require("SEAM_API_KEY")
    workspaces = {
        workspace.workspace_id: _reader(settings, workspace.require_api_key())
        for workspace in settings.seam_workspaces
    }
    if settings.seam_api_key is None:
        return None, workspaces
    return seam_reader(settings), workspaces


def _reader(settings: Settings, api_key: str) -> SeamReader:
    return TimedSeamReader(
        SeamApiReader(
            api_key=api_key,
            endpoint=settings.seam_endpoint,
            timeout=settings.provider_timeout_seconds,
        )
    )


def sms_sender(settings: Settings) -> SmsSender:
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


def whatsapp_sender(settings: Settings) -> WhatsAppSender:
    if not settings.whatsapp_enabled:
        return DryRunWhatsApp(settings.dry_run_outbox)
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    twilio = TwilioWhatsApp(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        sender=settings.twilio_whatsapp_from,
        base_url=settings.twilio_base_url,
        timeout=settings.provider_timeout_seconds,
        status_callback=settings.twilio_status_callback_url,
    )
    return TimedWhatsApp(twilio)


def email_sender(settings: Settings) -> EmailSender:
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
