"""`keycourier templates check`: each kind of mistake an editor can make is reported with its
file (and line, where there is one) and a reason in plain words."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.messages.catalog import CREDENTIAL_OF, MESSAGES
from app.messages.check import check_templates
from app.messages.sms_segments import count_segments

SHIPPED = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to break."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def write(templates: Path, name: str, source: str) -> None:
    path = templates / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


def problems_at(templates: Path, **options: object) -> dict[str, str]:
    result = check_templates(templates, **options)  # type: ignore[arg-type]
    return {problem.where: problem.reason for problem in result.problems}


def test_shipped_templates_pass_in_english_and_french() -> None:
    """The shipped templates pass, with an en and an fr folder for every message."""
    result = check_templates(SHIPPED)
    assert result.problems == []
    languages = {sms.name.split("/")[1] for sms in result.sms}
    assert languages == {"en", "fr"}
    assert check_templates(SHIPPED, default_locale="fr", default_timezone="Europe/Paris").ok


def test_every_sms_gets_a_segment_count() -> None:
    """Each SMS file, in each language, is reported with its encoding and segments."""
    result = check_templates(SHIPPED)
    sms_files = {
        f"{m}/{lang}/sms.txt" for m, parts in MESSAGES.items() if "sms.txt" in parts
        for lang in ("en", "fr")
    }  # fmt: skip
    assert {sms.name for sms in result.sms} == sms_files
    assert all(sms.segments.encoding == "GSM-7" for sms in result.sms)


def test_syntax_error_is_reported_with_file_and_line(templates: Path) -> None:
    """An expression cut short on line 3 is reported at pin_code/en/email.txt:3 only."""
    write(templates, "pin_code/en/email.txt", "Hello {{ guest_name }}\n\nCode: {{ pin_code }\n")
    problems = problems_at(templates)
    assert list(problems) == ["pin_code/en/email.txt:3"]
    assert problems["pin_code/en/email.txt:3"].startswith("syntax error")


def test_undocumented_variable_is_reported_even_in_an_unused_branch(templates: Path) -> None:
    """A variable not in the documented list fails at its line, inside any {% if %}."""
    write(
        templates,
        "instant_key/fr/email.txt",
        "{{ instant_key_url }}\n{% if code_changed %}\n{{ room_number }}\n{% endif %}\n",
    )
    problems = problems_at(templates)
    assert list(problems) == ["instant_key/fr/email.txt:3"]
    assert "room_number" in problems["instant_key/fr/email.txt:3"]
    assert "templates/README.md" in problems["instant_key/fr/email.txt:3"]


@pytest.mark.parametrize(
    "line",
    [
        "{{ ''.__class__ }}",
        "{{ space_names|attr('__len__') }}",
        "{{ space_names[0]['_private'] }}",
        "{{ space_names|attr(guest_name) }}",
    ],
)
def test_sandbox_escape_is_reported_even_in_an_unused_branch(templates: Path, line: str) -> None:
    """Reaching for _names or |attr is a sandbox violation at its line, reached or not."""
    write(
        templates,
        "pin_code/en/sms.txt",
        f"{{{{ pin_code }}}}\n{{% if False %}}\n{line}\n{{% endif %}}",
    )
    problems = problems_at(templates)
    assert list(problems) == ["pin_code/en/sms.txt:3"]
    assert "not allowed" in problems["pin_code/en/sms.txt:3"]


def test_sandbox_violation_at_render_is_reported(templates: Path) -> None:
    """A huge range() fails the check as not allowed, at its file and line."""
    write(
        templates,
        "front_desk_card/fr/email.txt",
        "Bonjour\n{% for i in range(10**9) %}{% endfor %}",
    )
    problems = problems_at(templates)
    assert list(problems) == ["front_desk_card/fr/email.txt:2"]
    assert "not allowed in a template: range()" in problems["front_desk_card/fr/email.txt:2"]


@pytest.mark.parametrize("message", ["pin_code", "code_changed"])
def test_pin_message_without_the_pin_is_reported(templates: Path, message: str) -> None:
    """A PIN SMS that no longer shows {{ pin_code }} is a problem naming the file."""
    write(
        templates, f"{message}/fr/sms.txt", "Bonjour {{ guest_first_name }}, votre code est prêt."
    )
    problems = problems_at(templates)
    assert list(problems) == [f"{message}/fr/sms.txt"]
    assert "PIN" in problems[f"{message}/fr/sms.txt"]


def test_pin_shown_only_when_the_stay_has_dates_is_reported(templates: Path) -> None:
    """A PIN email that shows the code only inside {% if stay_starts_at %} is still a problem."""
    write(
        templates,
        "pin_code/en/email.html",
        '{% extends "_layout.html" %}{% block content %}'
        "{% if stay_starts_at %}{{ pin_code }}{% endif %}{% endblock %}",
    )
    problems = problems_at(templates)
    assert list(problems) == ["pin_code/en/email.html"]
    assert "without dates" in problems["pin_code/en/email.html"]


def test_instant_key_message_without_the_link_is_reported(templates: Path) -> None:
    """An Instant Key email text without {{ instant_key_url }} is a problem."""
    write(templates, "instant_key/en/email.txt", "Hello {{ guest_name }}, your key is ready.\n")
    problems = problems_at(templates)
    assert list(problems) == ["instant_key/en/email.txt"]
    assert "Instant Key link" in problems["instant_key/en/email.txt"]


@pytest.mark.parametrize("message", [m for m in MESSAGES if m not in CREDENTIAL_OF])
def test_front_desk_email_showing_the_pin_is_reported(templates: Path, message: str) -> None:
    """An email that is not there to deliver the credential (the front desk's, a cancellation
    notice) and prints {{ pin_code }} is a problem."""
    write(templates, f"{message}/en/email.txt", "Look at this. Code: {{ pin_code }}\n")
    problems = problems_at(templates)
    assert list(problems) == [f"{message}/en/email.txt"]
    assert "never" in problems[f"{message}/en/email.txt"]


@pytest.mark.parametrize("message", ["front_desk_issue_delayed", "front_desk_issue_failed"])
def test_issuing_alerts_are_checked_in_every_language(templates: Path, message: str) -> None:
    """The front-desk issuing alerts are part of the check: a missing part in either shipped
    language fails, naming the file."""
    assert MESSAGES[message] == ("email_subject.txt", "email.txt", "email.html")
    for lang in ("en", "fr"):
        (templates / message / lang / "email_subject.txt").unlink()
    problems = problems_at(templates)
    assert sorted(problems) == [f"{message}/{lang}/email_subject.txt" for lang in ("en", "fr")]


@pytest.mark.parametrize("part", ["email.txt", "email.html"])
def test_email_without_its_text_or_html_part_is_reported(templates: Path, part: str) -> None:
    """A language folder whose email lacks its text or HTML part fails, naming the file."""
    (templates / "instant_key" / "fr" / part).unlink()
    problems = problems_at(templates)
    assert list(problems) == [f"instant_key/fr/{part}"]
    assert (
        "every email needs a subject, a text part and an HTML part"
        in problems[f"instant_key/fr/{part}"]
    )


def test_sms_over_the_segment_limit_is_reported_with_its_count(templates: Path) -> None:
    """A two-segment UCS-2 SMS fails a one-segment limit, saying UCS-2, the count and why."""
    write(
        templates,
        "pin_code/en/sms.txt",
        "Hi {{ guest_first_name }} 🙂 your code is {{ pin_code }}." + " ok" * 20,
    )
    assert problems_at(templates, max_segments=2) == {}
    problems = problems_at(templates, max_segments=1)
    assert list(problems) == ["pin_code/en/sms.txt"]
    reason = problems["pin_code/en/sms.txt"]
    assert "2 segments, UCS-2" in reason
    assert "'🙂'" in reason
    assert "SMS_MAX_SEGMENTS" in reason


def test_segment_counts_follow_gsm7_and_ucs2_rules() -> None:
    """160 GSM-7 characters are one segment, 161 are two; € counts twice; 71 UCS-2 are two."""
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("€" * 80).units == 160
    assert count_segments("á" * 70).segments == 1
    assert count_segments("á" * 71).segments == 2
    assert count_segments("🙂" * 35).units == 70


def test_missing_default_locale_folder_is_reported(templates: Path) -> None:
    """Removing instant_key/en fails: it is what every other language falls back to."""
    shutil.rmtree(templates / "instant_key" / "en")
    problems = problems_at(templates)
    assert list(problems) == ["instant_key/en/"]
    assert "DEFAULT_LOCALE" in problems["instant_key/en/"]


def test_misplaced_and_misnamed_files_are_reported(templates: Path) -> None:
    """A file outside a language folder, a misspelt part, a misspelt message folder all fail."""
    write(templates, "pin_code/sms.txt", "{{ pin_code }}")
    write(templates, "pin_code/en/sms_text.txt", "{{ pin_code }}")
    write(templates, "pin-code/en/sms.txt", "{{ pin_code }}")
    write(templates, "pin_code/english/sms.txt", "{{ pin_code }}")
    problems = problems_at(templates)
    assert set(problems) == {
        "pin_code/sms.txt",
        "pin_code/en/sms_text.txt",
        "pin-code/",
        "pin_code/english/",
    }


def test_missing_layout_is_reported_at_each_extends_line(templates: Path) -> None:
    """Without _layout.html every email.html is reported at its extends line."""
    (templates / "_layout.html").unlink()
    problems = problems_at(templates)
    expected = {f"{m}/{lang}/email.html:1" for m in MESSAGES for lang in ("en", "fr")}
    assert set(problems) == expected
    assert set(problems.values()) == {"_layout.html is missing"}


def test_file_that_is_not_utf8_is_reported(templates: Path) -> None:
    """A template saved in Latin-1 is named and the fix suggested."""
    (templates / "pin_code" / "fr" / "sms.txt").write_bytes(
        "Code {{ pin_code }} séjour".encode("latin-1")
    )
    problems = problems_at(templates)
    assert problems["pin_code/fr/sms.txt"] == "is not UTF-8 text (save it as UTF-8)"


@pytest.mark.parametrize(
    ("source", "where", "words"),
    [
        (
            '[workspaces."ws-1"]\nlocale = "fr"\ntimezone = Europe/Paris\n',
            "properties.toml:3",
            "TOML",
        ),
        ('\n[workspaces."ws-1"]\nlocale = "klingon"\n', "properties.toml:2", "language code"),
        ('[spaces."sp-1"]\ntimezone = "Mars/Olympus"\n', "properties.toml:1", "time zone"),
        ('[spaces."sp-1"]\nlanguage = "fr"\n', "properties.toml:1", "unknown setting"),
        ('[hotels."h-1"]\nlocale = "fr"\n', "properties.toml:1", "unknown section"),
    ],
)
def test_bad_properties_file_is_reported(
    templates: Path, source: str, where: str, words: str
) -> None:
    """properties.toml with bad TOML, an unknown language, zone or setting fails at its line."""
    write(templates, "properties.toml", source)
    problems = problems_at(templates)
    assert list(problems) == [where]
    assert words in problems[where]


def test_missing_templates_folder_is_a_problem(tmp_path: Path) -> None:
    """Checking a folder that does not exist reports it instead of passing."""
    assert not check_templates(tmp_path / "nowhere").ok


def test_a_language_without_folders_is_noted_not_failed(templates: Path) -> None:
    """A language with no folders, or missing one, passes with a note saying en is used."""
    shutil.rmtree(templates / "front_desk_card" / "fr")
    write(
        templates,
        "properties.toml",
        '[workspaces."ws-1"]\nlocale = "de"\n[spaces.s]\nlocale = "fr"\n',
    )
    result = check_templates(templates)
    assert result.ok
    assert result.notes == [
        "properties.toml asks for de, but pin_code, code_changed, instant_key, access_cancelled, "
        "stay_times_changed, card_ready, front_desk_card, front_desk_undelivered, "
        "front_desk_delivery_problem, front_desk_issue_delayed, front_desk_issue_failed, "
        "front_desk_card_assign, front_desk_key_error, front_desk_grant_incomplete, "
        "front_desk_door_lost have no de folder: those guests get en for them",
        "properties.toml asks for fr, but front_desk_card has no fr folder: "
        "those guests get en for it",
    ]
