"""ACCESS_FILE and API_TOKENS as an operator writes them: roles, scopes, named tokens, the
default for names not listed, and the mistakes that must stop the start (never naming a
secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.console.access import (
    ADMIN_EVERYWHERE,
    Access,
    Permission,
    Role,
    read_access_file,
)
from app.console.tokens import matching, parse_tokens
from app.errors import ConfigError
from app.ledger.scope import EVERYWHERE, Scope


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "access.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_access_file_everyone_is_an_admin_of_everything() -> None:
    """No ACCESS_FILE: every user and token may do everything, everywhere, as before roles."""
    access = read_access_file(None)
    assert access.user("desk") == ADMIN_EVERYWHERE
    assert access.token("token-1") == ADMIN_EVERYWHERE
    assert all(ADMIN_EVERYWHERE.may(p) for p in Permission)


def test_roles_scopes_and_the_default(tmp_path: Path) -> None:
    """Users and tokens get their role and scope (names in any case); unlisted names get
    [default]; what each role may do."""
    access = read_access_file(
        write(
            tmp_path,
            """
            [users.Desk-Lumiere]
            role = "desk"
            workspaces = ["ws-1"]
            spaces = ["sp-1", "sp-2"]

            [tokens.pms]
            role = "viewer"
            everywhere = true

            [default]
            role = "viewer"
            spaces = []
            """,
        )
    )
    desk = access.user("desk-lumiere")
    assert desk == Access(Role.DESK, Scope(workspaces=frozenset({"ws-1"}),
                                           spaces=frozenset({"sp-1", "sp-2"})))  # fmt: skip
    assert [p for p in Permission if desk.may(p)] == [
        Permission.READ,
        Permission.RESEND,
        Permission.ENCODE,
    ]
    assert access.token("PMS") == Access(Role.VIEWER, EVERYWHERE)
    assert not access.token("pms").may(Permission.RESEND)
    assert access.user("someone-else") == Access(Role.VIEWER, Scope())
    scoped_admin = Access(Role.ADMIN, Scope(workspaces=frozenset({"ws-1"})))
    assert scoped_admin.may(Permission.TEMPLATES)
    assert not scoped_admin.may(Permission.AUDIT)  # the log covers every hotel


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[users.a]\nrole = "root"\neverywhere = true', "role must be admin, desk or viewer"),
        ('[users.a]\nrole = "desk"', "says which hotels"),
        ('[users.a]\nrole = "desk"\nworkspace = ["x"]', "unknown setting 'workspace'"),
        ('[users.a]\nrole = "desk"\nspaces = "sp-1"', "spaces must be a list of Seam ids"),
        ('[users.a]\nrole = "desk"\nspaces = ["sp 1"]', "spaces must be a list of Seam ids"),
        ('[users.a]\nrole = "desk"\neverywhere = true\nspaces = ["x"]', "lists no workspace"),
        ('[groups.a]\nrole = "desk"', "unknown section 'groups'"),
        ("[users.a\nrole = 1", "not valid TOML"),
    ],
)
def test_a_mistake_in_access_file_stops_the_start_saying_where(
    tmp_path: Path, text: str, says: str
) -> None:
    """Each mistake is a ConfigError naming the entry and what is wrong."""
    with pytest.raises(ConfigError, match=says):
        read_access_file(write(tmp_path, text))


def test_access_file_may_name_only_real_users_and_tokens(tmp_path: Path) -> None:
    """A misspelt name would leave the real user with the default access: it stops the start."""
    access = read_access_file(write(tmp_path, '[users.desk-lumeire]\nrole = "desk"\nspaces = []'))
    with pytest.raises(ConfigError, match="'desk-lumeire', who is not in OPS_USERS"):
        access.check_names(["desk-lumiere"], [])
    access.check_names(["Desk-Lumeire"], [])
    tokens = read_access_file(write(tmp_path, '[tokens.pms]\nrole = "viewer"\nspaces = []'))
    with pytest.raises(ConfigError, match="'pms', who is not in API_TOKENS"):
        tokens.check_names([], ["token-1"])


def test_api_tokens_named_or_bare() -> None:
    """`name:token` entries are named; a bare token is named by its position; the right token
    is found whichever comes first; the repr never shows a token."""
    tokens = parse_tokens("pms:secret-one-0123456789, bare-secret-0123456789 ,door:s2-0123")
    assert [t.name for t in tokens] == ["pms", "token-2", "door"]
    assert matching(tokens, b"bare-secret-0123456789") is tokens[1]
    assert matching(tokens, b"s2-0123") is tokens[2]
    assert matching(tokens, b"pms:secret-one-0123456789") is None
    assert "secret" not in repr(tokens)
    with pytest.raises(ConfigError, match="two tokens 'pms'"):
        parse_tokens("pms:aaaaaaaaaaaaaaaa,PMS:bbbbbbbbbbbbbbbb")
