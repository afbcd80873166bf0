"""Fixtures: adapters pointed at the stand-ins (tests/conftest.py) through the real SDKs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.adapters.seam_api import SeamApiReader
from app.adapters.sendgrid_email import SendGridEmail
from app.adapters.twilio_sms import TwilioSms
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin

FROM_NUMBER = "+15555550100"
FROM_EMAIL = "front-desk@hotel.example"


@pytest.fixture
def seam_reader(seam: SeamStandin) -> Iterator[SeamApiReader]:
    with SeamApiReader(seam.api_key, seam.url, timeout=2.0) as reader:
        yield reader


@pytest.fixture
def twilio_sms(twilio: TwilioStandin) -> TwilioSms:
    return TwilioSms(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM_NUMBER,
        base_url=twilio.url,
        timeout=2.0,
    )


@pytest.fixture
def sendgrid_email(sendgrid: SendGridStandin) -> SendGridEmail:
    return SendGridEmail(sendgrid.api_key, FROM_EMAIL, sendgrid.url, timeout=2.0)


@pytest.fixture
def dead_url() -> str:
    """The URL of a port that was just listening and no longer is: connections are refused."""
    standin = SeamStandin().start()
    url = standin.url
    standin.stop()
    return url
