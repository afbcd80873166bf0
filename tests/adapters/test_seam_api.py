"""SeamApiReader and the Seam stand-in, through the official `seam` SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from seam.seam import Seam

from app.adapters.seam_api import SeamApiReader
from app.errors import NotFound, PermanentProviderError, TransientProviderError
from app.ports import AccessGrant, AccessMethod, Guest, Space
from app.standins.seam import SeamStandin

CODE_METHOD_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
MOBILE_KEY_METHOD_ID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
CARD_METHOD_ID = "27d8ad77-55c2-4e20-b5b3-43555926f0e8"
GRANT_ID = "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"
USER_IDENTITY_ID = "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"
SPACE_ID = "5e1a2b3c-4d5e-4f60-8172-839405162738"
SERVER_ERROR = {"error": {"type": "internal_server_error", "message": "boom"}, "ok": False}


def _sdk(standin: SeamStandin) -> Seam:
    return Seam(api_key=standin.api_key, endpoint=standin.url, timeout=2.0)


# -- reads through the adapter -------------------------------------------------------------


def test_get_access_method_code(seam_reader: SeamApiReader, seam: SeamStandin) -> None:
    """A code access method comes back as a ports.AccessMethod holding its PIN, read by GET."""
    method = seam_reader.get_access_method(CODE_METHOD_ID)
    assert type(method) is AccessMethod
    assert (method.mode, method.code, method.credential, method.is_issued) == (
        "code",
        "1234",
        "1234",
        True,
    )
    assert "1234" not in repr(method)
    [request] = seam.requests
    assert (request.method, request.path) == ("GET", "/access_methods/get")
    assert request.query["access_method_id"] == [CODE_METHOD_ID]


def test_get_access_method_mobile_key(seam_reader: SeamApiReader) -> None:
    """A mobile key's credential is its Instant Key URL."""
    method = seam_reader.get_access_method(MOBILE_KEY_METHOD_ID)
    assert method.mode == "mobile_key"
    assert method.credential == "https://ik.seam.co/ABCXYZ"


def test_get_access_method_card(seam_reader: SeamApiReader) -> None:
    """A card carries no credential but its encoding flags."""
    method = seam_reader.get_access_method(CARD_METHOD_ID)
    assert (method.mode, method.credential) == ("card", None)
    assert (method.is_issued, method.is_encoding_required, method.is_ready_for_encoding) == (
        False,
        True,
        True,
    )


def test_get_access_method_unknown_mode(seam_reader: SeamApiReader, seam: SeamStandin) -> None:
    """A mode keycourier does not know is a permanent error, not a guess."""
    seam.put_access_method({"access_method_id": "am-x", "mode": "hologram", "workspace_id": "w"})
    with pytest.raises(PermanentProviderError) as caught:
        seam_reader.get_access_method("am-x")
    assert caught.value.code == "unsupported_mode"


def test_get_access_grant(seam_reader: SeamApiReader) -> None:
    """An access grant's window is parsed into timezone-aware datetimes."""
    grant = seam_reader.get_access_grant(GRANT_ID)
    assert type(grant) is AccessGrant
    assert grant.starts_at == datetime(2053, 6, 20, 15, 0, tzinfo=UTC)
    assert grant.ends_at == datetime(2053, 6, 23, 11, 0, tzinfo=UTC)
    assert grant.space_ids == (SPACE_ID,)
    assert (grant.user_identity_id, grant.access_grant_key) == (
        USER_IDENTITY_ID,
        "reservation-8841",
    )


def test_get_guest(seam_reader: SeamApiReader) -> None:
    """A user identity becomes a Guest with name, phone and email."""
    guest = seam_reader.get_guest(USER_IDENTITY_ID)
    assert guest == Guest(
        USER_IDENTITY_ID, "Alex Rivera", "+15555550123", "alex.rivera@example.com"
    )


def test_get_spaces(seam_reader: SeamApiReader, seam: SeamStandin) -> None:
    """Spaces come from access_methods/get_related with include=spaces, named by display_name."""
    seam.put_space({"space_id": SPACE_ID, "name": "r204", "display_name": "Room 204"})
    assert seam_reader.get_spaces(CODE_METHOD_ID) == [Space(SPACE_ID, "Room 204")]
    [request] = seam.requests
    assert request.path == "/access_methods/get_related"
    assert request.query["include"] == ["spaces"]
    assert request.query["access_method_ids"] == [CODE_METHOD_ID]


def test_access_method_and_related_in_one_call(
    seam_reader: SeamApiReader, seam: SeamStandin
) -> None:
    """For a delivery the access method comes with its spaces and grants: one get_related
    with include=access_methods, the same access method a GET reads."""
    seam.put_space({"space_id": SPACE_ID, "name": "r204", "display_name": "Room 204"})
    alone = seam_reader.get_access_method(CODE_METHOD_ID)
    seam.clear_requests()

    method, related = seam_reader.get_access_method_and_related(CODE_METHOD_ID)

    assert method == alone
    assert list(related.grants) == [GRANT_ID]
    assert related.spaces == [Space(SPACE_ID, "Room 204")]
    [request] = seam.requests
    assert request.path == "/access_methods/get_related"
    assert sorted(request.query["include"]) == ["access_grants", "access_methods", "spaces"]


def _batch_answer(seam: SeamStandin, access_methods: list[dict[str, object]] | None) -> None:
    """The next get_related answers with the stand-in's grant and these access methods."""
    grant = seam.get("access_grant", GRANT_ID)
    batch: dict[str, object] = {"spaces": [], "access_grants": [grant]}
    if access_methods is not None:
        batch["access_methods"] = access_methods
    seam.fail_next(1, 200, {"batch": batch, "ok": True}, path="/access_methods/get_related")


@pytest.mark.parametrize(
    "listed",
    ["absent", "another access method", "issued without its code"],
)
def test_access_method_read_on_its_own_when_the_batch_lacks_it(
    seam_reader: SeamApiReader, seam: SeamStandin, listed: str
) -> None:
    """A batch that does not hold the access method, or holds it issued without its
    credential, is not taken at its word: the access method is read with a GET, so the guest
    still gets the PIN."""
    stored = seam.get("access_method", CODE_METHOD_ID)
    assert stored is not None
    methods = {
        "absent": None,
        "another access method": [seam.get("access_method", MOBILE_KEY_METHOD_ID)],
        "issued without its code": [{k: v for k, v in stored.items() if k != "code"}],
    }[listed]
    _batch_answer(seam, methods)
    seam.clear_requests()

    method, related = seam_reader.get_access_method_and_related(CODE_METHOD_ID)

    assert (method.access_method_id, method.code) == (CODE_METHOD_ID, "1234")
    assert list(related.grants) == [GRANT_ID]
    assert [r.path for r in seam.requests] == ["/access_methods/get_related", "/access_methods/get"]


def test_access_method_not_yet_issued_is_taken_from_the_batch(
    seam_reader: SeamApiReader, seam: SeamStandin
) -> None:
    """Not issued yet, an access method has no credential to miss: the batch's answer stands."""
    stored = seam.get("access_method", CODE_METHOD_ID)
    assert stored is not None
    _batch_answer(seam, [{**stored, "is_issued": False, "code": None}])
    seam.clear_requests()

    method, _ = seam_reader.get_access_method_and_related(CODE_METHOD_ID)

    assert (method.is_issued, method.code) == (False, None)
    assert [r.path for r in seam.requests] == ["/access_methods/get_related"]


def test_a_cookie_seam_sets_is_still_kept(seam_reader: SeamApiReader, seam: SeamStandin) -> None:
    """Responses are only read for cookies when they set one (Seam sets none); one that does
    is kept by the SDK's client as before."""
    stored = seam.get("access_method", CODE_METHOD_ID)
    seam_reader.get_access_method(CODE_METHOD_ID)
    assert not seam_reader._seam.client.cookies
    seam.fail_next(
        1,
        200,
        {"access_method": stored, "ok": True},
        {"Set-Cookie": "seam_affinity=a1; Path=/"},
        path="/access_methods/get",
    )

    assert seam_reader.get_access_method(CODE_METHOD_ID).code == "1234"
    assert seam_reader._seam.client.cookies.get("seam_affinity") == "a1"


# -- errors through the adapter ------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "code"),
    [
        (lambda r: r.get_access_method("nope"), "access_method_not_found"),
        (lambda r: r.get_access_grant("nope"), "access_grant_not_found"),
        (lambda r: r.get_guest("nope"), "user_identity_not_found"),
        (lambda r: r.get_spaces("nope"), "access_method_not_found"),
    ],
)
def test_unknown_id_is_not_found(
    seam_reader: SeamApiReader, read: Callable[[SeamApiReader], object], code: str
) -> None:
    """Seam's 404 *_not_found becomes NotFound carrying Seam's error type and status."""
    with pytest.raises(NotFound) as caught:
        read(seam_reader)
    assert (caught.value.code, caught.value.status) == (code, 404)


def test_deleted_access_method_is_not_found(seam_reader: SeamApiReader, seam: SeamStandin) -> None:
    """An access method deleted at Seam reads as NotFound."""
    seam.delete_access_method(CODE_METHOD_ID)
    with pytest.raises(NotFound):
        seam_reader.get_access_method(CODE_METHOD_ID)


def test_server_error_beyond_sdk_retries_is_transient(
    seam_reader: SeamApiReader, seam: SeamStandin
) -> None:
    """A 500 that outlasts the SDK's two GET retries is transient, after three attempts."""
    seam.fail_next(3, 500, SERVER_ERROR)
    with pytest.raises(TransientProviderError) as caught:
        seam_reader.get_access_method(CODE_METHOD_ID)
    assert caught.value.status == 500
    assert len(seam.requests) == 3


def test_server_error_within_sdk_retries_recovers(
    seam_reader: SeamApiReader, seam: SeamStandin
) -> None:
    """Two 500s in a row are absorbed by the SDK's own retries."""
    seam.fail_next(2, 500, SERVER_ERROR)
    assert seam_reader.get_access_method(CODE_METHOD_ID).code == "1234"
    assert len(seam.requests) == 3


def test_rate_limit_is_transient_with_retry_after(
    seam_reader: SeamApiReader, seam: SeamStandin
) -> None:
    """A lasting 429 is transient and carries Seam's Retry-After hint, without long SDK sleeps."""
    body = {"error": {"type": "rate_limited", "message": "slow down"}, "ok": False}
    seam.fail_next(3, 429, body, {"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(TransientProviderError) as caught:
        seam_reader.get_access_method(CODE_METHOD_ID)
    assert time.monotonic() - started < 5
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)


def test_wrong_api_key_is_permanent(seam: SeamStandin) -> None:
    """A 401 is permanent, and the key never appears in the error."""
    key = "seam_wrongkey_123456"
    with (
        SeamApiReader(key, seam.url, timeout=2.0) as reader,
        pytest.raises(PermanentProviderError) as caught,
    ):
        reader.get_access_method(CODE_METHOD_ID)
    assert not isinstance(caught.value, NotFound)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert key not in str(caught.value)


def test_latency_beyond_timeout_is_transient(seam: SeamStandin) -> None:
    """An answer slower than the adapter's timeout is a transient timeout."""
    seam.latency = 1.0
    with (
        SeamApiReader(seam.api_key, seam.url, timeout=0.2) as reader,
        pytest.raises(TransientProviderError) as caught,
    ):
        reader.get_access_method(CODE_METHOD_ID)
    assert caught.value.code == "timeout"


def test_connection_refused_is_transient(dead_url: str) -> None:
    """Nobody listening is a transient connection error."""
    with (
        SeamApiReader("seam_testkey_standin", dead_url, timeout=1.0) as reader,
        pytest.raises(TransientProviderError) as caught,
    ):
        reader.get_guest(USER_IDENTITY_ID)
    assert caught.value.code == "connection_error"


# -- the stand-in's other routes, through the raw SDK -------------------------------------


def test_sdk_reads_access_grant_by_key(seam: SeamStandin) -> None:
    """access_grants/get also finds a grant by its access_grant_key."""
    with _sdk(seam) as sdk:
        grant = sdk.access_grants.get(access_grant_key="reservation-8841")
    assert grant.access_grant_id == GRANT_ID


def test_sdk_get_related_access_grants(seam: SeamStandin) -> None:
    """get_related with include=access_grants lists the grants holding the method."""
    with _sdk(seam) as sdk:
        batch = sdk.access_methods.get_related(
            access_method_ids=[CARD_METHOD_ID], include=["access_grants"]
        )
    assert [g["access_grant_id"] for g in batch.access_grants or []] == [GRANT_ID]
    assert batch.spaces is None


def test_sdk_events_list_filters_newest_first(seam: SeamStandin) -> None:
    """events/list filters by since and event_types and answers newest first."""
    for n, (kind, created) in enumerate(
        [
            ("access_method.issued", "2025-06-16T10:00:00.000Z"),
            ("access_method.issued", "2025-06-16T12:00:00.000Z"),
            ("access_method.revoked", "2025-06-16T13:00:00.000Z"),
            ("access_method.issued", "2025-06-15T09:00:00.000Z"),
        ]
    ):
        seam.put_event(
            {"event_id": f"ev-{n}", "event_type": kind, "created_at": created, "workspace_id": "w"}
        )
    with _sdk(seam) as sdk:
        events = sdk.events.list(
            since="2025-06-16T00:00:00.000Z", event_types=["access_method.issued"]
        )
    assert [e.event_id for e in events] == ["ev-1", "ev-0"]


def test_sdk_lists_encoders_and_encodes_a_card(seam: SeamStandin) -> None:
    """acs/encoders/list, access_methods/encode and action_attempts/get round-trip."""
    seam.put_acs_encoder(
        {
            "acs_encoder_id": "enc-1",
            "acs_system_id": "sys-1",
            "connected_account_id": "ca-1",
            "display_name": "Front desk",
            "workspace_id": "w",
            "created_at": "2025-01-01T00:00:00.000Z",
            "errors": [],
        }
    )
    with _sdk(seam) as sdk:
        [encoder] = sdk.acs.encoders.list(acs_system_id="sys-1")
        attempt = sdk.access_methods.encode(
            access_method_id=CARD_METHOD_ID, acs_encoder_id=encoder.acs_encoder_id
        )
        again = sdk.action_attempts.get(action_attempt_id=attempt.action_attempt_id)
    assert (attempt.action_type, attempt.status) == ("ENCODE_CREDENTIAL", "success")
    assert again.action_attempt_id == attempt.action_attempt_id
    stored = seam.get("access_method", CARD_METHOD_ID)
    assert stored is not None
    assert stored["is_issued"] is True


def test_reads_accept_post_json(seam: SeamStandin) -> None:
    """Every route also reads its parameters from a POST JSON body."""
    response = httpx.post(
        f"{seam.url}/user_identities/get",
        json={"user_identity_id": USER_IDENTITY_ID},
        headers={"Authorization": f"Bearer {seam.api_key}"},
    )
    assert response.status_code == 200
    assert response.json()["user_identity"]["full_name"] == "Alex Rivera"


def test_missing_parameter_is_invalid_input(seam: SeamStandin) -> None:
    """A read without its id answers 400 invalid_input in Seam's error shape."""
    response = httpx.get(
        f"{seam.url}/access_methods/get",
        headers={"Authorization": f"Bearer {seam.api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_input"
    assert response.json()["ok"] is False
