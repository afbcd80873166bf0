"""The console's users: `OPS_USERS` holds `name:hash` entries, never a password.

A hash is `scrypt$N$r$p$salt$key` (salt and key in unpadded URL-safe base64), made by
`keycourier ops-user NAME`. scrypt is in Python's standard library and costs memory as well as
time to guess; N=2**15, r=8, p=1 takes about 0.1 s and 32 MiB per check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from app.errors import ConfigError

SCHEME = "scrypt"
N, R, P = 2**15, 8, 1
KEY_BYTES = 32
MAX_MEMORY = 64 * 1024 * 1024


@dataclass(frozen=True)
class OpsUser:
    name: str
    password_hash: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, N, R, P))}"


def verify_password(password: str, password_hash: str) -> bool:
    try:
        scheme, n, r, p, salt, key = password_hash.split("$")
        if scheme != SCHEME:
            return False
        derived = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
        return hmac.compare_digest(derived, _unb64(key))
    except (ValueError, TypeError):
        return False


# Checked against when the name is unknown, so that a wrong name takes as long as a wrong
# password and the timing does not tell which names exist. The same parameters as a real hash,
# a random salt and a random key: no password matches it, and checking one derives a key
# exactly as a real check does. (Not made by hashing a random password at import: scrypt
# allocates 128 * N * R bytes, 32 MB, which stayed in the web process's peak memory.)
_DECOY = (
    f"{SCHEME}${N}${R}${P}${_b64(secrets.token_bytes(16))}${_b64(secrets.token_bytes(KEY_BYTES))}"
)


def check_decoy(password: str) -> None:
    verify_password(password, _DECOY)


def parse_users(value: str) -> dict[str, OpsUser]:
    """`OPS_USERS`: `name:hash` entries separated by commas (or new lines)."""
    users: dict[str, OpsUser] = {}
    for entry in value.replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, password_hash = entry.partition(":")
        name = name.strip()
        if not sep or not name or not password_hash.startswith(f"{SCHEME}$"):
            # Name the position, never the entry: it holds a hash.
            raise ConfigError(
                f"OPS_USERS entry {len(users) + 1} is not name:scrypt$... "
                "(make one with `keycourier ops-user NAME`)"
            )
        if len(password_hash.split("$")) != 6:
            raise ConfigError(f"OPS_USERS entry {len(users) + 1} has a malformed hash")
        users[name.lower()] = OpsUser(name, password_hash.strip())
    return users
