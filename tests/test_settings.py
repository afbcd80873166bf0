"""Configuration: the names in DESIGN.md section 3, and one clear line when a value is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.settings import DEFAULT_DATABASE_URL, load_settings
from tests.conftest import ROOT, WEBHOOK_SECRET

SECRET_VALUE = WEBHOOK_SECRET


def test_reads_every_contract_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each documented variable lands in its setting."""
    env = {
        "SEAM_API_KEY": "seam_live_abc",
        "SEAM_ENDPOINT": "http://127.0.0.1:9/seam",
        "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "DATABASE_URL": "postgresql://u:p@db:5432/keys",
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "tok",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_MESSAGING_SERVICE_SID": "MG123",
        "TWILIO_BASE_URL": "http://127.0.0.1:9/twilio",
        "SENDGRID_API_KEY": "SG.key",
        "SENDGRID_FROM_EMAIL": "keys@hotel.example",
        "SENDGRID_BASE_URL": "http://127.0.0.1:9/sendgrid",
        "FRONT_DESK_EMAIL": "desk@hotel.example",
        "TEMPLATES_DIR": "/srv/templates",
        "PORT": "5123",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.seam_api_key is not None
    assert settings.seam_api_key.get_secret_value() == "seam_live_abc"
    assert settings.seam_endpoint == "http://127.0.0.1:9/seam"
    assert settings.broker_url == "redis://127.0.0.1:6379/2"
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/keys"
    assert settings.twilio_messaging_service_sid == "MG123"
    assert settings.twilio_base_url == "http://127.0.0.1:9/twilio"
    assert settings.sendgrid_base_url == "http://127.0.0.1:9/sendgrid"
    assert settings.front_desk_email == "desk@hotel.example"
    assert str(settings.templates_dir) == "/srv/templates"
    assert settings.port == 5123
    assert settings.sms_enabled
    assert settings.email_enabled


def test_embedded_defaults_when_nothing_is_set() -> None:
    """No broker, database or provider settings: embedded broker, SQLite ledger, dry runs."""
    settings = load_settings({})

    assert settings.embedded_broker
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert not settings.sms_enabled
    assert not settings.email_enabled
    assert settings.delivery_channels == ("sms", "email")


def test_heroku_postgres_url_is_accepted() -> None:
    """Heroku's postgres:// form becomes a URL SQLAlchemy 2 and psycopg 3 understand."""
    settings = load_settings({"DATABASE_URL": "postgres://u:p@ec2.example:5432/d1"})

    assert settings.database_url == "postgresql+psycopg://u:p@ec2.example:5432/d1"


def test_delivery_channels_narrow() -> None:
    """DELIVERY_CHANNELS=sms keeps email out."""
    assert load_settings({"DELIVERY_CHANNELS": " SMS "}).delivery_channels == ("sms",)


def test_secrets_print_as_stars() -> None:
    """A settings object printed by accident does not show its secrets."""
    settings = load_settings({"SEAM_WEBHOOK_SECRET": SECRET_VALUE, "SEAM_API_KEY": "seam_xyz"})

    assert SECRET_VALUE not in repr(settings)
    assert "seam_xyz" not in str(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SEAM_WEBHOOK_SECRET": "not-a-secret!"}, "SEAM_WEBHOOK_SECRET"),
        ({"SEAM_API_KEY": "abc"}, "SEAM_API_KEY"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "amqp://x"}, "REDIS_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DELIVERY_CHANNELS": "sms,pigeon"}, "DELIVERY_CHANNELS"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"DEFAULT_LOCALE": "klingon"}, "DEFAULT_LOCALE"),
        ({"SMS_MAX_SEGMENTS": "0"}, "SMS_MAX_SEGMENTS"),
        ({"TEMPLATES_RELOAD_SECONDS": "-1"}, "TEMPLATES_RELOAD_SECONDS"),
    ],
)
def test_malformed_value_is_one_line_naming_the_variable(env: dict[str, str], named: str) -> None:
    """A malformed value stops start-up with one line that names the variable, not the value."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env)

    message = str(caught.value)
    assert message.startswith(named)
    assert "\n" not in message
    [value] = env.values()
    assert value not in message


def test_missing_required_value_names_it() -> None:
    """A required variable that is unset is named, with what it should be."""
    with pytest.raises(ConfigError, match=r"^SEAM_WEBHOOK_SECRET is not set: .*whsec_"):
        load_settings({}, require=("SEAM_WEBHOOK_SECRET",))


def test_serve_without_secret_stops_with_one_clear_line(tmp_path: Path) -> None:
    """`keycourier serve` with no webhook secret exits 2 and prints one line naming it."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "keycourier: configuration error: SEAM_WEBHOOK_SECRET is not set: it must be "
        "the signing secret Seam shows for your webhook (whsec_...)"
    ]


def test_template_settings_defaults_and_locale_spelling() -> None:
    """Templates default to en, 2 SMS segments, a 2 s reload; pt-BR is read as Babel's pt_BR."""
    defaults = load_settings({})
    assert (defaults.default_locale, defaults.sms_max_segments) == ("en", 2)
    assert defaults.templates_reload_seconds == 2.0
    assert load_settings({"DEFAULT_LOCALE": "pt-BR"}).default_locale == "pt_BR"


def test_unverified_redis_tls_is_written_into_the_url() -> None:
    """REDIS_TLS_VERIFY=false makes a rediss:// URL skip certificate checks for every client;
    by default, and for plain redis://, the URL is left alone."""
    import redis

    url = "rediss://:pw@redis.example.com:6380/0"
    unverified = load_settings({"REDIS_URL": url, "REDIS_TLS_VERIFY": "false"}).redis_url
    assert unverified == url + "?ssl_cert_reqs=none"
    assert redis.Redis.from_url(unverified).connection_pool.connection_kwargs["ssl_cert_reqs"] == (
        "none"
    )
    assert load_settings({"REDIS_URL": url}).redis_url == url
    plain = "redis://localhost:6379/0"
    assert load_settings({"REDIS_URL": plain, "REDIS_TLS_VERIFY": "false"}).redis_url == plain
