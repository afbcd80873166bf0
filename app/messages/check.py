"""`keycourier templates check`: everything that can be found wrong with the templates before a
guest is sent a message from them. Hot reload runs the same check before it uses an edit.

Every file is parsed and scanned for syntax errors, variables that are not documented and
reaches into Python internals (even in a branch the sample data does not reach). Then every
message is rendered in every language folder, with a full sample stay and a sparse one (no
dates, room or reservation), with the guest's resend link when properties.toml turns it on for
a hotel (else once more with it, not measured): guest bodies must show the credential,
front-desk emails must not, every email must have its three parts, every SMS must fit the
segment limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta, nodes

from app.errors import TemplateError
from app.messages.catalog import (
    BODY_PARTS,
    CREDENTIAL_OF,
    EMAIL_PARTS,
    MESSAGES,
    PROPERTIES_FILE,
    VARIABLES,
)
from app.messages.kinds import MessageKind
from app.messages.properties import Audience
from app.messages.rendering import Renderer
from app.messages.sms_segments import Segments, count_segments
from app.messages.variables import SAMPLE_INSTANT_KEY_URL, SAMPLE_PIN, sample_context
from app.messages.whatsapp import credential_of, guest_messages
from app.settings import ALL_CHANNELS, Channel, Settings
from app.settings.locales import normalize_locale

SAMPLE_PROPERTY = "Hotel Example"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the templates: `file:line` (or file) and a plain-language reason."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class SmsReport:
    """How one rendered SMS counts, for the check's report on every SMS."""

    name: str
    when: str
    segments: Segments


@dataclass
class CheckResult:
    problems: list[Problem] = field(default_factory=list)
    sms: list[SmsReport] = field(default_factory=list)
    # Worth knowing, not wrong: e.g. a language properties.toml asks for that falls back.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_templates(
    templates_dir: Path,
    *,
    default_locale: str = "en",
    default_timezone: str = "UTC",
    max_segments: int = 2,
    channels: Sequence[Channel] = ALL_CHANNELS,
) -> CheckResult:
    """Check a templates folder as it is on disk now; `channels`: DELIVERY_CHANNELS."""
    renderer = Renderer.from_folder(
        templates_dir, default_locale=default_locale, default_timezone=default_timezone
    )
    return check_renderer(renderer, max_segments=max_segments, channels=channels)


def check_configured(settings: Settings, templates_dir: Path | None = None) -> CheckResult:
    """Check a folder (TEMPLATES_DIR unless given) with the configured language, zone and
    SMS limit, as the running service would."""
    folder = templates_dir or settings.templates_dir
    renderer = Renderer.from_folder(
        folder, default_locale=settings.default_locale, default_timezone=settings.timezone
    )
    result = check_renderer(
        renderer, max_segments=settings.sms_max_segments, channels=settings.delivery_channels
    )
    if renderer.properties.offers_guest_resend_link() and settings.public_base_url is None:
        result.notes.append(
            f"{PROPERTIES_FILE} turns guest_resend_link on, but PUBLIC_BASE_URL is not set: "
            "no message carries the link until it is"
        )
    return result


def check_renderer(
    renderer: Renderer, *, max_segments: int = 2, channels: Sequence[Channel] = ALL_CHANNELS
) -> CheckResult:
    """Check the snapshot a Renderer holds; CheckResult.ok when a guest may be sent from it.
    `channels` (DELIVERY_CHANNELS) is the order of hotels properties.toml gives none."""
    files = renderer.files
    result = CheckResult()
    if files.missing_folder:
        result.problems.append(Problem(str(files.root), "the templates folder does not exist"))
        return result
    result.problems += [Problem(name, reason) for name, reason in files.unreadable.items()]
    if renderer.properties_error is not None:
        error = renderer.properties_error
        where = PROPERTIES_FILE + (f":{error.line}" if error.line else "")
        result.problems.append(Problem(where, error.reason))
    result.problems += _check_sources(renderer)
    result.problems += _check_layout(renderer)
    for message in MESSAGES:
        for locale in sorted(renderer.locale_folders.get(message, {})):
            _check_message(renderer, message, locale, max_segments, result)
    result.notes += _fallback_notes(renderer)
    if renderer.properties_error is None:
        _check_whatsapp(renderer, channels, result)
    unique: dict[str, Problem] = {}  # one problem per file:line (a syntax error fails twice)
    for problem in result.problems:
        unique.setdefault(problem.where, problem)
    result.problems = list(unique.values())
    return result


def _check_whatsapp(renderer: Renderer, channels: Sequence[Channel], result: CheckResult) -> None:
    """Where WhatsApp is on (a hotel's `channels`, or DELIVERY_CHANNELS for the others), each
    key message needs a content template, with one for DEFAULT_LOCALE when it names languages;
    a notice without one is not sent by WhatsApp (noted)."""
    properties = renderer.properties
    places: list[tuple[str, str | None, list[str]]] = []
    for name, entry in properties.entries():
        if entry.channels is not None and "whatsapp" in entry.channels:
            table, _, seam_id = name.partition(".")
            workspace = seam_id if table == "workspaces" else None
            places.append((f"[{name}]", workspace, [] if workspace else [seam_id]))
    if "whatsapp" in channels:
        places.append(("DELIVERY_CHANNELS", None, []))
    default = renderer.default_locale
    for where, workspace_id, space_ids in places:
        missing_notices = []
        for message in guest_messages():
            kind = MessageKind.by_template(message)
            template = properties.whatsapp_template(message, workspace_id, space_ids)
            if template is None and kind is not None and kind.value != message:
                template = properties.whatsapp_template(kind.value, workspace_id, space_ids)
            if template is None and credential_of(message) is not None:
                result.problems.append(
                    Problem(
                        f"{PROPERTIES_FILE}: {where}",
                        f"sends keys by WhatsApp, but no content template is named for "
                        f"{message}: add [whatsapp.{message}] (content_sid and variables)",
                    )
                )
            elif template is None:
                missing_notices.append(message)
            elif "" not in template.sids and default not in template.sids:
                result.problems.append(
                    Problem(
                        f"{PROPERTIES_FILE}: {where}",
                        f"whatsapp.{message}.content_sid names no template for DEFAULT_LOCALE "
                        f"({default}), which other languages fall back to",
                    )
                )
        if missing_notices:
            result.notes.append(
                f"{PROPERTIES_FILE}: {where} sends by WhatsApp, but names no content template "
                f"for {', '.join(missing_notices)}: guests reached by WhatsApp get "
                f"{'that notice' if len(missing_notices) == 1 else 'those notices'} by their "
                "other channels only"
            )


def _fallback_notes(renderer: Renderer) -> list[str]:
    """Languages properties.toml asks for that some messages have no folder for."""
    notes = []
    for locale in sorted(renderer.properties.locales()):
        fallen = [m for m in MESSAGES if renderer.locale_for(m, locale) != locale]
        if fallen:
            instead = ", ".join(sorted({renderer.locale_for(m, locale) for m in fallen}))
            notes.append(
                f"{PROPERTIES_FILE} asks for {locale}, but {', '.join(fallen)} "
                f"{'has' if len(fallen) == 1 else 'have'} no {locale} folder: "
                f"those guests get {instead} for {'it' if len(fallen) == 1 else 'them'}"
            )
    return notes


def _check_layout(renderer: Renderer) -> list[Problem]:
    problems = []
    sources = renderer.files.sources
    folders = {name.split("/")[0] for name in sources if "/" in name}
    for folder in sorted(folders - set(MESSAGES)):
        if not folder.startswith("_"):
            problems.append(
                Problem(
                    f"{folder}/",
                    "not a message keycourier sends (the messages are: "
                    + ", ".join(MESSAGES)
                    + "; folders for shared pieces start with _)",
                )
            )
    for name in sorted(sources):
        pieces = name.split("/")
        if pieces[0] not in MESSAGES:
            continue
        if len(pieces) != 3:
            problems.append(
                Problem(name, f"belongs in a language folder, e.g. {pieces[0]}/en/{pieces[-1]}")
            )
            continue
        try:
            normalize_locale(pieces[1])
        except ValueError as exc:
            problems.append(Problem(f"{pieces[0]}/{pieces[1]}/", f"not a language folder: {exc}"))
            continue
        if pieces[2] not in MESSAGES[pieces[0]]:
            allowed = ", ".join(MESSAGES[pieces[0]])
            problems.append(Problem(name, f"not a part of {pieces[0]} (its parts are {allowed})"))
    for message, parts in MESSAGES.items():
        folders_of = renderer.locale_folders.get(message, {})
        if renderer.default_locale not in folders_of:
            problems.append(
                Problem(
                    f"{message}/{renderer.default_locale}/",
                    f"is missing: every message needs a folder for DEFAULT_LOCALE "
                    f"({renderer.default_locale}), which other languages fall back to",
                )
            )
        for folder in folders_of.values():
            for part in parts:
                name = f"{message}/{folder}/{part}"
                if name in renderer.files.sources or name in renderer.files.unreadable:
                    continue
                reason = f"{name} is missing"
                if part in EMAIL_PARTS:
                    reason += " (every email needs a subject, a text part and an HTML part)"
                problems.append(Problem(name, reason))
    return problems


def _check_sources(renderer: Renderer) -> list[Problem]:
    """Syntax errors, undocumented variables and sandbox escapes, in every .txt and .html."""
    environment = renderer.environment
    known = set(VARIABLES) | set(environment.globals)
    problems = []
    for name, source in sorted(renderer.files.sources.items()):
        if not name.endswith((".txt", ".html")):
            continue
        try:
            tree = environment.parse(source, name=name)
        except TemplateSyntaxError as exc:
            problems.append(Problem(f"{name}:{exc.lineno}", f"syntax error: {exc.message}"))
            continue
        for variable in sorted(meta.find_undeclared_variables(tree) - known):
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
        problems += _sandbox_escapes(name, tree)
    return problems


def _sandbox_escapes(name: str, tree: nodes.Template) -> list[Problem]:
    """Reaching for `_private` names is how sandbox escapes start: refused wherever it is."""
    problems = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            target: object = node.attr
        elif isinstance(node, nodes.Getitem):
            target = node.arg.value if isinstance(node.arg, nodes.Const) else None
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            # a name computed at render time is refused too
            first = node.args[0] if node.args else None
            target = first.value if isinstance(first, nodes.Const) else "_"
        else:
            target = None
        if isinstance(target, str) and target.startswith("_"):
            problems.append(
                Problem(
                    f"{name}:{node.lineno}",
                    "not allowed in a template: names starting with _ and |attr reach inside "
                    "Python, which the sandbox forbids",
                )
            )
    return problems


def _check_message(
    renderer: Renderer, message: str, locale: str, max_segments: int, result: CheckResult
) -> None:
    audience = Audience(locale, renderer.default_timezone, SAMPLE_PROPERTY)
    linked = sample_context(message, audience, with_resend_link=True)
    # The guest's resend link counts against the SMS limit once a hotel turns it on; until
    # then it is rendered (to find its mistakes) but not measured.
    link_on = renderer.properties.offers_guest_resend_link()
    full = linked if link_on else linked | {"resend_url": None}
    sparse = full | {
        "stay_starts_at": "",
        "stay_ends_at": "",
        "space_names": [],
        "reservation": None,
        "property_name": "",
    }
    # (how the run differs, its variables, whether its SMS is measured). The probe run of a
    # message that carries no credential is the full run again with credentials added: its SMS
    # is the same length, so counting it would list (and refuse) that SMS twice.
    runs: list[tuple[str, dict[str, object], bool]] = [
        ("", full, True),
        (" without dates or room", sparse, True),
    ]
    if message in CREDENTIAL_OF and not link_on:
        runs.append((" with the resend link", linked, False))
    if message not in CREDENTIAL_OF:  # give it credentials, to prove it never shows them
        probe = full | {"pin_code": SAMPLE_PIN, "instant_key_url": SAMPLE_INSTANT_KEY_URL}
        runs.append(("", probe, False))
    credential = CREDENTIAL_OF.get(message)
    for when, context, measured in runs:
        for part in MESSAGES[message]:
            name = renderer.part_name(message, part, context)
            if name not in renderer.files.sources:
                continue  # reported as missing
            try:
                output = renderer.render_part(message, part, context)
            except TemplateError as exc:
                result.problems.append(Problem(exc.where or name, exc.reason))
                continue
            if part == "sms.txt" and measured:
                segments = count_segments(output.strip())
                result.sms.append(SmsReport(name, when, segments))
                if segments.segments > max_segments:
                    result.problems.append(
                        Problem(
                            name,
                            f"the SMS is too long{when}: {segments.describe()}; "
                            f"the limit is {max_segments} (SMS_MAX_SEGMENTS)",
                        )
                    )
            if part not in BODY_PARTS:
                continue
            if credential == "pin_code" and SAMPLE_PIN not in output:
                result.problems.append(
                    Problem(name, f"the PIN code is not shown{when}: use {{{{ pin_code }}}}")
                )
            if credential == "instant_key_url" and SAMPLE_INSTANT_KEY_URL not in output:
                result.problems.append(
                    Problem(
                        name,
                        f"the Instant Key link is not shown{when}: use {{{{ instant_key_url }}}}",
                    )
                )
            if credential is None and (SAMPLE_PIN in output or SAMPLE_INSTANT_KEY_URL in output):
                result.problems.append(
                    Problem(name, f"{_who(message)} must never see the guest's PIN or Instant Key")
                )


def _who(message: str) -> str:
    kind = MessageKind.by_template(message)
    return f"{message} messages" if kind is None or kind.is_for_guest else "the front desk"
