"""tests/contract/openapi.py: OpenAPI 3.0 translated to JSON Schema, and the checks built on it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.contract.openapi import Spec, decode_query, pinned, source, translate

EVENT_ID = "8e5f9a1c-0b3d-4c2e-9f7a-6b5d4c3e2f10"
WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"


def _document(schemas: dict[str, Any], paths: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "paths": paths or {},
        "components": {"schemas": schemas},
    }


def _event(event_type: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"event_type": {"type": "string", "enum": [event_type]}, **properties},
        "required": ["event_type", *required],
    }


def test_pinned_spec_is_openapi_3_0_from_the_recorded_package() -> None:
    """The pinned document is OpenAPI 3.0.x, cut from the @seamapi/types version source.json
    records, with every path and schema it says were kept."""
    spec = pinned()
    assert spec.raw["openapi"].startswith("3.0.")
    assert source()["package"] == "@seamapi/types"
    assert source()["version"].count(".") == 2
    assert sorted(spec.raw["paths"]) == sorted(source()["keep"]["paths"])
    assert sorted(spec.raw["components"]["schemas"]) == source()["kept"]["schemas"]
    assert "event" in spec.raw["components"]["schemas"]


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "string"}, None, False),
        ({"type": "string", "nullable": True}, None, True),
        ({"type": "string", "nullable": True}, 3, False),
        ({"type": "string", "nullable": False}, None, False),
        ({"type": "string", "enum": ["a"], "nullable": True}, None, True),
        ({"type": "string", "enum": ["a"], "nullable": True}, "b", False),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}, None, True),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, None, False),
        ({"description": "anything", "nullable": True}, None, True),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, {"a": None}, False),
        (
            {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
            {"a": None},
            True,
        ),
        ({"type": "array", "items": {"type": "string", "nullable": True}}, [None], True),
        ({"type": "array", "items": {"type": "string"}}, [None], False),
    ],
)
def test_nullable_allows_null_and_nothing_else_does(
    schema: dict[str, Any], value: Any, valid: bool
) -> None:
    """OpenAPI 3.0 `nullable: true` lets null through, at any depth; without it null fails."""
    spec = Spec(_document({"thing": schema}))
    assert (spec.errors("/components/schemas/thing", value) == []) is valid


def test_translate_leaves_its_input_alone() -> None:
    """Translating a schema does not change the published document."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}
    before = copy.deepcopy(schema)
    translate(schema)
    assert schema == before


def test_a_spec_that_is_not_openapi_3_0_is_refused() -> None:
    """OpenAPI 3.1 (JSON Schema's own null type, no `nullable`) is not translated as 3.0."""
    with pytest.raises(ValueError, match=r"3\.1"):
        Spec({**_document({}), "openapi": "3.1.0"})


def test_formats_are_checked() -> None:
    """uuid, date-time and uri formats are enforced, not just annotations."""
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "at": {"type": "string", "format": "date-time"},
            "url": {"type": "string", "format": "uri"},
        },
    }
    spec = Spec(_document({"thing": schema}))
    good = {"id": EVENT_ID, "at": "2025-06-16T16:55:04.101Z", "url": "https://ik.seam.co/A"}
    assert spec.errors("/components/schemas/thing", good) == []
    for bad in ({"id": "am-1"}, {"at": "2025-06-16 soon"}, {"url": "not a uri"}):
        assert spec.errors("/components/schemas/thing", {**good, **bad}) != []


def test_event_type_listed_twice_validates_against_either_variant() -> None:
    """An event whose type the spec lists twice is valid when one of the two variants takes it,
    and invalid when neither does."""
    first = _event("device.connected", ["device_id"], device_id={"type": "string"})
    second = _event("device.connected", ["connected_account_id"])
    event = {"discriminator": {"propertyName": "event_type"}, "oneOf": [first, second]}
    spec = Spec(_document({"event": event}))
    assert len(spec.event_variants("device.connected")) == 2
    assert spec.event_errors({"event_type": "device.connected", "device_id": "d"}) == []
    assert spec.event_errors({"event_type": "device.connected", "connected_account_id": "c"}) == []
    assert spec.event_errors({"event_type": "device.connected"}) != []
    assert (
        spec.errors(
            "/components/schemas/event", {"event_type": "device.connected", "device_id": "d"}
        )
        == []
    )


def test_event_of_unknown_type_or_without_type_is_invalid() -> None:
    """An event type the spec lacks, or a body without event_type, is not a Seam event."""
    spec = pinned()
    assert spec.event_errors({"event_type": "access_method.teleported"}) != []
    assert spec.event_errors({"event_id": EVENT_ID}) != []


def test_event_missing_a_required_field_is_invalid() -> None:
    """An access_method.issued event without access_grant_ids fails its schema in the spec."""
    event = {
        "event_id": EVENT_ID,
        "event_type": "access_method.issued",
        "workspace_id": WORKSPACE_ID,
        "created_at": "2025-06-16T16:55:04.101Z",
        "occurred_at": "2025-06-16T16:55:03.924Z",
        "access_method_id": EVENT_ID,
    }
    spec = pinned()
    assert spec.event_errors({**event, "access_grant_ids": [EVENT_ID]}) == []
    [problem] = spec.event_errors(event)
    assert "access_grant_ids" in problem


def test_response_with_null_where_the_spec_says_absent_is_invalid() -> None:
    """An access_grants/get answer whose reservation_key is null fails the pinned spec."""
    grant = {
        "workspace_id": WORKSPACE_ID,
        "access_grant_id": EVENT_ID,
        "user_identity_id": EVENT_ID,
        "location_ids": [],
        "space_ids": [],
        "requested_access_methods": [],
        "access_method_ids": [],
        "name": None,
        "display_name": "Alex",
        "created_at": "2025-06-16T16:54:19.946Z",
        "starts_at": "2025-06-20T15:00:00.000Z",
        "ends_at": None,
        "warnings": [],
        "errors": [],
        "pending_mutations": [],
    }
    spec = pinned()
    body = {"access_grant": grant, "ok": True}
    assert spec.response_errors("GET", "/access_grants/get", 200, body) == []
    broken = {"access_grant": {**grant, "reservation_key": None}, "ok": True}
    [problem] = spec.response_errors("GET", "/access_grants/get", 200, broken)
    assert "reservation_key" in problem


def test_query_is_decoded_as_the_sdk_encodes_it() -> None:
    """Repeated keys are an array, `key=` an empty one, numbers are numbers, and the SDK's
    `_strict=true` is not a field."""
    properties = {
        "ids": {"type": "array", "items": {"type": "string"}},
        "none": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "number"},
        "since": {"type": "string"},
    }
    query = {
        "ids": ["a", "b"],
        "none": [""],
        "limit": ["500"],
        "since": ["2025-01-01T00:00:00.000Z"],
        "_strict": ["true"],
    }
    assert decode_query(query, properties) == {
        "ids": ["a", "b"],
        "none": [],
        "limit": 500.0,
        "since": "2025-01-01T00:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "problem"),
    [
        ("GET", "/access_methods/get", {}, None, "access_method_id"),
        ("GET", "/access_methods/get", {"access_method_id": ["x"]}, None, "uuid"),
        ("GET", "/access_methods/get", {"access_method_id": [EVENT_ID], "x": ["1"]}, None, "'x'"),
        ("GET", "/events/list", {"since": ["2025"], "event_types": ["nope"]}, None, "nope"),
        ("POST", "/access_methods/encode", {}, {"access_method_id": EVENT_ID}, "acs_encoder_id"),
        ("DELETE", "/access_methods/get", {}, None, "no DELETE"),
        ("GET", "/access_methods/teleport", {}, None, "no GET"),
    ],
)
def test_requests_the_spec_does_not_take_are_reported(
    method: str, path: str, query: dict[str, list[str]], body: Any, problem: str
) -> None:
    """A missing or malformed parameter, an unknown one, an unknown route or method is a problem."""
    problems = pinned().request_errors(method, path, query, body)
    assert any(problem in p for p in problems), problems


def test_a_request_the_spec_takes_has_no_problem() -> None:
    """A well-formed GET and POST pass."""
    spec = pinned()
    query = {"access_method_id": [EVENT_ID], "_strict": ["true"]}
    assert spec.request_errors("GET", "/access_methods/get", query, None) == []
    body = {"access_method_id": EVENT_ID, "acs_encoder_id": EVENT_ID}
    assert spec.request_errors("POST", "/access_methods/encode", {}, body) == []
