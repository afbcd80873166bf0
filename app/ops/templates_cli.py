"""`keycourier templates ...`: check, preview and package the message templates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.messages.configmap import NAME as CONFIGMAP_NAME
from app.settings import load_settings


def add_template_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `templates check|preview|configmap` to the keycourier command's subcommands."""
    templates = commands.add_parser("templates", help="work with message templates")
    template_commands = templates.add_subparsers(required=True, metavar="ACTION")
    check = template_commands.add_parser(
        "check", help="render every message, part and language with sample data"
    )
    check.add_argument("--dir", type=Path, help="templates directory (default: $TEMPLATES_DIR)")
    check.set_defaults(run=_templates_check)
    preview = template_commands.add_parser(
        "preview", help="print one message as it would be sent (the HTML email as a file too)"
    )
    preview.add_argument("message", help="the message folder, e.g. pin_code")
    preview.add_argument("--locale", help="the language folder, e.g. fr (default: DEFAULT_LOCALE)")
    preview.add_argument("--channel", choices=("sms", "email"), help="only this channel")
    preview.add_argument(
        "--event", type=Path, help="a Seam event JSON file: its workspace, ids and code are used"
    )
    preview.add_argument("--dir", type=Path, help="templates directory (default: $TEMPLATES_DIR)")
    preview.set_defaults(run=_templates_preview)
    configmap = template_commands.add_parser(
        "configmap", help="print the templates as a Kubernetes ConfigMap (YAML, for kubectl apply)"
    )
    configmap.add_argument("--name", default=CONFIGMAP_NAME, help="the ConfigMap's name")
    configmap.add_argument(
        "--volume",
        action="store_true",
        help="print instead the Deployments' `templates` volume that maps each key to its path",
    )
    configmap.add_argument("--dir", type=Path, help="templates directory (default: $TEMPLATES_DIR)")
    configmap.set_defaults(run=_templates_configmap)


def _templates_check(args: argparse.Namespace) -> int:
    from app.messages.check import check_configured

    settings = load_settings()
    directory = args.dir or settings.templates_dir
    result = check_configured(settings, directory)
    for sms in result.sms:
        print(f"SMS {sms.name}{f' ({sms.when.strip()})' if sms.when else ''}: "
              f"{sms.segments.describe()}")  # fmt: skip
    for note in result.notes:
        print(f"note: {note}")
    for problem in result.problems:
        print(problem)
    if result.problems:
        print(f"{len(result.problems)} problem(s) in {directory}", file=sys.stderr)
        return 1
    print(f"all templates in {directory} pass the check")
    return 0


def _templates_preview(args: argparse.Namespace) -> int:
    from app.errors import PreviewError, TemplateError
    from app.messages.check import check_configured
    from app.messages.preview import preview, read_event

    settings = load_settings()
    directory = args.dir or settings.templates_dir
    try:
        shown = preview(
            directory,
            args.message,
            locale=args.locale,
            channel=args.channel,
            event=read_event(args.event) if args.event else None,
            default_locale=settings.default_locale,
            default_timezone=settings.timezone,
        )
    except PreviewError as exc:
        print(f"keycourier templates preview: {exc}", file=sys.stderr)
        return 2
    except TemplateError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    print(shown.text, end="")
    problems = check_configured(settings, directory).problems
    if problems:
        print(
            f"\nnote: the templates have {len(problems)} problem(s); until they are fixed the"
            " running service keeps the last version that passed. Run: keycourier templates check",
            file=sys.stderr,
        )
    return 0


def _templates_configmap(args: argparse.Namespace) -> int:
    from app.errors import ConfigMapError
    from app.messages.check import check_configured
    from app.messages.configmap import configmap_yaml, volume_yaml

    settings = load_settings()
    directory = args.dir or settings.templates_dir
    if not args.volume:
        problems = check_configured(settings, directory).problems
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(
                "keycourier: fix these before they go live (no ConfigMap printed)", file=sys.stderr
            )
            return 1
    try:
        render = volume_yaml if args.volume else configmap_yaml
        print(render(directory, args.name), end="")
    except ConfigMapError as exc:
        print(f"keycourier templates configmap: {exc}", file=sys.stderr)
        return 2
    return 0
