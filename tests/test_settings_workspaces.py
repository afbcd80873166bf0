"""SEAM_WORKSPACES_FILE: the workspaces of a hotel group, their keys and secrets read from the
variables the file names, and every mistake stopped at start-up in one line with no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from app.settings import load_settings
from tests.conftest import WEBHOOK_SECRET

KEY = "seam_live_hotel_b_0123456789"
HASH_KEY = "a-long-random-fingerprint-key-0123456789"


def workspaces_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "workspaces.toml"
    path.write_text(body)
    return path


GOOD = """
[workspaces."ws-b"]
name = "Hotel B"
api_key_env = "SEAM_API_KEY_B"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_B"
"""


def env_for(path: Path, **extra: str) -> dict[str, str]:
    return {"SEAM_WORKSPACES_FILE": str(path), "CREDENTIAL_HASH_KEY": HASH_KEY, **extra}


def test_keys_and_secrets_come_from_the_variables_the_file_names(tmp_path: Path) -> None:
    """Each workspace gets the key and secret of the variables it names; its repr shows none."""
    env = env_for(
        workspaces_file(tmp_path, GOOD), SEAM_API_KEY_B=KEY, SEAM_WEBHOOK_SECRET_B=WEBHOOK_SECRET
    )

    settings = load_settings(env, require=("SEAM_API_KEY", "SEAM_WEBHOOK_SECRET"))

    [workspace] = settings.seam_workspaces
    assert (workspace.workspace_id, workspace.name) == ("ws-b", "Hotel B")
    assert workspace.require_api_key() == KEY
    assert workspace.require_webhook_secret() == WEBHOOK_SECRET
    assert KEY not in repr(workspace)
    assert WEBHOOK_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("required", "variable"),
    [("SEAM_WEBHOOK_SECRET", "SEAM_WEBHOOK_SECRET_B"), ("SEAM_API_KEY", "SEAM_API_KEY_B")],
)
def test_a_process_missing_a_workspace_secret_it_needs_names_the_variable(
    tmp_path: Path, required: str, variable: str
) -> None:
    """The web process without a workspace's secret, or a worker without its key, stops with
    the name of the variable the file gave."""
    env = env_for(workspaces_file(tmp_path, GOOD))

    with pytest.raises(ConfigError, match=variable):
        load_settings(env, require=(required,))


def test_a_secret_written_into_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A key pasted into the file instead of a variable's name is refused, and the error does
    not repeat it."""
    body = GOOD.replace('"SEAM_API_KEY_B"', f'"{KEY}"')
    env = env_for(workspaces_file(tmp_path, body))

    with pytest.raises(ConfigError) as error:
        load_settings(env)

    assert "NAME of an environment variable" in str(error.value)
    assert KEY not in str(error.value)


def test_a_malformed_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A workspace secret that is not whsec_<base64> stops start-up naming its variable only."""
    env = env_for(
        workspaces_file(tmp_path, GOOD), SEAM_API_KEY_B=KEY, SEAM_WEBHOOK_SECRET_B="whsec_$$$$"
    )

    with pytest.raises(ConfigError, match="SEAM_WEBHOOK_SECRET_B is invalid") as error:
        load_settings(env)

    assert "$$$$" not in str(error.value)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "lists no workspace"),
        ('[hotels."x"]\nname = "X"\n', "unknown section"),
        (GOOD.replace('name = "Hotel B"\n', ""), "needs name"),
        (GOOD + 'api_key = "seam_x"\n', "unknown setting 'api_key'"),
        (GOOD.replace('"ws-b"', '"ws/b"'), "not a Seam workspace id"),
        ("[workspaces\n", "not valid TOML"),
    ],
)
def test_a_malformed_file_stops_start_up_saying_what_is_wrong(
    tmp_path: Path, body: str, words: str
) -> None:
    """An empty file, an unknown section or setting, a missing name, an id that cannot be a URL
    segment or broken TOML each stop start-up naming SEAM_WORKSPACES_FILE."""
    with pytest.raises(ConfigError, match="SEAM_WORKSPACES_FILE") as error:
        load_settings(env_for(workspaces_file(tmp_path, body)))
    assert words in str(error.value)


def test_without_a_webhook_secret_the_fingerprint_key_must_be_set(tmp_path: Path) -> None:
    """With only workspaces' secrets, CREDENTIAL_HASH_KEY is required: no one workspace's
    secret may key the fingerprints of every hotel's codes."""
    env = env_for(workspaces_file(tmp_path, GOOD))
    del env["CREDENTIAL_HASH_KEY"]

    with pytest.raises(ConfigError, match="CREDENTIAL_HASH_KEY"):
        load_settings(env)


def test_without_the_file_the_single_workspace_settings_are_required_as_before() -> None:
    """No SEAM_WORKSPACES_FILE: SEAM_WEBHOOK_SECRET is required by name, as it always was."""
    with pytest.raises(ConfigError, match="SEAM_WEBHOOK_SECRET is not set"):
        load_settings({}, require=("SEAM_WEBHOOK_SECRET",))
