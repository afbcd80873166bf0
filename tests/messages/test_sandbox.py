"""The sandbox: a template cannot reach Python internals, change the data, or take a worker's
time or memory, and its errors never quote a PIN."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.errors import TemplateError
from app.messages import sandbox
from app.messages.properties import Audience
from app.messages.rendering import Renderer
from app.messages.variables import sample_context

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
EN = Audience("en", "UTC")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to break."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def render_sms(templates: Path, source: str, **changes: object) -> str:
    (templates / "pin_code" / "en" / "sms.txt").write_text(source, encoding="utf-8")
    ctx = sample_context("pin_code", EN) | changes
    return Renderer.from_folder(templates).render_sms("pin_code", ctx)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ (''|attr('__cla' ~ 'ss__')).__mro__ }}",
        "{{ space_names|attr('append')('x') }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{{ space_names.append('x') }}",
        "{{ self.__dict__ }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ range(10**9)|list }}",
        "{{ 'x' * 10**9 }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'|center(10**9) }}",
        "{{ '%999999999s' % 'x' }}",
        "{{ '{:>999999999}'.format('x') }}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% for a in range(1000) %}{{ 'x' * 1000 }}{% endfor %}",
        # Doubling a text: with ~, with +, through a namespace, through a filter.
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}",
        "{% set ns = namespace(s='xx') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s|replace('x', 'xx') %}{% endfor %}",
        "{% set ns = namespace(s=['x']) %}{% for i in range(64) %}{% set ns.s = ns.s * 2 %}"
        "{% endfor %}",
        # Loops over data the template made itself, not range().
        "{% set s = 'x' * 90000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        # Work without any loop: a macro that calls itself twice, and a file that includes itself.
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        "{% include 'pin_code/en/sms.txt' %}{% include 'pin_code/en/sms.txt' %}",
    ],
)
def test_injection_and_resource_abuse_are_refused(templates: Path, source: str) -> None:
    """A template reaching Python internals, mutating data or asking for huge work fails cleanly."""
    spaces = ["Room 204"]
    with pytest.raises(TemplateError) as caught:
        render_sms(templates, source, space_names=spaces)
    assert caught.value.where is not None
    assert caught.value.where.startswith("pin_code/en/sms.txt")
    assert spaces == ["Room 204"]


def test_render_time_cap_stops_a_long_render(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the time cap at zero, a loop of 500 items is stopped as taking too long."""
    monkeypatch.setattr(sandbox, "MAX_RENDER_SECONDS", 0.0)
    with pytest.raises(TemplateError) as caught:
        render_sms(templates, "{% for i in range(500) %}{{ i }}{% endfor %}")
    assert "took longer" in caught.value.reason


def test_ordinary_loops_and_filters_still_work(templates: Path) -> None:
    """The budget leaves room for what a real message does: loops, joins, filters, macros."""
    source = (
        "{% macro room(n) %}[{{ n|upper }}]{% endmacro %}"
        "{% for name in space_names %}{{ room(name) }}{% endfor %} "
        "{{ (guest_name ~ '!')|replace('Alex', 'A.') }} {{ range(3)|join('-') }} {{ pin_code }}"
    )
    sms = render_sms(templates, source, space_names=["Room 204", "Spa"])
    assert sms == "[ROOM 204][SPA] A. Rivera! 0-1-2 1234"


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
    with pytest.raises(TemplateError) as caught:
        render_sms(templates, source, pin_code="84720")
    error = caught.value
    assert "84720" not in str(error)
    assert "84720" not in error.reason
    assert error.__cause__ is None
    assert error.__context__ is None


def test_templates_cannot_read_settings_or_files(templates: Path) -> None:
    """No global gives a template the environment, the settings or the disk."""
    for source in ("{{ settings }}", "{{ config }}", "{{ environ }}", "{{ open }}", "{{ lipsum }}"):
        with pytest.raises(TemplateError, match="undefined"):
            render_sms(templates, source)
    with pytest.raises(TemplateError, match="missing"):
        render_sms(templates, "{% include '/etc/passwd' %}")
    with pytest.raises(TemplateError, match="missing"):
        render_sms(templates, "{% include '../../README.md' %}")
