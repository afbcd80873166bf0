"""The hotels `keycourier demo` posts to: the one workspace of SEAM_API_KEY, as always, or with
SEAM_WORKSPACES_FILE set, every workspace that file lists (a hotel group).

For a group, each workspace gets a stand-in key and signing secret of the demo's own (the real
ones in the environment are never read), a copy of the sample guest with ids of its own in the
Seam stand-in (seen only with its key, as Seam scopes a key to its workspace), and its events
posted to its own `/webhooks/seam/<workspace_id>`, signed with its own secret. The service runs
on a workspaces file the demo writes (the file's ids and names, the demo's variables), with no
SEAM_API_KEY or SEAM_WEBHOOK_SECRET at all, as a group deployment may.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.standins.seam import SAMPLES, SeamStandin

WEBHOOK_PATH = "/webhooks/seam"
# The workspace the samples are in; every other id in them is made unique per workspace.
SAMPLE_WORKSPACE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAMESPACE = uuid.UUID("9c5f3a0e-6d1b-4f7a-8e2c-3b4d5e6f7a8b")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class DemoHotel:
    """One workspace the demo posts to: where, signed with what, and its sample ids."""

    secret: str = field(repr=False)
    # None: the single workspace of SEAM_API_KEY (the samples as they are, /webhooks/seam).
    workspace_id: str | None = None
    name: str = ""
    api_key: str = field(default="", repr=False)

    @property
    def path(self) -> str:
        return WEBHOOK_PATH if self.workspace_id is None else f"{WEBHOOK_PATH}/{self.workspace_id}"

    def id(self, sample_id: str) -> str:
        """A sample's id as this hotel has it in the stand-in."""
        if self.workspace_id is None:
            return sample_id
        if sample_id == SAMPLE_WORKSPACE:
            return self.workspace_id
        return str(uuid.uuid5(_NAMESPACE, f"{self.workspace_id}/{sample_id}"))

    def msg_id(self, sample: str) -> str:
        """The Svix message id of this hotel's sample event (Svix's retries keep it)."""
        where = f"{self.workspace_id}_" if self.workspace_id else ""
        return f"msg_demo_{where}{sample}"

    def event(self, sample: str) -> bytes:
        """The sample event's body, with this hotel's ids."""
        return json.dumps(
            self._own(json.loads((SAMPLES / "events" / f"{sample}.json").read_text()))
        ).encode()

    def load(self, seam: SeamStandin) -> None:
        """This hotel's sample guest, access methods, space and encoders in the stand-in."""
        if self.workspace_id is None:
            seam.load_samples()
            return
        seam.add_workspace(self.workspace_id, self.api_key)
        for path in sorted((SAMPLES / "resources").glob("*.json")):
            seam.put(path.stem.split(".")[0], self._own(json.loads(path.read_text())))

    def _own(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._own(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._own(item) for item in value]
        if isinstance(value, str) and _UUID.fullmatch(value):
            return self.id(value)
        return value


def group_hotels(path: Path) -> list[DemoHotel]:
    """A demo hotel per workspace of the SEAM_WORKSPACES_FILE at `path` (ConfigError when the
    file is wrong), each with a stand-in key and secret of its own."""
    from app.settings.workspaces import read_workspaces

    return [
        DemoHotel(
            secret=new_secret(),
            workspace_id=workspace.workspace_id,
            name=workspace.name,
            api_key=f"seam_demo_{secrets.token_hex(8)}",
        )
        for workspace in read_workspaces(path, {})
    ]


def group_env(hotels: list[DemoHotel], workdir: Path) -> dict[str, str]:
    """The service's settings for `hotels`: the workspaces file the demo writes in `workdir`,
    each workspace's stand-in key and secret, and a fingerprint key (no workspace's secret may
    be it)."""
    sections, env = [], {}
    for number, hotel in enumerate(hotels, start=1):
        key_env, secret_env = f"DEMO_SEAM_API_KEY_{number}", f"DEMO_SEAM_WEBHOOK_SECRET_{number}"
        sections.append(
            f"[workspaces.{json.dumps(hotel.workspace_id)}]\nname = {json.dumps(hotel.name)}\n"
            f'api_key_env = "{key_env}"\nwebhook_secret_env = "{secret_env}"\n'
        )
        env[key_env], env[secret_env] = hotel.api_key, hotel.secret
    path = workdir / "workspaces.toml"
    path.write_text("\n".join(sections), encoding="utf-8")
    return {**env, "SEAM_WORKSPACES_FILE": str(path), "CREDENTIAL_HASH_KEY": secrets.token_hex(32)}
