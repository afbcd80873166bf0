"""`keycourier templates check`: everything that can be found wrong with the templates before a
guest is sent a message from them.

Every file is parsed and scanned for variables that do not exist (even in a branch the sample
data does not reach); every message is rendered with its sample context (the PIN message also
as a changed code); guest messages must show the credential, the front desk's must not.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateSyntaxError, meta, nodes

from app.errors import TemplateError
from app.rendering import (
    EMAIL_PARTS,
    MESSAGES,
    SAMPLE_CONTEXTS,
    SAMPLE_INSTANT_KEY_URL,
    SAMPLE_PIN,
    VARIABLES,
    Problem,
    Renderer,
)

_CREDENTIAL_PARTS = (
    "sms.txt",
    "email.txt",
    "email.html",
)  # not the subject: it shows on lock screens


def check_templates(templates_dir: Path) -> list[Problem]:
    """Render every message with its sample context; [] when all is well."""
    templates_dir = Path(templates_dir)
    if not templates_dir.is_dir():
        return [Problem(str(templates_dir), "the templates folder does not exist")]
    renderer = Renderer(templates_dir)
    problems = _check_sources(renderer)
    for message, parts in MESSAGES.items():
        present = []
        for part in parts:
            if (templates_dir / message / part).is_file():
                present.append(part)
                continue
            reason = f"{message}/{part} is missing"
            if part in EMAIL_PARTS:
                reason += " (every email needs a subject, a text part and an HTML part)"
            problems.append(Problem(f"{message}/{part}", reason))
        problems += _check_message(renderer, message, present)
    unique: dict[str, Problem] = {}  # one problem per file:line (a syntax error fails twice)
    for problem in problems:
        unique.setdefault(problem.where, problem)
    return list(unique.values())


def _check_sources(renderer: Renderer) -> list[Problem]:
    """Syntax errors, and variables that are not in VARIABLES, in every .txt and .html file."""
    environment = renderer.environment
    known = set(VARIABLES) | set(environment.globals)
    problems = []
    for name in environment.list_templates(extensions=["txt", "html"]):
        try:
            source = (renderer.templates_dir / name).read_text(encoding="utf-8")
            tree = environment.parse(source, name=name)
            unknown = meta.find_undeclared_variables(tree) - known
        except TemplateSyntaxError as exc:
            problems.append(Problem(f"{name}:{exc.lineno}", f"syntax error: {exc.message}"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(name, "the file is not UTF-8 text"))
            continue
        for variable in sorted(unknown):
            line = min(
                (n.lineno for n in tree.find_all(nodes.Name) if n.name == variable), default=1
            )
            problems.append(
                Problem(
                    f"{name}:{line}",
                    f"unknown variable: {variable!r} is not a template variable"
                    " (the variables are listed in templates/README.md)",
                )
            )
    return problems


def _check_message(renderer: Renderer, message: str, parts: list[str]) -> list[Problem]:
    sample = dict(SAMPLE_CONTEXTS.get(message, SAMPLE_CONTEXTS["pin_code"]))
    runs: list[tuple[str, dict[str, object]]] = [("", sample)]
    if message == "pin_code":
        runs.append((" when the code has changed", sample | {"code_changed": True}))
    if message.startswith("front_desk"):  # give it credentials, to prove it never shows them
        runs.append(
            ("", sample | {"pin_code": SAMPLE_PIN, "instant_key_url": SAMPLE_INSTANT_KEY_URL})
        )
    problems = []
    for when, context in runs:
        for part in parts:
            name = f"{message}/{part}"
            try:
                output = renderer.render_part(message, part, context)
            except TemplateError as exc:
                problems.append(Problem(exc.where or name, exc.reason))
                continue
            if part not in _CREDENTIAL_PARTS:
                continue
            if message == "pin_code" and SAMPLE_PIN not in output:
                problems.append(
                    Problem(name, f"the PIN code is not shown{when}: use {{{{ pin_code }}}}")
                )
            if message == "instant_key" and SAMPLE_INSTANT_KEY_URL not in output:
                problems.append(
                    Problem(name, "the Instant Key link is not shown: use {{ instant_key_url }}")
                )
            if message.startswith("front_desk") and (
                SAMPLE_PIN in output or SAMPLE_INSTANT_KEY_URL in output
            ):
                problems.append(
                    Problem(name, "the front desk must never see the guest's PIN or Instant Key")
                )
    return problems
