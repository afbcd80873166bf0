"""Fixtures: the three stand-ins (started per test; they start in milliseconds) and adapters
pointed at them through the real SDKs."""

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
def seam_standin() -> Iterator[SeamStandin]:
    with SeamStandin() as standin:
        standin.load_samples()
        yield standin


@pytest.fixture
def seam_reader(seam_standin: SeamStandin) -> Iterator[SeamApiReader]:
    with SeamApiReader(seam_standin.api_key, seam_standin.url, timeout=2.0) as reader:
        yield reader


@pytest.fixture
def twilio_standin() -> Iterator[TwilioStandin]:
    with TwilioStandin() as standin:
        yield standin


@pytest.fixture
def twilio_sms(twilio_standin: TwilioStandin) -> TwilioSms:
    return TwilioSms(
        twilio_standin.account_sid,
        twilio_standin.auth_token,
        from_number=FROM_NUMBER,
        base_url=twilio_standin.url,
        timeout=2.0,
    )


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    with SendGridStandin() as standin:
        yield standin


@pytest.fixture
def sendgrid_email(sendgrid_standin: SendGridStandin) -> SendGridEmail:
    return SendGridEmail(sendgrid_standin.api_key, FROM_EMAIL, sendgrid_standin.url, timeout=2.0)


@pytest.fixture
def dead_url() -> str:
    """The URL of a port that was just listening and no longer is: connections are refused."""
    standin = SeamStandin().start()
    url = standin.url
    standin.stop()
    return url
