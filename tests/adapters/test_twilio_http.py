"""Twilio's SDK over http.client (app/adapters/twilio_http.py): what goes out is what requests
sent, each thread keeps its connection to Twilio, a kept connection is used again only when
safe, a failure says whether Twilio may have acted, and certificates are trusted as requests
trusted them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twilio.http.http_client import TwilioHttpClient

from app.adapters import kept_http
from app.adapters.twilio_http import KeptHttpClient, tls_as_requests
from app.adapters.twilio_sms import TwilioSms
from app.errors import TransientProviderError, UnknownOutcome
from app.ports import Sms
from app.standins.twilio import TwilioStandin
from tests.adapters.conftest import FROM_NUMBER, RawServer

GUEST = "+15555550123"
BODY = "Your door code for Room 204 is 4821. Welcome!"
CREATED = json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}).encode()


def sms_to(url: str, timeout: float = 2.0) -> TwilioSms:
    return TwilioSms("AC" + "1" * 32, "token", FROM_NUMBER, base_url=url, timeout=timeout)


def test_what_goes_out_is_what_the_sdks_own_client_sent(twilio: TwilioStandin) -> None:
    """The same message through the SDK's requests-based client and through ours reaches the
    stand-in with the same method, path, form, credentials and SDK headers."""
    ours = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    ours.send_sms(Sms(GUEST, BODY, reference="dlv-1"))
    theirs = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    theirs._twilio.client.http_client = TwilioHttpClient(timeout=2.0)
    theirs._client = theirs._twilio.client
    theirs.send_sms(Sms(GUEST, BODY, reference="dlv-1"))

    mine, sdk = twilio.requests
    assert (mine.method, mine.path, mine.form) == (sdk.method, sdk.path, sdk.form)
    for name in ("authorization", "user-agent", "accept", "accept-charset", "content-type"):
        assert mine.headers[name] == sdk.headers[name], name
    assert len(twilio.sent) == 2


def test_messages_from_one_thread_share_one_connection(twilio: TwilioStandin) -> None:
    """Ten messages from one thread, one connection; another thread opens its own."""
    sms = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    for _ in range(10):
        sms.send_sms(Sms(GUEST, BODY))
    assert twilio.connections == 1

    other = threading.Thread(target=lambda: [sms.send_sms(Sms(GUEST, BODY)) for _ in range(3)])
    other.start()
    other.join()
    assert (len(twilio.sent), twilio.connections) == (13, 2)


def test_a_connection_idle_too_long_is_not_used_again(
    twilio: TwilioStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept_http, "MAX_IDLE_SECONDS", 0.0)
    sms = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    for _ in range(3):
        sms.send_sms(Sms(GUEST, BODY))
    assert (len(twilio.sent), twilio.connections) == (3, 3)


def created(_: bytes) -> bytes:
    return (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(CREATED), CREATED)
    )


def test_a_connection_the_server_closed_is_not_used_again(
    raw_server: Callable[..., RawServer],
) -> None:
    """Each message after the server hung up goes out on a new connection, and arrives once."""
    server = raw_server(created)
    sms = sms_to(server.url)
    for _ in range(3):
        assert sms.send_sms(Sms(GUEST, BODY)).provider_message_id == "SM" + "0" * 32
        assert server.served.acquire(timeout=5)
    assert len(server.requests) == 3


def test_an_answer_cut_off_after_the_request_is_an_unknown_outcome(
    raw_server: Callable[..., RawServer],
) -> None:
    """The request arrived whole and the server hung up without answering: Twilio may have
    sent it, so it is an UnknownOutcome (looked up before any resend), and it is not sent
    again behind the caller's back."""
    server = raw_server(lambda _: None)
    with pytest.raises(UnknownOutcome) as caught:
        sms_to(server.url).send_sms(Sms(GUEST, BODY))
    assert caught.value.code == "answer_lost"
    assert server.served.acquire(timeout=5)
    assert len(server.requests) == 1
    assert BODY not in str(caught.value)


def test_an_answer_cut_off_midway_is_an_unknown_outcome(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(lambda body: created(body)[:-10])
    with pytest.raises(UnknownOutcome) as caught:
        sms_to(server.url).send_sms(Sms(GUEST, BODY))
    assert caught.value.code == "answer_lost"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA of our own and a certificate for 127.0.0.1 it signed."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keycourier test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ip = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([ip]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.pem")
    return Certificates(folder / "ca.pem", server)


def test_certificates_are_trusted_as_requests_trusts_them(
    raw_server: Callable[..., RawServer],
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server whose certificate requests' own CA bundle does not hold is refused before
    anything is sent (safe to retry); with REQUESTS_CA_BUNDLE naming its CA, read when the
    adapter is built, the message goes."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = raw_server(created, certificates.server)
    with pytest.raises(TransientProviderError) as caught:
        sms_to(server.url).send_sms(Sms(GUEST, BODY))
    assert caught.value.code == "connection_error"
    assert server.served.acquire(timeout=5)
    assert server.requests == []

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    sent = sms_to(server.url).send_sms(Sms(GUEST, BODY))
    assert sent.provider_message_id == "SM" + "0" * 32
    assert len(server.requests) == 1


def test_the_ca_bundle_by_default_is_requests_own() -> None:
    """requests' own bundle, loaded once a process however many clients are built."""
    loaded = tls_as_requests(True).cert_store_stats()["x509_ca"]
    assert loaded > 50  # certifi's bundle, not an empty store
    assert tls_as_requests(True) is tls_as_requests(True)
    with pytest.raises(ValueError, match="cannot be turned off"):
        tls_as_requests(False)


def test_a_proxy_for_twilio_keeps_the_sdks_own_client(
    twilio: TwilioStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http.client would not go through the proxy: with one set for Twilio's URL, the SDK's
    requests-based client carries the messages; NO_PROXY naming the host takes ours again."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    proxied = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    assert isinstance(proxied._client.http_client, TwilioHttpClient)

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = TwilioSms(twilio.account_sid, twilio.auth_token, FROM_NUMBER, base_url=twilio.url)
    assert isinstance(direct._client.http_client, KeptHttpClient)
