"""Seam's SDK over `KeptTransport` (app/adapters/kept_http.py): reads from one thread share one
connection, a kept connection is used again only when safe, failures are httpx's own (so the
SDK's retries and our translation see what they saw), and a proxy's URLs still go through
httpx's proxy transport."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from app.adapters import kept_http
from app.adapters.seam_api import SeamApiReader
from app.errors import TransientProviderError
from app.standins.seam import SeamStandin
from tests.adapters.conftest import RawServer
from tests.adapters.test_seam_api import CODE_METHOD_ID


def test_reads_from_one_thread_share_one_connection(seam: SeamStandin) -> None:
    with SeamApiReader(seam.api_key, seam.url, timeout=2.0) as reader:
        for _ in range(5):
            reader.get_access_method(CODE_METHOD_ID)
        assert seam.connections == 1
        other = threading.Thread(target=lambda: reader.get_access_method(CODE_METHOD_ID))
        other.start()
        other.join()
    assert seam.connections == 2


def test_a_connection_idle_too_long_is_not_used_again(
    seam: SeamStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept_http, "MAX_IDLE_SECONDS", 0.0)
    with SeamApiReader(seam.api_key, seam.url, timeout=2.0) as reader:
        for _ in range(3):
            reader.get_access_method(CODE_METHOD_ID)
    assert seam.connections == 3


def test_an_answer_cut_off_is_retried_then_transient(
    raw_server: Callable[..., RawServer],
) -> None:
    """The server reads each request and hangs up: a read is retried by the SDK's policy (a
    read is safe to repeat), then reported as a transient connection error."""
    server = raw_server(lambda _: None)
    reader = SeamApiReader("seam_testkey_x", server.url, timeout=2.0)
    with pytest.raises(TransientProviderError) as caught:
        reader.get_guest("ui-1")
    assert caught.value.code == "connection_error"
    assert len(server.requests) == 3  # the first try and the policy's two retries
    assert all(b"/user_identities/get" in request for request in server.requests)


def test_a_proxy_still_carries_seams_requests(
    seam: SeamStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set for the stand-in's URL (a closed port), the read goes to the proxy
    and fails there; NO_PROXY naming the host sends it straight again."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    proxied = SeamApiReader(seam.api_key, seam.url, timeout=2.0)
    with proxied, pytest.raises(TransientProviderError):
        proxied.get_access_method(CODE_METHOD_ID)
    assert seam.requests == []

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with SeamApiReader(seam.api_key, seam.url, timeout=2.0) as reader:
        assert reader.get_access_method(CODE_METHOD_ID).access_method_id == CODE_METHOD_ID


def test_closing_the_reader_closes_every_threads_connection(seam: SeamStandin) -> None:
    """A reader closed at shutdown leaves no connection open, a living thread's included."""
    reader = SeamApiReader(seam.api_key, seam.url, timeout=2.0)
    read, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        reader.get_access_method(CODE_METHOD_ID)
        read.set()
        done.wait(5)

    other = threading.Thread(target=other_thread)
    other.start()
    assert read.wait(5)
    reader.get_access_method(CODE_METHOD_ID)
    assert reader._kept is not None
    opened = list(reader._kept._connections._opened)
    assert len(opened) == 2
    assert all(connection.sock is not None for connection in opened)

    reader.close()

    assert all(connection.sock is None for connection in opened)
    done.set()
    other.join()
