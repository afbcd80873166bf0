"""WhatsAppSender over the official `twilio` SDK: approved templates through the Content API.

A business-initiated WhatsApp message must use a template WhatsApp approved, so nothing here
sends a `Body`: each message is `ContentSid` (the template) and `ContentVariables` (a JSON
object of its placeholders' texts), from `whatsapp:+E164` or a Messaging Service with a
WhatsApp sender, to `whatsapp:+E164`. The status callback is the SMS one (Twilio posts the same
MessageStatus callbacks, with `read` besides). The SDK itself is used only in twilio_sms
(`TwilioClient`, shared): its errors become app.errors there, as for SMS, with the variables'
values (the PIN, the Instant Key URL) and the number removed from every message.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from app.adapters.twilio_sms import PROVIDER, TwilioClient, status_callback_url
from app.errors import PermanentProviderError
from app.observability.masking import mask_phone, mask_text
from app.ports import ProviderMessage, Sent, WhatsApp

log = logging.getLogger(__name__)

PREFIX = "whatsapp:"


class TwilioWhatsApp:
    """Sends one WhatsApp template message per call."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        *,
        status_callback: str | None = None,
    ) -> None:
        self._sender = sender
        self._status_callback = status_callback
        self._twilio = TwilioClient(account_sid, auth_token, base_url, timeout)

    def send_whatsapp(self, message: WhatsApp) -> Sent:
        ref = f"whatsapp ref={message.reference or '-'}"
        params: dict[str, Any] = {
            "to": PREFIX + message.to,
            "content_sid": message.content_sid,
            "content_variables": json.dumps(dict(message.variables), ensure_ascii=False),
        }
        sender = message.sender or self._sender
        if sender is None:
            raise PermanentProviderError(
                PROVIDER,
                f"{ref}: no WhatsApp sender: set TWILIO_WHATSAPP_FROM or the hotel's "
                "whatsapp_from in properties.toml",
                code="no_whatsapp_sender",
            )
        if sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = PREFIX + sender.removeprefix(PREFIX)
        if self._status_callback:
            params["status_callback"] = status_callback_url(self._status_callback, message)
        sid = self._twilio.create(params, ref, lambda text: _scrub(text, message))
        log.debug(
            "twilio accepted whatsapp ref=%s to=%s", message.reference, mask_phone(message.to)
        )
        return Sent(provider=PROVIDER, provider_message_id=sid)

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        """The WhatsApp messages to `to` since `since`, with the text Twilio rendered from
        their templates (what app/delivery/send.py matches a lost send against)."""
        return self._twilio.recent(PREFIX + to, since, "whatsapp lookup")


def _scrub(text: Any, message: WhatsApp) -> str:
    """Provider text with every variable's value removed and numbers and emails masked."""
    out = str(text or "")
    for value in sorted(message.variables.values(), key=len, reverse=True):
        if len(value) >= 3 or value.isdigit():
            out = out.replace(value, "[variable]")
    return mask_text(out.replace(message.to, mask_phone(message.to)))
