"""Message templates: the shipped ones, the checker, the errors staff see, and the sandbox."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from app.errors import TemplateError
from app.rendering import (
    MESSAGES,
    SAMPLE_CONTEXTS,
    SAMPLE_INSTANT_KEY_URL,
    SAMPLE_PIN,
    VARIABLES,
    RenderedEmail,
    Renderer,
)
from app.template_check import check_templates

SHIPPED = Path(__file__).resolve().parents[1] / "templates"
STAY = ("Fri 20 Jun 2025, 15:00 UTC", "Mon 23 Jun 2025, 11:00 UTC")
# Every character GSM-7 encodes in one septet (its basic set, no extension table).
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to break."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def context(message: str, **changes: object) -> dict[str, object]:
    return {**SAMPLE_CONTEXTS[message], **changes}


def write(templates: Path, name: str, source: str) -> Path:
    path = templates / name
    path.write_text(source, encoding="utf-8")
    return path


def test_shipped_templates_pass_the_check() -> None:
    """The templates we ship have no problem at all."""
    assert check_templates(SHIPPED) == []


def test_sample_contexts_hold_exactly_the_documented_variables() -> None:
    """Every sample context defines every variable in VARIABLES and nothing else."""
    assert set(MESSAGES) == set(SAMPLE_CONTEXTS)
    for sample in SAMPLE_CONTEXTS.values():
        assert set(sample) == set(VARIABLES)


@pytest.mark.parametrize(
    ("message", "credential"), [("pin_code", SAMPLE_PIN), ("instant_key", SAMPLE_INSTANT_KEY_URL)]
)
def test_guest_messages_name_the_guest_space_stay_and_credential(
    message: str, credential: str
) -> None:
    """Each guest SMS and email shows the guest, the room, both stay dates and the credential."""
    renderer = Renderer(SHIPPED)
    sms = renderer.render_sms(message, SAMPLE_CONTEXTS[message])
    email = renderer.render_email(message, SAMPLE_CONTEXTS[message])
    for body, name in ((sms, "Alex"), (email.text, "Alex Rivera"), (email.html, "Alex Rivera")):
        for expected in (name, "Room 204", *STAY, credential):
            assert expected in body
    assert "Room 204" in email.subject
    assert credential not in email.subject


def test_pin_message_says_when_the_code_has_changed() -> None:
    """With code_changed the PIN SMS, subject and bodies say the code changed; else they don't."""
    renderer = Renderer(SHIPPED)
    for changed in (True, False):
        ctx = context("pin_code", code_changed=changed)
        email = renderer.render_email("pin_code", ctx)
        for body in (renderer.render_sms("pin_code", ctx), email.text, email.html, email.subject):
            assert ("changed" in body.lower() or "new door code" in body.lower()) is changed


def test_front_desk_email_names_the_stay_and_never_a_credential() -> None:
    """The front-desk email shows guest, room, dates, reservation and ids, and no PIN or link."""
    ctx = context("front_desk_card", pin_code="918273", instant_key_url="https://ik.seam.co/SECRET")
    email = Renderer(SHIPPED).render_email("front_desk_card", ctx)
    for body in (email.text, email.html):
        for expected in ("Alex Rivera", "Room 204", *STAY, "reservation-8841"):
            assert expected in body
        assert ctx["access_grant_id"] in body
        assert ctx["access_method_id"] in body
    for part in (email.subject, email.text, email.html):
        assert "918273" not in part
        assert "SECRET" not in part


def test_subject_is_one_line_and_sms_is_stripped(templates: Path) -> None:
    """Line breaks and runs of spaces in a subject collapse to single spaces; SMS is stripped."""
    write(
        templates, "pin_code/email_subject.txt", "  Your\n  door   code\n\n for {{ guest_name }} \n"
    )
    write(templates, "pin_code/sms.txt", "\n\n  Code {{ pin_code }}  \n\n")
    renderer = Renderer(templates)
    assert renderer.render_email("pin_code", SAMPLE_CONTEXTS["pin_code"]).subject == (
        "Your door code for Alex Rivera"
    )
    assert renderer.render_sms("pin_code", SAMPLE_CONTEXTS["pin_code"]) == "Code 1234"


@pytest.mark.parametrize(
    "ctx",
    [
        SAMPLE_CONTEXTS["pin_code"],
        context("pin_code", code_changed=True),
        SAMPLE_CONTEXTS["instant_key"],
    ],
)
def test_sample_sms_fits_two_gsm7_segments(ctx: dict[str, object]) -> None:
    """With the sample guest every SMS is plain GSM-7 text of at most two segments (306 chars)."""
    message = "pin_code" if ctx["pin_code"] else "instant_key"
    sms = Renderer(SHIPPED).render_sms(message, ctx)
    assert set(sms) <= GSM7
    assert len(sms) <= 306


def test_rendered_email_repr_hides_the_content() -> None:
    """A RenderedEmail in a log line shows neither the PIN nor any text of the message."""
    email = Renderer(SHIPPED).render_email("pin_code", SAMPLE_CONTEXTS["pin_code"])
    assert isinstance(email, RenderedEmail)
    assert SAMPLE_PIN not in repr(email)
    assert "Alex" not in repr(email)


def test_syntax_error_is_reported_with_file_and_line(templates: Path) -> None:
    """An expression cut short on line 3 of email.txt is reported at pin_code/email.txt:3."""
    write(templates, "pin_code/email.txt", "Hello {{ guest_name }}\n\nYour code: {{ pin_code }\n")
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["pin_code/email.txt:3"]
    assert problems[0].reason.startswith("syntax error")
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_email("pin_code", SAMPLE_CONTEXTS["pin_code"])
    assert caught.value.where == "pin_code/email.txt:3"


def test_syntax_error_in_the_layout_names_the_layout(templates: Path) -> None:
    """A syntax error in _layout.html points at _layout.html, not at the email extending it."""
    write(templates, "_layout.html", "<html>\n<body>\n{% block content %}\n</body>\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_email("instant_key", SAMPLE_CONTEXTS["instant_key"])
    assert caught.value.where is not None
    assert caught.value.where.startswith("_layout.html:")


def test_undefined_variable_is_reported_with_file_and_line(templates: Path) -> None:
    """A misspelt variable on line 3 fails the render and the check at pin_code/email.txt:3."""
    write(templates, "pin_code/email.txt", "Hello\n\nDear {{ guest_nmae }}, {{ pin_code }}\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_email("pin_code", SAMPLE_CONTEXTS["pin_code"])
    assert caught.value.where == "pin_code/email.txt:3"
    assert "guest_nmae" in caught.value.reason
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["pin_code/email.txt:3"]
    assert "guest_nmae" in problems[0].reason


def test_unknown_variable_in_a_branch_the_sample_skips_is_reported(templates: Path) -> None:
    """A variable not in VARIABLES is reported even inside an {% if %} the samples never enter."""
    write(
        templates,
        "instant_key/email.txt",
        "{{ instant_key_url }}\n{% if code_changed %}\n{{ room_number }}\n{% endif %}\n",
    )
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["instant_key/email.txt:3"]
    assert "room_number" in problems[0].reason


def test_undefined_variable_in_an_included_file_names_that_file(templates: Path) -> None:
    """An unknown variable inside an included file is reported at the included file's line."""
    write(templates, "_footer.txt", "Thanks\n{{ hotel_phone }}\n")
    write(templates, "pin_code/sms.txt", "Code {{ pin_code }}\n{% include '_footer.txt' %}\n")
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_sms("pin_code", SAMPLE_CONTEXTS["pin_code"])
    assert caught.value.where == "_footer.txt:2"


def test_pin_template_that_drops_the_pin_is_reported(templates: Path) -> None:
    """A PIN SMS that no longer shows {{ pin_code }} is a problem naming pin_code/sms.txt."""
    write(templates, "pin_code/sms.txt", "Hi {{ guest_first_name }}, your code is ready.\n")
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["pin_code/sms.txt"]
    assert "PIN" in problems[0].reason


def test_pin_dropped_only_for_a_changed_code_is_reported(templates: Path) -> None:
    """A PIN email that shows the code only when it has not changed is still a problem."""
    write(
        templates,
        "pin_code/email.html",
        '{% extends "_layout.html" %}{% block content %}'
        "{% if code_changed %}Changed!{% else %}{{ pin_code }}{% endif %}{% endblock %}",
    )
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["pin_code/email.html"]
    assert "changed" in problems[0].reason


def test_instant_key_template_without_the_link_is_reported(templates: Path) -> None:
    """An Instant Key email text without {{ instant_key_url }} is a problem."""
    write(templates, "instant_key/email.txt", "Hello {{ guest_name }}, your key is ready.\n")
    assert [p.where for p in check_templates(templates)] == ["instant_key/email.txt"]


def test_front_desk_template_showing_the_pin_is_reported(templates: Path) -> None:
    """A front-desk email that prints {{ pin_code }} is a problem (the desk never sees PINs)."""
    write(templates, "front_desk_card/email.txt", "Encode a card. Code: {{ pin_code }}\n")
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["front_desk_card/email.txt"]
    assert "never" in problems[0].reason


def test_missing_html_part_is_reported(templates: Path) -> None:
    """An email message without email.html is a problem, and rendering it says the file is gone."""
    (templates / "instant_key" / "email.html").unlink()
    problems = check_templates(templates)
    assert [p.where for p in problems] == ["instant_key/email.html"]
    assert "instant_key/email.html is missing" in problems[0].reason
    with pytest.raises(TemplateError, match=r"instant_key/email\.html is missing"):
        Renderer(templates).render_email("instant_key", SAMPLE_CONTEXTS["instant_key"])


def test_missing_sms_file_is_named(templates: Path) -> None:
    """Rendering an SMS whose file is gone raises 'pin_code/sms.txt is missing'."""
    (templates / "pin_code" / "sms.txt").unlink()
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_sms("pin_code", SAMPLE_CONTEXTS["pin_code"])
    assert caught.value.reason == "pin_code/sms.txt is missing"


def test_missing_layout_is_reported_at_the_extends_line(templates: Path) -> None:
    """Without _layout.html every email.html is reported at its extends line."""
    (templates / "_layout.html").unlink()
    problems = check_templates(templates)
    assert {p.where for p in problems} == {f"{m}/email.html:1" for m in MESSAGES}
    assert all(p.reason == "_layout.html is missing" for p in problems)


def test_unknown_message_name_is_refused(templates: Path) -> None:
    """A message name that is not a plain folder name (a path) is refused, not looked up."""
    with pytest.raises(TemplateError, match="no message"):
        Renderer(templates).render_sms("../templates/pin_code", SAMPLE_CONTEXTS["pin_code"])


def test_an_edit_takes_effect_on_the_next_render(templates: Path) -> None:
    """The same Renderer picks up a changed file on its next render, without a restart."""
    renderer = Renderer(templates)
    assert "Door open" not in renderer.render_sms("pin_code", SAMPLE_CONTEXTS["pin_code"])
    path = write(templates, "pin_code/sms.txt", "Door open: {{ pin_code }}\n")
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    assert renderer.render_sms("pin_code", SAMPLE_CONTEXTS["pin_code"]) == "Door open: 1234"


def test_an_edited_layout_takes_effect_on_the_next_render(templates: Path) -> None:
    """A change to _layout.html alone shows in the next HTML email from the same Renderer."""
    renderer = Renderer(templates)
    renderer.render_email("pin_code", SAMPLE_CONTEXTS["pin_code"])
    path = write(templates, "_layout.html", "<p>NEW LAYOUT</p>{% block content %}{% endblock %}")
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    assert "NEW LAYOUT" in renderer.render_email("pin_code", SAMPLE_CONTEXTS["pin_code"]).html


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''|attr('__class__') }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ space_names.append('x') }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ 'x' * 10**9 }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'|center(10**9) }}",
        "{{ '%999999999s' % 'x' }}",
        "{{ '{:>999999999}'.format('x') }}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% for a in range(1000) %}{{ 'x' * 1000 }}{% endfor %}",
    ],
)
def test_injection_and_resource_abuse_are_refused(templates: Path, source: str) -> None:
    """A template reaching Python internals, mutating data or asking for huge work fails cleanly."""
    write(templates, "pin_code/sms.txt", source)
    ctx = context("pin_code", space_names=["Room 204"])
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_sms("pin_code", ctx)
    assert caught.value.where is not None
    assert caught.value.where.startswith("pin_code/sms.txt")
    assert ctx["space_names"] == ["Room 204"]


def test_script_in_a_guest_name_is_escaped_in_html_only() -> None:
    """A <script> in the guest's name is escaped in the HTML email and kept verbatim elsewhere."""
    name = "<script>alert(1)</script> Rivera"
    ctx = context("pin_code", guest_name=name, guest_first_name="<script>alert(1)</script>")
    renderer = Renderer(SHIPPED)
    email = renderer.render_email("pin_code", ctx)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Rivera" in email.html
    assert name in email.text
    assert "<script>alert(1)</script>" in renderer.render_sms("pin_code", ctx)


@pytest.mark.parametrize(
    "source",
    [
        "{{ {}[pin_code] }}",
        "{{ pin_code.nope }}",
        "{{ range(pin_code|int * 1000) }}",
        "{{ '%d' % pin_code }}",
        "{{ [pin_code]|sum }}",
    ],
)
def test_errors_never_contain_the_pin(templates: Path, source: str) -> None:
    """Whatever fails, the error (and anything chained to it) never quotes the PIN."""
    write(templates, "pin_code/sms.txt", source)
    with pytest.raises(TemplateError) as caught:
        Renderer(templates).render_sms("pin_code", context("pin_code", pin_code="84720"))
    error = caught.value
    assert "84720" not in str(error)
    assert "84720" not in error.reason
    assert error.__cause__ is None
    assert error.__context__ is None


def test_many_threads_share_one_renderer() -> None:
    """Renders from many threads at once each get their own guest's PIN, and none fails."""
    renderer = Renderer(SHIPPED)
    failures: list[str] = []

    def work(pin: str) -> None:
        for _ in range(20):
            ctx = context("pin_code", pin_code=pin)
            if pin not in renderer.render_sms("pin_code", ctx):
                failures.append(pin)
            if pin not in renderer.render_email("pin_code", ctx).html:
                failures.append(pin)

    threads = [threading.Thread(target=work, args=(f"{n:04d}9",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_readme_documents_every_variable() -> None:
    """templates/README.md mentions every variable in VARIABLES and every message folder."""
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    for name in [*VARIABLES, *MESSAGES]:
        assert f"`{name}`" in readme


def test_missing_templates_folder_is_a_problem(tmp_path: Path) -> None:
    """Checking a folder that does not exist reports it instead of passing."""
    assert check_templates(tmp_path / "nowhere") != []
