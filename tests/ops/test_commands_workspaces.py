"""register-webhook and doctor for a hotel group: two Seam workspaces in SEAM_WORKSPACES_FILE,
each with its own key and secret, and no SEAM_API_KEY or SEAM_WEBHOOK_SECRET. Against the Seam
stand-in, which knows both keys, scopes each to its workspace and tells which key each request
was made with."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from app.events.kinds import SUBSCRIBED_EVENT_TYPES
from app.ops.cli import main
from app.standins.seam import SeamStandin
from tests.ops.test_commands import env  # noqa: F401 - the production-like settings (a fixture)
from tests.processes import free_port

HARBOUR = "2f8e6c1a-0b4d-4e7f-9a3c-5d6e7f809a1b"
LUMIERE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
KEY_HARBOUR = "seam_testkey_harbour_inn"
KEY_LUMIERE = "seam_testkey_hotel_lumiere"
SECRET_HARBOUR = "whsec_" + base64.b64encode(b"harbour inn signing secret").decode()
SECRET_LUMIERE = "whsec_" + base64.b64encode(b"hotel lumiere signing secret").decode()
WORKSPACES = f"""
[workspaces."{HARBOUR}"]
name = "Harbour Inn"
api_key_env = "SEAM_API_KEY_HARBOUR"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_HARBOUR"

[workspaces."{LUMIERE}"]
name = "Hotel Lumiere"
api_key_env = "SEAM_API_KEY_LUMIERE"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_LUMIERE"
"""


@pytest.fixture
def group(
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    seam: SeamStandin,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> SeamStandin:
    """Both hotels' keys and secrets in their own variables; the single-workspace ones unset."""
    seam.add_workspace(HARBOUR, KEY_HARBOUR)
    seam.add_workspace(LUMIERE, KEY_LUMIERE)
    (tmp_path / "workspaces.toml").write_text(WORKSPACES, encoding="utf-8")
    monkeypatch.setenv("SEAM_WORKSPACES_FILE", str(tmp_path / "workspaces.toml"))
    monkeypatch.setenv("SEAM_API_KEY_HARBOUR", KEY_HARBOUR)
    monkeypatch.setenv("SEAM_API_KEY_LUMIERE", KEY_LUMIERE)
    monkeypatch.setenv("SEAM_WEBHOOK_SECRET_HARBOUR", SECRET_HARBOUR)
    monkeypatch.setenv("SEAM_WEBHOOK_SECRET_LUMIERE", SECRET_LUMIERE)
    monkeypatch.delenv("SEAM_API_KEY")
    monkeypatch.delenv("SEAM_WEBHOOK_SECRET")
    seam.clear_requests()
    return seam


def registered(seam: SeamStandin, workspace_id: str) -> list[dict[str, object]]:
    return [hook for hook in seam.all("webhook") if hook.get("workspace_id") == workspace_id]


def hook_of(seam: SeamStandin, workspace_id: str, url: str, secret: str) -> None:
    seam.put(
        "webhook",
        {"webhook_id": f"wh-{workspace_id}", "url": url, "secret": secret,
         "event_types": list(SUBSCRIBED_EVENT_TYPES), "workspace_id": workspace_id},
    )  # fmt: skip


def test_register_webhook_makes_each_workspaces_webhook_with_its_own_key(
    group: SeamStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    """One webhook per workspace, at /webhooks/seam/<its id>, created in that workspace with
    its key (nothing with any other key); each secret is printed under its own variable."""
    assert main(["register-webhook", "--url", "https://keys.example.com"]) == 0
    out = capsys.readouterr().out

    [harbour] = registered(group, HARBOUR)
    [lumiere] = registered(group, LUMIERE)
    assert harbour["url"] == f"https://keys.example.com/webhooks/seam/{HARBOUR}"
    assert lumiere["url"] == f"https://keys.example.com/webhooks/seam/{LUMIERE}"
    assert harbour["event_types"] == list(SUBSCRIBED_EVENT_TYPES)
    assert len(group.requests_with_key(KEY_HARBOUR, "/webhooks/create")) == 1
    assert len(group.requests_with_key(KEY_LUMIERE, "/webhooks/create")) == 1
    assert group.requests_with_key(group.api_key) == []
    assert f"SEAM_WEBHOOK_SECRET_HARBOUR={harbour['secret']}" in out
    assert f"SEAM_WEBHOOK_SECRET_LUMIERE={lumiere['secret']}" in out
    assert f"of workspace Harbour Inn ({HARBOUR})" in out


def test_register_webhook_for_one_workspace_makes_only_its_webhook(
    group: SeamStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    """--workspace ID registers that workspace's webhook only (a URL already ending in
    /webhooks/seam gets its id added); an id the file does not list is refused."""
    url = "https://keys.example.com/webhooks/seam"
    assert main(["register-webhook", "--url", url, "--workspace", LUMIERE]) == 0
    [lumiere] = registered(group, LUMIERE)
    assert lumiere["url"] == f"{url}/{LUMIERE}"
    assert registered(group, HARBOUR) == []
    assert group.requests_with_key(KEY_HARBOUR) == []

    assert main(["register-webhook", "--url", url, "--workspace", "not-a-hotel"]) == 1
    assert "workspace not-a-hotel is not in SEAM_WORKSPACES_FILE" in capsys.readouterr().err


def test_register_webhook_goes_on_past_a_workspace_whose_key_fails(
    group: SeamStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Harbour's key refused: Lumière's webhook is still made and its secret printed (it
    would be lost otherwise), Harbour's failure is named with its variable, and the command
    fails. The refused key is never printed."""
    monkeypatch.setenv("SEAM_API_KEY_HARBOUR", "seam_revoked_harbour_key")

    assert main(["register-webhook", "--url", "https://keys.example.com"]) == 1
    captured = capsys.readouterr()

    [lumiere] = registered(group, LUMIERE)
    assert f"SEAM_WEBHOOK_SECRET_LUMIERE={lumiere['secret']}" in captured.out
    assert "SEAM_WEBHOOK_SECRET_HARBOUR=" not in captured.out
    assert "Seam rejected SEAM_API_KEY_HARBOUR (401 unauthorized)" in captured.err
    assert f"(workspace Harbour Inn, {HARBOUR})" in captured.err
    assert "seam_revoked_harbour_key" not in captured.out + captured.err


def test_register_webhook_refuses_a_key_of_another_workspace(
    group: SeamStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Harbour's variable holding Lumière's key would put Harbour's URL in Lumière's workspace
    (whose events that URL refuses): nothing is made for Harbour, and the message says why."""
    monkeypatch.setenv("SEAM_API_KEY_HARBOUR", KEY_LUMIERE)

    assert main(["register-webhook", "--url", "https://keys.example.com"]) == 1
    err = capsys.readouterr().err

    assert f"SEAM_API_KEY_HARBOUR opens workspace {LUMIERE}, not {HARBOUR}" in err
    assert [hook["url"] for hook in registered(group, LUMIERE)] == [
        f"https://keys.example.com/webhooks/seam/{LUMIERE}"
    ]


def test_doctor_checks_every_workspace_with_its_key_and_secret(
    group: SeamStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each workspace's key opens it and its webhook at its own URL is signed with its
    secret: an ok line for each, each asked with its own key, and nothing fails."""
    hook_of(group, HARBOUR, f"https://keys.example.com/webhooks/seam/{HARBOUR}", SECRET_HARBOUR)
    hook_of(group, LUMIERE, f"https://keys.example.com/webhooks/seam/{LUMIERE}", SECRET_LUMIERE)

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out

    assert (
        f"ok    seam Harbour Inn: SEAM_API_KEY_HARBOUR opens production workspace {HARBOUR}" in out
    )
    assert (
        f"ok    seam Hotel Lumiere: SEAM_API_KEY_LUMIERE opens production workspace {LUMIERE}"
        in out
    )
    assert (
        "ok    webhook Harbour Inn: SEAM_WEBHOOK_SECRET_HARBOUR signs "
        f"https://keys.example.com/webhooks/seam/{HARBOUR}"
    ) in out
    assert (
        "ok    webhook Hotel Lumiere: SEAM_WEBHOOK_SECRET_LUMIERE signs "
        f"https://keys.example.com/webhooks/seam/{LUMIERE}"
    ) in out
    assert "SEAM_API_KEY is not set" not in out
    assert "SEAM_WEBHOOK_SECRET is not set" not in out
    assert "all checks passed" in out
    assert len(group.requests_with_key(KEY_HARBOUR, "/workspaces/get")) == 1
    assert len(group.requests_with_key(KEY_LUMIERE, "/workspaces/get")) == 1
    assert group.requests_with_key(group.api_key) == []


def test_doctor_names_the_one_workspace_whose_key_is_bad(
    group: SeamStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Harbour's key refused: a FAIL naming Harbour and its variable, with the fix; Lumière
    still passes on both lines; doctor fails, and prints neither key nor secret."""
    hook_of(group, LUMIERE, f"https://keys.example.com/webhooks/seam/{LUMIERE}", SECRET_LUMIERE)
    monkeypatch.setenv("SEAM_API_KEY_HARBOUR", "seam_revoked_harbour_key")

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out

    assert "FAIL  seam Harbour Inn: Seam rejected SEAM_API_KEY_HARBOUR (401 unauthorized)" in out
    fix = out.split("FAIL  seam Harbour Inn: ", 1)[1].splitlines()[1]
    assert f"fix: set SEAM_API_KEY_HARBOUR to an API key of workspace {HARBOUR}" in fix
    assert (
        f"ok    seam Hotel Lumiere: SEAM_API_KEY_LUMIERE opens production workspace {LUMIERE}"
        in out
    )
    assert "ok    webhook Hotel Lumiere: SEAM_WEBHOOK_SECRET_LUMIERE signs" in out
    assert "1 problem(s)" in out
    for secret in ("seam_revoked_harbour_key", KEY_LUMIERE, SECRET_HARBOUR, SECRET_LUMIERE):
        assert secret not in out


def test_doctor_catches_a_key_of_another_workspace_and_a_webhook_missing(
    group: SeamStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Harbour's variable holding Lumière's key is named as opening the wrong workspace;
    Lumière's secret signing no webhook at its URL (only the single-workspace one) is a FAIL
    that says its events will be refused and how to register it."""
    hook_of(group, LUMIERE, "https://keys.example.com/webhooks/seam", SECRET_LUMIERE)
    monkeypatch.setenv("SEAM_API_KEY_HARBOUR", KEY_LUMIERE)

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out

    assert f"FAIL  seam Harbour Inn: SEAM_API_KEY_HARBOUR opens workspace {LUMIERE}" in out
    assert f"not {HARBOUR}" in out
    assert (
        f"FAIL  webhook Hotel Lumiere: no webhook of this workspace at .../webhooks/seam/{LUMIERE} "
        "is signed with SEAM_WEBHOOK_SECRET_LUMIERE"
    ) in out
    assert f"register-webhook --url https://YOUR-HOST --workspace {LUMIERE}" in out


def test_doctor_tells_seam_out_of_reach_from_bad_workspace_keys(
    group: SeamStandin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seam not answering is reported for each workspace as a network problem, not as keys
    to replace."""
    monkeypatch.setenv("SEAM_ENDPOINT", f"http://127.0.0.1:{free_port()}")

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out

    for name in ("Harbour Inn", "Hotel Lumiere"):
        assert f"FAIL  seam {name}: cannot reach Seam" in out
        fix = out.split(f"FAIL  seam {name}: ", 1)[1].splitlines()[1]
        assert "check this machine's network, and SEAM_ENDPOINT" in fix
        assert "API key" not in fix
