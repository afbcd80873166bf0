"""SEAM_WORKSPACES_FILE: the Seam workspaces one deployment serves (a hotel group's hotels).

A TOML file, one section per workspace, naming the environment variables that hold its API key
and its webhook's signing secret; the secrets themselves stay in the environment:

    [workspaces."661025d3-c1d2-403c-83a8-af153aaedfbc"]
    name = "Hotel Lumière"
    api_key_env = "SEAM_API_KEY_LUMIERE"
    webhook_secret_env = "SEAM_WEBHOOK_SECRET_LUMIERE"

Each workspace's webhook is `POST /webhooks/seam/<workspace_id>`. A variable the file names but
the environment lacks is an error only where it is needed: the web process needs every secret,
a worker every API key. No error message ever holds a key or a secret, only variable names.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from app.errors import ConfigError

# Seam's workspace ids are UUIDs; anything safe as one URL path segment is accepted.
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
_KEYS = frozenset({"name", "api_key_env", "webhook_secret_env"})
FILE_VARIABLE = "SEAM_WORKSPACES_FILE"


@dataclass(frozen=True)
class SeamWorkspace:
    """One Seam workspace: its id, a name for people, and where its secrets are."""

    workspace_id: str
    name: str
    api_key_env: str
    webhook_secret_env: str
    api_key: SecretStr | None = field(default=None, repr=False)
    webhook_secret: SecretStr | None = field(default=None, repr=False)

    def require_api_key(self) -> str:
        """The workspace's API key; ConfigError naming its variable when it is unset."""
        if self.api_key is None:
            raise ConfigError(
                f"{self.api_key_env} is not set: it must be the API key of Seam workspace "
                f"{self.name} ({self.workspace_id}), as {FILE_VARIABLE} says"
            )
        return self.api_key.get_secret_value()

    def require_webhook_secret(self) -> str:
        """The workspace's webhook signing secret; ConfigError naming its variable when unset."""
        if self.webhook_secret is None:
            raise ConfigError(
                f"{self.webhook_secret_env} is not set: it must be the signing secret of the "
                f"webhook of Seam workspace {self.name} ({self.workspace_id}), as "
                f"{FILE_VARIABLE} says"
            )
        return self.webhook_secret.get_secret_value()


def read_workspaces(path: Path, environ: Mapping[str, str]) -> tuple[SeamWorkspace, ...]:
    """The workspaces `path` lists, their secrets read from `environ`; ConfigError naming the
    file and what is wrong."""
    where = f"{FILE_VARIABLE} ({path})"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or type(exc).__name__}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    unknown = set(data) - {"workspaces"}
    if unknown:
        raise ConfigError(
            f"{where} has an unknown section {sorted(unknown)[0]!r}: only "
            '[workspaces."WORKSPACE_ID"] sections are allowed'
        )
    sections = data.get("workspaces", {})
    if not isinstance(sections, dict) or not sections:
        raise ConfigError(f'{where} lists no workspace: add a [workspaces."WORKSPACE_ID"] section')
    return tuple(
        _workspace(where, workspace_id, values, environ)
        for workspace_id, values in sections.items()
    )


def _workspace(
    where: str, workspace_id: str, values: object, environ: Mapping[str, str]
) -> SeamWorkspace:
    if not _WORKSPACE_ID.fullmatch(workspace_id):
        raise ConfigError(f"{where}: {workspace_id!r} is not a Seam workspace id")
    here = f'{where} [workspaces."{workspace_id}"]'
    if not isinstance(values, dict):
        raise ConfigError(f'{here} must be a section like [workspaces."{workspace_id}"]')
    unknown = set(values) - _KEYS
    if unknown:
        raise ConfigError(
            f"{here} has an unknown setting {sorted(unknown)[0]!r} "
            "(allowed: name, api_key_env, webhook_secret_env; secrets stay in the environment)"
        )
    text: dict[str, str] = {}
    for key in sorted(_KEYS):
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{here} needs {key} (text in quotes)")
        text[key] = value.strip()
    for key in ("api_key_env", "webhook_secret_env"):
        if not _ENV_NAME.fullmatch(text[key]):
            raise ConfigError(
                f"{here} {key} must be the NAME of an environment variable (e.g. "
                f"SEAM_API_KEY_LUMIERE), not its value"
            )
    api_key = _secret(environ, text["api_key_env"])
    if api_key is not None and not api_key.get_secret_value().startswith("seam_"):
        raise ConfigError(
            f"{text['api_key_env']} is invalid: does not look like a Seam API key (expected "
            "seam_...)"
        )
    secret = _secret(environ, text["webhook_secret_env"])
    if secret is not None and not is_svix_secret(secret.get_secret_value()):
        raise ConfigError(
            f"{text['webhook_secret_env']} is invalid: is not a Svix signing secret (expected "
            "whsec_<base64>)"
        )
    return SeamWorkspace(
        workspace_id=workspace_id,
        name=text["name"],
        api_key_env=text["api_key_env"],
        webhook_secret_env=text["webhook_secret_env"],
        api_key=api_key,
        webhook_secret=secret,
    )


def _secret(environ: Mapping[str, str], name: str) -> SecretStr | None:
    value = environ.get(name, "").strip()
    return SecretStr(value) if value else None


def is_svix_secret(raw: str) -> bool:
    """Whether `raw` has the shape of a Svix signing secret (whsec_<base64>)."""
    try:
        return bool(base64.b64decode(raw.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return False
