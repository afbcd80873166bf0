"""API_TOKENS: the bearer tokens other hotel systems present to /api.

Entries are comma-separated, each `name:token` (the name is what ACCESS_FILE and the audit log
call it) or a bare token (named `token-N` by its position: it cannot be given a role of its own,
so it gets ACCESS_FILE's default). A token is compared in constant time, with every token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from app.console.access import NAME
from app.errors import ConfigError


@dataclass(frozen=True)
class ApiToken:
    name: str
    secret: bytes = field(repr=False)


def parse_tokens(value: str) -> list[ApiToken]:
    tokens = []
    for position, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        name, sep, secret = entry.partition(":")
        if sep and NAME.fullmatch(name) and secret.strip():
            tokens.append(ApiToken(name, secret.strip().encode()))
        else:
            tokens.append(ApiToken(f"token-{position}", entry.encode()))
    names = [token.name.lower() for token in tokens]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"API_TOKENS names two tokens {name!r}: give each its own name")
    return tokens


def matching(tokens: list[ApiToken], offered: bytes) -> ApiToken | None:
    """The token `offered` is, if any: compared with every one, not stopping at a match, so
    the time taken says nothing."""
    found = None
    for token in tokens:
        if hmac.compare_digest(offered, token.secret):
            found = token
    return found
