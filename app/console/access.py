"""Roles and scopes: what each console user and each API token may do, and which hotels'
guests they see.

Secrets stay where they are (OPS_USERS holds password hashes, API_TOKENS the tokens); who may
do what is in ACCESS_FILE, a TOML file of names and Seam ids, not secret, kept beside
templates/properties.toml:

    [users.desk-lumiere]          # an OPS_USERS name
    role = "desk"
    workspaces = ["661025d3-c1d2-403c-83a8-af153aaedfbc"]

    [users.night-audit]
    role = "viewer"
    spaces = ["5e1a2b3c-4d5e-4f60-8172-839405162738", "9f8e7d6c-..."]

    [tokens.pms-lumiere]          # an API_TOKENS entry written name:token
    role = "viewer"
    workspaces = ["661025d3-c1d2-403c-83a8-af153aaedfbc"]

    [default]                     # optional: everyone the file does not name
    role = "viewer"
    spaces = []

A scope is `everywhere = true`, or the `workspaces` and `spaces` whose deliveries are seen
(either list may be empty, not both unless on purpose: `spaces = []` sees nothing). A name the
file does not list gets `[default]`, and without one is an admin of everything: without
ACCESS_FILE, everyone is, as before roles existed. A name the file lists that is not in
OPS_USERS / API_TOKENS stops the start (a misspelt name would leave the real one unlisted).

Roles: admin may do everything (the template preview; the audit log, if its scope is
everywhere: the log covers every hotel; the status webhooks page); desk reads and resends
deliveries and encodes cards; viewer only reads. Every role may read the API; its write
endpoints (/api/v1: resend, encode) need desk or admin, given to the token by name here: a
token the file does not name (or without ACCESS_FILE) only reads.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.ledger.scope import EVERYWHERE, Scope

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_SEAM_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_KEYS = frozenset({"role", "workspaces", "spaces", "everywhere"})


class Role(StrEnum):
    ADMIN = "admin"
    DESK = "desk"
    VIEWER = "viewer"


class Permission(StrEnum):
    """What a console route needs; the value is what a refusal says cannot be done."""

    READ = "read deliveries"
    RESEND = "resend a delivery"
    ENCODE = "encode key cards"
    TEMPLATES = "preview templates"
    AUDIT = "read the audit log"
    WEBHOOKS = "read the status webhooks sent to the PMS"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.DESK: frozenset({Permission.READ, Permission.RESEND, Permission.ENCODE}),
    Role.VIEWER: frozenset({Permission.READ}),
}


@dataclass(frozen=True)
class Access:
    role: Role
    scope: Scope

    def may(self, permission: Permission) -> bool:
        if permission is Permission.AUDIT and not self.scope.everywhere:
            return False  # the audit log names guests of every hotel
        return permission in GRANTS[self.role]

    def describe(self) -> str:
        """For the start-up log: the role and how far the scope reaches (no ids)."""
        scope = self.scope
        if scope.everywhere:
            return f"{self.role}, everywhere"
        return f"{self.role}, {len(scope.workspaces)} workspace(s), {len(scope.spaces)} space(s)"


ADMIN_EVERYWHERE = Access(Role.ADMIN, EVERYWHERE)


@dataclass(frozen=True)
class AccessFile:
    """ACCESS_FILE read: the access of each user and token it names (lower-cased names), and
    of anyone it does not."""

    users: dict[str, Access]
    tokens: dict[str, Access]
    default: Access = ADMIN_EVERYWHERE

    def user(self, name: str) -> Access:
        return self.users.get(name.lower(), self.default)

    def token(self, name: str) -> Access:
        return self.tokens.get(name.lower(), self.default)

    def names_token(self, name: str) -> bool:
        return name.lower() in self.tokens

    def check_names(self, users: Iterable[str], tokens: Iterable[str]) -> None:
        """Every name the file lists is a real user or token (a typo would leave the real one
        with the default access)."""
        for kind, listed, known in (("users", self.users, users), ("tokens", self.tokens, tokens)):
            unknown = sorted(set(listed) - {name.lower() for name in known})
            if unknown:
                source = "OPS_USERS" if kind == "users" else "API_TOKENS (as name:token)"
                raise ConfigError(
                    f"ACCESS_FILE names {kind[:-1]} {unknown[0]!r}, who is not in {source}"
                )


EVERYONE_ADMIN = AccessFile({}, {})


def read_access_file(path: Path | None) -> AccessFile:
    """ACCESS_FILE parsed, or ConfigError saying where it is wrong; everyone an admin of
    everything without one."""
    if path is None:
        return EVERYONE_ADMIN
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"ACCESS_FILE {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"ACCESS_FILE {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"users", "tokens", "default"}
    if unknown:
        raise ConfigError(
            f"ACCESS_FILE has an unknown section {sorted(unknown)[0]!r} "
            "(allowed: [users.NAME], [tokens.NAME], [default])"
        )
    tables: dict[str, dict[str, Access]] = {}
    for kind in ("users", "tokens"):
        section = data.get(kind, {})
        if not isinstance(section, dict):
            raise ConfigError(f"ACCESS_FILE: {kind} must be sections like [{kind}.NAME]")
        tables[kind] = {}
        for name, entry in section.items():
            if not NAME.fullmatch(name):
                raise ConfigError(f"ACCESS_FILE: [{kind}.{name}] is not a name")
            tables[kind][name.lower()] = _access(f"[{kind}.{name}]", entry)
    default = ADMIN_EVERYWHERE
    if "default" in data:
        default = _access("[default]", data["default"])
    return AccessFile(tables["users"], tables["tokens"], default)


def _access(where: str, entry: Any) -> Access:
    if not isinstance(entry, dict):
        raise ConfigError(f"ACCESS_FILE: {where} must be a section with role = ...")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(
            f"ACCESS_FILE: {where} has an unknown setting {sorted(unknown)[0]!r} "
            "(allowed: role, workspaces, spaces, everywhere)"
        )
    try:
        role = Role(str(entry.get("role")))
    except ValueError:
        raise ConfigError(f"ACCESS_FILE: {where} role must be admin, desk or viewer") from None
    everywhere = entry.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise ConfigError(f"ACCESS_FILE: {where} everywhere must be true or false")
    ids = {key: _ids(where, key, entry.get(key)) for key in ("workspaces", "spaces")}
    if everywhere:
        if any(ids.values()):
            raise ConfigError(f"ACCESS_FILE: {where} is everywhere: it lists no workspace or space")
        return Access(role, EVERYWHERE)
    if "workspaces" not in entry and "spaces" not in entry:
        raise ConfigError(
            f"ACCESS_FILE: {where} says which hotels: workspaces = [...], spaces = [...] "
            "or everywhere = true"
        )
    return Access(role, Scope(workspaces=ids["workspaces"], spaces=ids["spaces"]))


def _ids(where: str, key: str, value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(
        isinstance(item, str) and _SEAM_ID.fullmatch(item) for item in value
    ):
        raise ConfigError(f"ACCESS_FILE: {where} {key} must be a list of Seam ids in quotes")
    return frozenset(value)
