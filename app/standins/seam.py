"""A local stand-in for the Seam API, enough of it for the official `seam` SDK to round-trip.

    with SeamStandin() as seam_api:
        seam_api.load_samples()
        seam = Seam(api_key=seam_api.api_key, endpoint=seam_api.url)
        seam.access_methods.get(access_method_id="f47ac10b-...")

Reads accept GET query parameters (as the SDK sends them) and POST JSON bodies alike.
Answers wrap a resource in its name (`{"access_method": {...}, "ok": true}`); errors are
`{"error": {"type": ..., "message": ...}, "ok": false}` with Seam's status codes.

Card encoding: `access_methods/encode` answers a pending ENCODE_CREDENTIAL action attempt,
which the next `action_attempts/get` settles, as an encoder would once the card is on it. On
success the card's access method is issued (`is_issued`, no more `is_encoding_required`) and
an `access_method.issued` event is listed by events/list. An encoder made offline with
`set_encoder_online(id, False)` (Seam's encoder resource has no such flag: the attempt tells)
fails the attempt with `encoder_not_online`; `fail_next_encode` (also reachable through
Seam's own acs/encoders/simulate/next_credential_encode_will_fail) fails the next one with
the given error type; `hold_encoder` leaves attempts pending, as when no card is placed.

Several workspaces: `add_workspace(workspace_id, api_key)` makes another key valid, and a
request made with it sees only the resources of its workspace (their `workspace_id`) and the
action attempts made with a key of it, as Seam scopes a key to its workspace; everything else
answers as not found. The first key (`api_key`) sees every resource, as before;
`requests_with_key` tells which requests were made with a key.

Card assignment (systems with pre-registered cards, a card access method with
`is_assignment_required`): `access_methods/assign_card` answers a pending ASSIGN_CREDENTIAL
attempt that the next `action_attempts/get` settles: a card number registered with
`register_card` is assigned and the access method issued (with its `access_method.issued`
event), any other fails with `credential_not_found`. `acs/encoders/scan_to_assign_credential`
answers a pending SCAN_TO_ASSIGN_CREDENTIAL attempt; settled, it issues the user identity's
card access methods that wait for assignment (a held encoder leaves it pending; an offline one,
or `fail_next_encode`, fails it with one of the scan's error types).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import StandinRefusal
from app.standins.http import Answer, RecordedRequest, StandinServer

SAMPLES = Path(__file__).parent / "samples"

# Resource kind -> (id field, error type when an id is unknown).
KINDS: dict[str, tuple[str, str]] = {
    "access_method": ("access_method_id", "access_method_not_found"),
    "access_grant": ("access_grant_id", "access_grant_not_found"),
    "user_identity": ("user_identity_id", "user_identity_not_found"),
    "space": ("space_id", "space_not_found"),
    "event": ("event_id", "event_not_found"),
    "acs_encoder": ("acs_encoder_id", "acs_encoder_not_found"),
    "action_attempt": ("action_attempt_id", "action_attempt_not_found"),
    "webhook": ("webhook_id", "webhook_not_found"),
}
RELATED = ("spaces", "access_grants", "access_methods")
# The messages Seam gives with each encoding error type (action attempt `error.message`).
ENCODE_ERRORS = {
    "encoder_not_online": "The encoder is not online.",
    "no_credential_on_encoder": "No card was placed on the encoder.",
    "incompatible_card_format": "The card on the encoder is not compatible.",
    "credential_cannot_be_reissued": "The credential cannot be reissued.",
    "encoder_communication_timeout": "The encoder did not respond in time.",
    "bridge_disconnected": "Seam Bridge is disconnected.",
    "encoding_interrupted": "Encoding was interrupted.",
    "credential_deleted": "The credential was deleted and can no longer be encoded.",
    "action_attempt_expired": "The action attempt expired.",
    "uncategorized_error": "Encoding failed.",
}
# The messages Seam gives with each assignment error type, and the types a scan may end with.
ASSIGN_ERRORS = {
    "credential_not_found": "No pre-registered card has this number.",
    "no_credential_on_encoder": "No card was placed on the encoder.",
    "action_attempt_expired": "The action attempt expired.",
    "uncategorized_error": "Assignment failed.",
}
SCAN_ERRORS = ("uncategorized_error", "action_attempt_expired", "no_credential_on_encoder")
WORKSPACE = {
    "workspace_id": "8d1a8f2e-5e8b-4c5e-9d0b-2f3a4b5c6d7e",
    "name": "Stand-in Hotels",
    "company_name": "Stand-in Hotels",
    "connect_partner_name": "Stand-in Hotels",
    "is_sandbox": True,
    "is_suspended": False,
    "is_publishable_key_auth_enabled": False,
    "organization_id": None,
    "connect_webview_customization": {},
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ok(key: str, value: Any) -> Answer:
    return Answer(200, {key: value, "ok": True})


def seam_error(status: int, error_type: str, message: str, **extra: Any) -> Answer:
    error = {"type": error_type, "message": message, **extra}
    return Answer(status, {"error": error, "ok": False}, {"seam-request-id": str(uuid.uuid4())})


def refuse(answer: Answer) -> StandinRefusal:
    """The refusal that makes the route send `answer` instead, from deep in a handler."""
    return StandinRefusal(answer.status, answer.body, answer.headers)


class SeamStandin(StandinServer):
    """In-memory Seam workspace. Resources are plain dicts in Seam's JSON shape, keyed by id."""

    name = "seam-standin"

    def __init__(
        self, api_key: str = "seam_testkey_standin", *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        # Keys of other workspaces -> their workspace id; the workspace of the request being
        # answered, on its server thread (None: the first key, which sees everything).
        self.workspace_keys: dict[str, str] = {}
        self._scope = threading.local()
        self.workspace = dict(WORKSPACE)
        self._stores: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        # Access method id -> the ids of the grants put with it (a grant changed or removed
        # since is checked against the store when read), and each grant's place in the store's
        # order: a benchmark's get_related must not scan thousands of grants per request.
        self._grants_by_method: dict[str, set[str]] = {}
        self._grant_order: dict[str, int] = {}
        # Encoder state Seam keeps to itself (not on the resource): what the next encode does.
        self._offline_encoders: set[str] = set()
        self._held_encoders: set[str] = set()
        self._next_encode_error: dict[str, str] = {}
        # Pending encode attempts: attempt id -> (access method id, encoder id).
        self._encoding: dict[str, tuple[str, str]] = {}
        # Pending assignments: attempt id -> ("card", access method id, card number) or
        # ("scan", user identity id, encoder id); and the pre-registered card numbers.
        self._assigning: dict[str, tuple[str, str, str]] = {}
        self._cards: set[str] = set()
        # The workspace each action attempt was made in (Seam's attempt has no such field):
        # another workspace's key does not find it.
        self._attempt_workspaces: dict[str, str] = {}
        self._routes: dict[str, Callable[[RecordedRequest], Answer]] = {
            "/access_methods/get": self._get_access_method,
            "/access_methods/get_related": self._get_related,
            "/access_methods/encode": self._encode,
            "/access_methods/assign_card": self._assign_card,
            "/acs/encoders/scan_to_assign_credential": self._scan_to_assign,
            "/access_grants/get": self._get_access_grant,
            "/user_identities/get": self._get_user_identity,
            "/events/list": self._list_events,
            "/acs/encoders/list": self._list_encoders,
            "/acs/encoders/simulate/next_credential_encode_will_fail": self._simulate_encode_fail,
            "/action_attempts/get": self._get_action_attempt,
            "/workspaces/get": self._get_workspace,
            "/webhooks/create": self._create_webhook,
            "/webhooks/list": self._list_webhooks,
        }

    @property
    def routes(self) -> list[str]:
        """The paths this stand-in answers, as Seam names its routes (e.g. /access_methods/get)."""
        return sorted(self._routes)

    # -- the store -------------------------------------------------------------------------

    def put(self, kind: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace a resource of `kind` (a key of KINDS); returns the stored copy."""
        id_field = KINDS[kind][0]
        stored = copy.deepcopy(resource)
        with self._lock:
            if kind == "access_grant":
                self._index_grant(stored)
            self._stores[kind][stored[id_field]] = stored
        return stored

    def _index_grant(self, grant: dict[str, Any]) -> None:
        grant_id = grant["access_grant_id"]
        if grant_id not in self._stores["access_grant"]:  # new: it goes last, as in the store
            self._grant_order[grant_id] = len(self._grant_order)
        for method_id in grant.get("access_method_ids") or []:
            self._grants_by_method.setdefault(method_id, set()).add(grant_id)

    def grants_of(self, method_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Copies of the grants that list any of `method_ids`, in the store's order (what
        `matching` finds, through an index)."""
        wanted = set(method_ids)
        with self._lock:
            store = self._stores["access_grant"]
            ids = {g for m in wanted for g in self._grants_by_method.get(m, ())}
            in_order = sorted(ids, key=self._grant_order.__getitem__)
            grants = [store[g] for g in in_order if g in store]
            return copy.deepcopy(
                [
                    g
                    for g in grants
                    if self._visible(g) and wanted & set(g.get("access_method_ids") or [])
                ]
            )

    def get(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._stores[kind].get(resource_id)
            return copy.deepcopy(found) if found is not None and self._visible(found) else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([r for r in self._stores[kind].values() if self._visible(r)])

    def matching(self, kind: str, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Copies of the resources of `kind` that `wanted` accepts (only those are copied: a
        benchmark's store holds thousands)."""
        with self._lock:
            return copy.deepcopy(
                [r for r in self._stores[kind].values() if self._visible(r) and wanted(r)]
            )

    def add_workspace(self, workspace_id: str, api_key: str) -> None:
        """Accept `api_key` as the key of another workspace, seeing only its resources."""
        with self._lock:
            self.workspace_keys[api_key] = workspace_id

    def requests_with_key(self, api_key: str, path: str | None = None) -> list[RecordedRequest]:
        """The requests made with `api_key` (to `path` only, when given)."""
        return [
            r
            for r in self.requests
            if r.headers.get("authorization") == f"Bearer {api_key}"
            and (path is None or r.path.rstrip("/") == path)
        ]

    def _visible(self, resource: dict[str, Any]) -> bool:
        scope: str | None = getattr(self._scope, "workspace_id", None)
        return scope is None or resource.get("workspace_id") in (None, scope)

    def put_access_method(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("access_method", d)

    def put_access_grant(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("access_grant", d)

    def put_user_identity(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("user_identity", d)

    def put_space(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("space", d)

    def put_event(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("event", d)

    def put_acs_encoder(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.put("acs_encoder", d)

    def set_encoder_online(self, acs_encoder_id: str, online: bool) -> None:
        with self._lock:
            (self._offline_encoders.discard if online else self._offline_encoders.add)(
                acs_encoder_id
            )

    def hold_encoder(self, acs_encoder_id: str, held: bool = True) -> None:
        """While held, encode attempts on this encoder stay pending (no card placed)."""
        with self._lock:
            (self._held_encoders.add if held else self._held_encoders.discard)(acs_encoder_id)

    def fail_next_encode(self, acs_encoder_id: str, error_type: str) -> None:
        with self._lock:
            self._next_encode_error[acs_encoder_id] = error_type

    def clear(self) -> None:
        """Forget every resource (the workspace's encoders and events too)."""
        with self._lock:
            for store in self._stores.values():
                store.clear()
            self._grants_by_method.clear()
            self._grant_order.clear()

    def register_card(self, card_number: str) -> None:
        """A pre-registered card the access system knows, for access_methods/assign_card."""
        with self._lock:
            self._cards.add(card_number)

    def delete_access_method(self, access_method_id: str) -> None:
        with self._lock:
            self._stores["access_method"].pop(access_method_id, None)

    def load_samples(self, *, events: bool = False) -> None:
        """Load every resource in samples/resources (and, if asked, every sample event)."""
        for path in sorted((SAMPLES / "resources").glob("*.json")):
            kind = path.stem.split(".")[0]
            self.put(kind, json.loads(path.read_text()))
        if events:
            for path in sorted((SAMPLES / "events").glob("*.json")):
                self.put_event(json.loads(path.read_text()))

    # -- dispatch --------------------------------------------------------------------------

    def authorize(self, request: RecordedRequest) -> Answer | None:
        given = request.headers.get("authorization", "")
        if given == f"Bearer {self.api_key}":
            return None
        if given.removeprefix("Bearer ") in self.workspace_keys:
            return None
        return seam_error(401, "unauthorized", "Unauthorized")

    def route(self, request: RecordedRequest) -> Answer:
        handler = self._routes.get(request.path.rstrip("/"))
        if handler is None:
            return seam_error(404, "not_found", f"No route for {request.path}")
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        self._scope.workspace_id = self.workspace_keys.get(key)
        try:
            return handler(request)
        except StandinRefusal as refused:
            return Answer(refused.status, refused.body, refused.headers)
        finally:
            self._scope.workspace_id = None

    def _required(self, request: RecordedRequest, *names: str) -> dict[str, str]:
        """The first of `names` present, as {name: value}; a 400 invalid_input if none is."""
        for name in names:
            value = request.param(name)
            if value:
                return {name: value}
        errors = {name: {"_errors": ["Required"]} for name in names}
        raise refuse(
            seam_error(
                400,
                "invalid_input",
                f"Required: {' or '.join(names)}",
                validation_errors={"_errors": [], **errors},
            )
        )

    def _lookup(self, kind: str, resource_id: str) -> dict[str, Any]:
        found = self.get(kind, resource_id)
        if found is None:
            label = kind.replace("_", " ")
            raise refuse(seam_error(404, KINDS[kind][1], f"Could not find an {label}"))
        return found

    def _get_one(self, kind: str, request: RecordedRequest, key_field: str) -> Answer:
        id_field = KINDS[kind][0]
        given = self._required(request, id_field, key_field)
        if id_field in given:
            return _ok(kind, self._lookup(kind, given[id_field]))
        for resource in self.all(kind):
            if resource.get(key_field) == given[key_field]:
                return _ok(kind, resource)
        raise refuse(seam_error(404, KINDS[kind][1], f"Could not find {kind} by key"))

    # -- routes ----------------------------------------------------------------------------

    def _get_access_method(self, request: RecordedRequest) -> Answer:
        access_method_id = self._required(request, "access_method_id")["access_method_id"]
        return _ok("access_method", self._lookup("access_method", access_method_id))

    def _get_access_grant(self, request: RecordedRequest) -> Answer:
        return self._get_one("access_grant", request, "access_grant_key")

    def _get_user_identity(self, request: RecordedRequest) -> Answer:
        return self._get_one("user_identity", request, "user_identity_key")

    def _get_related(self, request: RecordedRequest) -> Answer:
        ids = request.param_list("access_method_ids") or []
        if not ids:
            self._required(request, "access_method_ids")
        methods = [self._lookup("access_method", i) for i in ids]
        include = request.param_list("include") or list(RELATED)
        wanted = [k for k in include if k not in (request.param_list("exclude") or [])]
        grants = self.grants_of(ids)
        space_ids = _unique(s for g in grants for s in g.get("space_ids") or [])
        spaces = [s for s in (self.get("space", i) for i in space_ids) if s is not None]
        related = {"spaces": spaces, "access_grants": grants, "access_methods": methods}
        return _ok("batch", {k: v for k, v in related.items() if k in wanted})

    def _list_events(self, request: RecordedRequest) -> Answer:
        events = self.all("event")
        since = request.param("since")
        types = set(request.param_list("event_types") or [])
        if single := request.param("event_type"):
            types.add(single)
        if since:
            cutoff = _parse_time(since)
            events = [e for e in events if _event_time(e) >= cutoff]
        if types:
            events = [e for e in events if e.get("event_type") in types]
        for name in ("access_method_id", "access_grant_id", "device_id"):
            if wanted := request.param(name):
                events = [e for e in events if _matches(e, name, wanted)]
        events.sort(key=_event_time, reverse=True)
        offset = int(float(request.param("unstable_offset") or 0))
        limit = request.param("limit")
        events = events[offset:]
        return _ok("events", events[: int(float(limit))] if limit else events)

    def _list_encoders(self, request: RecordedRequest) -> Answer:
        encoders = self.all("acs_encoder")
        systems = set(request.param_list("acs_system_ids") or [])
        if single := request.param("acs_system_id"):
            systems.add(single)
        if systems:
            encoders = [e for e in encoders if e.get("acs_system_id") in systems]
        if ids := set(request.param_list("acs_encoder_ids") or []):
            encoders = [e for e in encoders if e.get("acs_encoder_id") in ids]
        pagination = {"has_next_page": False, "next_page_cursor": None, "next_page_url": None}
        return Answer(200, {"acs_encoders": encoders, "pagination": pagination, "ok": True})

    def _encode(self, request: RecordedRequest) -> Answer:
        method_id = self._required(request, "access_method_id")["access_method_id"]
        encoder_id = self._required(request, "acs_encoder_id")["acs_encoder_id"]
        method = self._lookup("access_method", method_id)
        self._lookup("acs_encoder", encoder_id)
        if method.get("mode") != "card":
            raise refuse(
                seam_error(400, "invalid_input", "Only a card access method can be encoded")
            )
        attempt_id = str(uuid.uuid4())
        attempt = {
            "action_attempt_id": attempt_id,
            "action_type": "ENCODE_CREDENTIAL",
            "status": "pending",
            "result": None,
            "error": None,
        }
        with self._lock:
            self._encoding[attempt_id] = (method_id, encoder_id)
        self._mark_attempt(attempt_id)
        return _ok("action_attempt", self.put("action_attempt", attempt))

    def _mark_attempt(self, attempt_id: str) -> None:
        if (scope := getattr(self._scope, "workspace_id", None)) is not None:
            with self._lock:
                self._attempt_workspaces[attempt_id] = scope

    def _get_action_attempt(self, request: RecordedRequest) -> Answer:
        attempt_id = self._required(request, "action_attempt_id")["action_attempt_id"]
        scope = getattr(self._scope, "workspace_id", None)
        made_in = self._attempt_workspaces.get(attempt_id)
        if scope is not None and made_in is not None and made_in != scope:
            raise refuse(seam_error(404, "action_attempt_not_found", "Could not find it"))
        self._settle_encoding(attempt_id)
        self._settle_assignment(attempt_id)
        return _ok("action_attempt", self._lookup("action_attempt", attempt_id))

    def _new_attempt(self, action_type: str) -> dict[str, Any]:
        attempt_id = str(uuid.uuid4())
        attempt = {
            "action_attempt_id": attempt_id,
            "action_type": action_type,
            "status": "pending",
            "result": None,
            "error": None,
        }
        self._mark_attempt(attempt_id)
        return self.put("action_attempt", attempt)

    def _assign_card(self, request: RecordedRequest) -> Answer:
        method_id = self._required(request, "access_method_id")["access_method_id"]
        card_number = self._required(request, "card_number")["card_number"]
        method = self._lookup("access_method", method_id)
        if method.get("mode") != "card" or not method.get("is_assignment_required"):
            raise refuse(seam_error(400, "invalid_input", "The access method does not take a card"))
        attempt = self._new_attempt("ASSIGN_CREDENTIAL")
        with self._lock:
            self._assigning[attempt["action_attempt_id"]] = ("card", method_id, card_number)
        return _ok("action_attempt", attempt)

    def _scan_to_assign(self, request: RecordedRequest) -> Answer:
        encoder_id = self._required(request, "acs_encoder_id")["acs_encoder_id"]
        user_identity_id = self._required(request, "user_identity_id", "acs_user_id")
        self._lookup("acs_encoder", encoder_id)
        who = user_identity_id.get("user_identity_id") or user_identity_id["acs_user_id"]
        attempt = self._new_attempt("SCAN_TO_ASSIGN_CREDENTIAL")
        with self._lock:
            self._assigning[attempt["action_attempt_id"]] = ("scan", who, encoder_id)
        return _ok("action_attempt", attempt)

    def _settle_assignment(self, attempt_id: str) -> None:
        """An assignment's answer, given when the attempt is next read."""
        with self._lock:
            target = self._assigning.get(attempt_id)
            if target is None or (target[0] == "scan" and target[2] in self._held_encoders):
                return
            how, subject, detail = self._assigning.pop(attempt_id)
            failure = None
            if how == "card" and detail not in self._cards:
                failure = "credential_not_found"
            elif how == "scan":
                failure = self._next_encode_error.pop(detail, None)
                if detail in self._offline_encoders:
                    failure = "uncategorized_error"
        attempt = self._lookup("action_attempt", attempt_id)
        if how == "card":
            method = self.get("access_method", subject)
            methods = [method] if method is not None else []
        else:
            methods = self._waiting_cards_of(subject)
        if failure is None and not methods:
            failure = "credential_not_found" if how == "card" else "uncategorized_error"
        if failure is not None:
            if how == "scan" and failure not in SCAN_ERRORS:
                failure = "uncategorized_error"
            message = ASSIGN_ERRORS.get(failure, "Assignment failed.")
            self.put(
                "action_attempt",
                {**attempt, "status": "error", "error": {"type": failure, "message": message}},
            )
            return
        issued = [self._issue_card(method) for method in methods]
        if how == "card":
            result: dict[str, Any] = issued[0]
        else:
            encoder = self.get("acs_encoder", detail) or {}
            result = {
                "acs_credential_id": str(uuid.uuid4()),
                "access_method": "card",
                "acs_system_id": encoder.get("acs_system_id"),
                "connected_account_id": encoder.get("connected_account_id"),
                "is_managed": True,
                "card_number": "0000" + secrets.token_hex(4),
                "display_name": issued[0].get("display_name"),
                "workspace_id": issued[0].get("workspace_id"),
                "is_issued": True,
                "issued_at": issued[0].get("issued_at"),
                "created_at": issued[0].get("issued_at"),
                "errors": [],
                "warnings": [],
            }
        self.put("action_attempt", {**attempt, "status": "success", "result": result})

    def _waiting_cards_of(self, user_identity_id: str) -> list[dict[str, Any]]:
        """The user identity's card access methods waiting for a card to be assigned."""
        grants = self.matching(
            "access_grant", lambda g: g.get("user_identity_id") == user_identity_id
        )
        ids = _unique(m for g in grants for m in g.get("access_method_ids") or [])
        methods = [m for m in (self.get("access_method", i) for i in ids) if m is not None]
        return [
            m
            for m in methods
            if m.get("mode") == "card"
            and m.get("is_assignment_required")
            and not m.get("is_issued")
        ]

    def _issue_card(self, method: dict[str, Any]) -> dict[str, Any]:
        """Issue a card access method (encoded or assigned) and list its issued event."""
        method_id = method["access_method_id"]
        issued_at = now_iso()
        issued = self.put_access_method(
            {**method, "is_issued": True, "issued_at": issued_at,
             "is_encoding_required": False, "is_ready_for_encoding": False,
             "is_assignment_required": False, "is_ready_for_assignment": False}
        )  # fmt: skip
        grants = self.grants_of([method_id])
        self.put_event(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "access_method.issued",
                "workspace_id": method.get("workspace_id"),
                "created_at": issued_at,
                "occurred_at": issued_at,
                "access_method_id": method_id,
                "access_grant_ids": [g["access_grant_id"] for g in grants],
                "access_grant_keys": [g["access_grant_key"] for g in grants
                                      if g.get("access_grant_key")],
            }
        )  # fmt: skip
        return issued

    def _settle_encoding(self, attempt_id: str) -> None:
        """The encoder's answer to a pending encode, given when the attempt is next read."""
        with self._lock:
            target = self._encoding.get(attempt_id)
            if target is None or target[1] in self._held_encoders:
                return
            method_id, encoder_id = self._encoding.pop(attempt_id)
            failure = self._next_encode_error.pop(encoder_id, None)
            if encoder_id in self._offline_encoders:
                failure = "encoder_not_online"
        attempt = self._lookup("action_attempt", attempt_id)
        method = self.get("access_method", method_id)
        encoder = self.get("acs_encoder", encoder_id) or {}
        if method is None:
            failure = "credential_deleted"
        elif failure is None and encoder.get("errors"):
            failure = "encoder_not_online"
        if failure is not None or method is None:
            error_type = failure or "credential_deleted"
            message = ENCODE_ERRORS.get(error_type, "Encoding failed.")
            self.put(
                "action_attempt",
                {**attempt, "status": "error", "error": {"type": error_type, "message": message}},
            )
            return
        issued = self._issue_card(method)
        issued_at = issued["issued_at"]
        credential: dict[str, Any] = {
            "acs_credential_id": str(uuid.uuid4()),
            "access_method": "card",
            "acs_system_id": encoder.get("acs_system_id"),
            "connected_account_id": encoder.get("connected_account_id"),
            "is_managed": True,
            "display_name": method.get("display_name"),
            "workspace_id": method.get("workspace_id"),
            "is_issued": True,
            "issued_at": issued_at,
            "created_at": issued_at,
            "errors": [],
            "warnings": [],
        }
        self.put("action_attempt", {**attempt, "status": "success", "result": credential})

    def _simulate_encode_fail(self, request: RecordedRequest) -> Answer:
        encoder_id = self._required(request, "acs_encoder_id")["acs_encoder_id"]
        self._lookup("acs_encoder", encoder_id)
        # Seam's default when no error_code is given.
        self.fail_next_encode(encoder_id, request.param("error_code") or "no_credential_on_encoder")
        return Answer(200, {"ok": True})

    def _get_workspace(self, request: RecordedRequest) -> Answer:
        scope = getattr(self._scope, "workspace_id", None)
        if scope is None:
            return _ok("workspace", dict(self.workspace))
        return _ok("workspace", {**self.workspace, "workspace_id": scope, "name": scope})

    def _create_webhook(self, request: RecordedRequest) -> Answer:
        url = self._required(request, "url")["url"]
        if not url.startswith("https://"):
            raise refuse(seam_error(400, "invalid_input", "url must be an https:// URL"))
        webhook = {
            "webhook_id": str(uuid.uuid4()),
            "url": url,
            "event_types": request.param_list("event_types") or ["*"],
            "secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        }
        if (scope := getattr(self._scope, "workspace_id", None)) is not None:
            webhook["workspace_id"] = scope
        return _ok("webhook", self.put("webhook", webhook))

    def _list_webhooks(self, request: RecordedRequest) -> Answer:
        return _ok("webhooks", self.all("webhook"))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _matches(event: dict[str, Any], name: str, wanted: str) -> bool:
    if event.get(name) == wanted:
        return True
    return wanted in (event.get(name + "s") or [])


def _event_time(event: dict[str, Any]) -> datetime:
    stamp = event.get("created_at") or event.get("occurred_at")
    return _parse_time(stamp) if isinstance(stamp, str) else datetime.min.replace(tzinfo=UTC)
