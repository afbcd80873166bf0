"""Rendering messages: the shipped templates, languages and their fallback, escaping, the HTML
email's inlined styles, and the errors staff see."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest

from app.errors import TemplateError
from app.messages.catalog import MESSAGES, VARIABLES
from app.messages.properties import Audience
from app.messages.rendering import RenderedEmail, Renderer
from app.messages.sms_segments import count_segments
from app.messages.variables import SAMPLE_INSTANT_KEY_URL, SAMPLE_PIN, sample_context

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
EN = Audience("en", "UTC", "Hotel Example")
FR = Audience("fr", "Europe/Paris", "Hôtel Exemple")
STAY_EN = ("Fri, Jun 20, 2025, 3:00 PM", "Mon, Jun 23, 2025, 11:00 AM")
STAY_FR = ("ven. 20 juin 2025, 17:00", "lun. 23 juin 2025, 13:00")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to break."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def write(templates: Path, name: str, source: str) -> Path:
    path = templates / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def renderer(folder: Path = SHIPPED, **options: str) -> Renderer:
    return Renderer.from_folder(folder, **options)


@pytest.mark.parametrize(
    ("message", "credential"),
    [
        ("pin_code", SAMPLE_PIN),
        ("code_changed", SAMPLE_PIN),
        ("instant_key", SAMPLE_INSTANT_KEY_URL),
    ],
)
@pytest.mark.parametrize(("audience", "stay"), [(EN, STAY_EN), (FR, STAY_FR)])
def test_guest_messages_name_the_guest_space_stay_and_credential(
    message: str, credential: str, audience: Audience, stay: tuple[str, str]
) -> None:
    """Each guest SMS and email, in English and French, shows guest, room, stay and credential."""
    shipped = renderer()
    ctx = sample_context(message, audience)
    sms = shipped.render_sms(message, ctx)
    email = shipped.render_email(message, ctx)
    for body, name in ((sms, "Alex"), (email.text, "Alex Rivera"), (email.html, "Alex Rivera")):
        for expected in (name, "Room 204", *stay, credential):
            assert expected in body
    assert "Room 204" in email.subject
    assert credential not in email.subject


def test_french_and_english_words_differ() -> None:
    """The fr folder is French text, the en folder English: not the same file twice."""
    shipped = renderer()
    assert "Bonjour" in shipped.render_sms("pin_code", sample_context("pin_code", FR))
    assert "Hi Alex" in shipped.render_sms("pin_code", sample_context("pin_code", EN))
    assert 'lang="fr"' in shipped.render_email("pin_code", sample_context("pin_code", FR)).html


def test_a_language_without_its_folder_falls_back_to_the_default_locale(templates: Path) -> None:
    """A German guest gets the en folder; with DEFAULT_LOCALE=fr they get the fr folder."""
    shutil.rmtree(templates / "instant_key" / "fr")
    english = renderer(templates)
    assert english.locale_for("pin_code", "de") == "en"
    assert english.locale_for("pin_code", "fr_CA") == "fr"  # the language without its region
    assert english.locale_for("instant_key", "fr") == "en"  # this message has no fr folder
    french = renderer(templates, default_locale="fr")
    assert french.locale_for("pin_code", "de") == "fr"
    sms = french.render_sms("pin_code", sample_context("pin_code", EN) | {"locale": "de"})
    assert sms.startswith("Bonjour")


def test_code_changed_message_is_its_own_folder() -> None:
    """code_changed says the code changed; pin_code does not."""
    shipped = renderer()
    for message, changed in (("code_changed", True), ("pin_code", False)):
        ctx = sample_context(message, EN)
        email = shipped.render_email(message, ctx)
        for body in (shipped.render_sms(message, ctx), email.text, email.html, email.subject):
            assert ("changed" in body.lower() or "new door code" in body.lower()) is changed


def test_front_desk_email_names_the_stay_and_never_a_credential() -> None:
    """The front-desk email shows guest, room, dates, reservation and ids, and no PIN or link."""
    ctx = sample_context("front_desk_card", EN) | {
        "pin_code": "918273",
        "instant_key_url": "https://ik.seam.co/SECRET",
    }
    email = renderer().render_email("front_desk_card", ctx)
    for body in (email.text, email.html):
        for expected in ("Alex Rivera", "Room 204", *STAY_EN, "reservation-8841", "Hotel Example"):
            assert expected in body
        assert str(ctx["access_grant_id"]) in body
        assert str(ctx["access_method_id"]) in body
    for part in (email.subject, email.text, email.html):
        assert "918273" not in part
        assert "SECRET" not in part


def test_html_email_has_its_styles_inlined() -> None:
    """The layout's <style> rules end up on the tags, so mail apps that drop <style> keep them."""
    html = renderer().render_email("pin_code", sample_context("pin_code", EN)).html
    code = re.search(r'<p class="code" style="([^"]*)">1234</p>', html)
    assert code is not None
    assert "font-size: 32px" in code.group(1)
    assert "<style>" not in html


def test_plain_text_part_reads_on_its_own() -> None:
    """The text part has no tags, no template syntax and no runs of blank lines."""
    for message in ("pin_code", "code_changed", "instant_key", "front_desk_undelivered"):
        text = renderer().render_email(message, sample_context(message, EN)).text
        assert not re.search(r"<[a-z/][^>]*>|\{\{|\{%", text)
        assert "\n\n\n" not in text


def test_shipped_sms_are_single_gsm7_segments() -> None:
    """With the sample guest every shipped SMS, in each language, is one GSM-7 segment."""
    shipped = renderer()
    for message in ("pin_code", "code_changed", "instant_key"):
        for audience in (EN, FR):
            segments = count_segments(
                shipped.render_sms(message, sample_context(message, audience))
            )
            assert (segments.encoding, segments.segments) == ("GSM-7", 1)


def test_subject_is_one_line_and_sms_is_stripped(templates: Path) -> None:
    """Line breaks and runs of spaces in a subject collapse to single spaces; SMS is stripped."""
    write(
        templates,
        "pin_code/en/email_subject.txt",
        "  Your\n  door   code\n\n for {{ guest_name }} \n",
    )
    write(templates, "pin_code/en/sms.txt", "\n\n  Code {{ pin_code }}  \n\n")
    edited = renderer(templates)
    ctx = sample_context("pin_code", EN)
    assert edited.render_email("pin_code", ctx).subject == "Your door code for Alex Rivera"
    assert edited.render_sms("pin_code", ctx) == "Code 1234"


def test_rendered_email_repr_hides_the_content() -> None:
    """A RenderedEmail in a log line shows neither the PIN nor any text of the message."""
    email = renderer().render_email("pin_code", sample_context("pin_code", EN))
    assert isinstance(email, RenderedEmail)
    assert SAMPLE_PIN not in repr(email)
    assert "Alex" not in repr(email)


def test_script_in_a_guest_name_is_escaped_in_html_only() -> None:
    """A <script> in the guest's name is escaped in the HTML email and kept verbatim elsewhere."""
    name = "<script>alert(1)</script> Rivera"
    ctx = sample_context("pin_code", EN) | {
        "guest_name": name,
        "guest_first_name": "<script>alert(1)</script>",
    }
    shipped = renderer()
    email = shipped.render_email("pin_code", ctx)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Rivera" in email.html
    assert name in email.text
    assert "<script>alert(1)</script>" in shipped.render_sms("pin_code", ctx)


def test_syntax_error_is_reported_with_file_and_line(templates: Path) -> None:
    """An expression cut short on line 3 of email.txt is reported at pin_code/en/email.txt:3."""
    write(templates, "pin_code/en/email.txt", "Hello {{ guest_name }}\n\nCode: {{ pin_code }\n")
    with pytest.raises(TemplateError) as caught:
        renderer(templates).render_email("pin_code", sample_context("pin_code", EN))
    assert caught.value.where == "pin_code/en/email.txt:3"
    assert caught.value.reason.startswith("syntax error")


def test_syntax_error_in_the_layout_names_the_layout(templates: Path) -> None:
    """A syntax error in _layout.html points at _layout.html, not at the email extending it."""
    write(templates, "_layout.html", "<html>\n<body>\n{% block content %}\n</body>\n")
    with pytest.raises(TemplateError) as caught:
        renderer(templates).render_email("instant_key", sample_context("instant_key", EN))
    assert caught.value.where is not None
    assert caught.value.where.startswith("_layout.html:")


def test_undefined_variable_is_reported_with_file_and_line(templates: Path) -> None:
    """A misspelt variable on line 3 fails the render at pin_code/fr/email.txt:3."""
    write(templates, "pin_code/fr/email.txt", "Bonjour\n\n{{ guest_nmae }}, {{ pin_code }}\n")
    with pytest.raises(TemplateError) as caught:
        renderer(templates).render_email("pin_code", sample_context("pin_code", FR))
    assert caught.value.where == "pin_code/fr/email.txt:3"
    assert "guest_nmae" in caught.value.reason


def test_undefined_variable_in_an_included_file_names_that_file(templates: Path) -> None:
    """An unknown variable inside an included file is reported at the included file's line."""
    write(templates, "_footer.txt", "Thanks\n{{ hotel_phone }}\n")
    write(templates, "pin_code/en/sms.txt", "Code {{ pin_code }}\n{% include '_footer.txt' %}\n")
    with pytest.raises(TemplateError) as caught:
        renderer(templates).render_sms("pin_code", sample_context("pin_code", EN))
    assert caught.value.where == "_footer.txt:2"


def test_missing_sms_file_is_named(templates: Path) -> None:
    """Rendering an SMS whose file is gone raises 'pin_code/en/sms.txt is missing'."""
    (templates / "pin_code" / "en" / "sms.txt").unlink()
    with pytest.raises(TemplateError) as caught:
        renderer(templates).render_sms("pin_code", sample_context("pin_code", EN))
    assert caught.value.reason == "pin_code/en/sms.txt is missing"


def test_unknown_message_name_is_refused() -> None:
    """A message name that is not a plain folder name (a path) is refused, not looked up."""
    with pytest.raises(TemplateError, match="no message"):
        renderer().render_sms("../templates/pin_code", sample_context("pin_code", EN))


def test_a_render_reads_its_snapshot_not_the_disk(templates: Path) -> None:
    """A Renderer keeps the files it read: an edit on disk changes nothing for it."""
    snapshot = renderer(templates)
    write(templates, "pin_code/en/sms.txt", "Door open: {{ pin_code }}\n")
    assert "Door open" not in snapshot.render_sms("pin_code", sample_context("pin_code", EN))
    assert "Door open" in renderer(templates).render_sms("pin_code", sample_context("pin_code", EN))


def test_many_threads_share_one_renderer() -> None:
    """Renders from many threads at once each get their own guest's PIN, and none fails."""
    shared = renderer()
    failures: list[str] = []

    def work(pin: str) -> None:
        for _ in range(20):
            ctx = sample_context("pin_code", EN) | {"pin_code": pin}
            if pin not in shared.render_sms("pin_code", ctx):
                failures.append(pin)
            if pin not in shared.render_email("pin_code", ctx).html:
                failures.append(pin)

    threads = [threading.Thread(target=work, args=(f"{n:04d}9",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_sample_contexts_hold_exactly_the_documented_variables() -> None:
    """Every sample context defines every variable in VARIABLES and nothing else."""
    for message in MESSAGES:
        assert set(sample_context(message, EN)) == set(VARIABLES)


def test_readme_documents_every_variable_and_message() -> None:
    """templates/README.md mentions every variable in VARIABLES and every message folder."""
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    for name in VARIABLES:
        assert f"| `{name}` |" in readme
    for message in MESSAGES:
        assert f"| `{message}/` |" in readme
