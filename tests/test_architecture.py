"""The shape of app/ (docs/architecture.md), read from the source with `ast`: who may import
whom, no import cycles between packages, workers started from one place, few top-level
modules, one exception tree, and a map that names every package.

Every import counts, wherever it is: at the top, inside a function, under `if TYPE_CHECKING:`.
A type-only import is still a dependency a reader must follow, and still a cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Every package may import these, and they import (almost) nothing of app themselves.
FOUNDATIONS: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "settings": frozenset({"errors"}),
    "ports": frozenset({"errors", "settings"}),
}
# Words a "May import:" line may use besides the names of packages and modules.
FILLER = frozenset({"and", "the", "only", "foundations"})
MAX_TOP_LEVEL_MODULES = 12


@dataclass(frozen=True)
class Import:
    path: Path  # the importing file
    line: int
    module: str  # what it imports, dotted: app.ledger.store, workers.celery_app

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.module}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[Import]:
    """Every module `path` imports, from anywhere in the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for line, module in imported_modules(ast.parse(path.read_text(), str(path)), package):
        yield Import(path, line, module)


def imported_modules(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every import in `tree`, relative ones resolved from `package`;
    `from app import x` imports the module app.x when there is one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                where = ROOT.joinpath(*base.split("."), alias.name)
                if where.is_dir() or where.with_suffix(".py").exists():
                    yield node.lineno, f"{base}.{alias.name}"


def unit(module: str) -> str | None:
    """The package or top-level module of app a module belongs to (`ledger`, `container`),
    "workers" for the workers package, None for anything else."""
    parts = module.split(".")
    if parts[0] == "workers":
        return "workers"
    if parts[0] != "app" or len(parts) == 1:
        return None
    return parts[1]


def app_files() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def packages() -> list[str]:
    return sorted(p.parent.name for p in APP.glob("*/__init__.py"))


def units() -> set[str]:
    return {*packages(), *(p.stem for p in APP.glob("*.py") if p.stem != "__init__")}


def edges() -> dict[tuple[str, str], list[Import]]:
    """unit -> unit it imports, with the imports that make each edge."""
    found: dict[tuple[str, str], list[Import]] = {}
    for path in app_files():
        source = unit(module_name(path))
        for imported in imports_of(path):
            target = unit(imported.module)
            if source is not None and target is not None and target != source:
                found.setdefault((source, target), []).append(imported)
    return found


def may_import(package: str) -> set[str]:
    """The units (`delivery`) and modules (`events.kinds`) a package's docstring allows."""
    docstring = ast.get_docstring(ast.parse((APP / package / "__init__.py").read_text())) or ""
    found = re.search(r"May import:(.*?)[.;](?:\s|$)", docstring, re.DOTALL)
    assert found, f"app/{package}/__init__.py has no 'May import:' line"
    listed = re.sub(r"\([^)]*\)", "", found.group(1))
    names = set(re.findall(r"[a-z_]+(?:\.[a-z_]+)?", listed)) - FILLER
    unknown = {name for name in names if name.split(".")[0] not in units() | {"workers"}}
    assert not unknown, f"app/{package}'s 'May import:' names no package of app: {unknown}"
    return names | set(FOUNDATIONS)


def allowed(rule: set[str], imported: str) -> bool:
    """Whether `imported` (app.events.kinds) is allowed by a rule naming units and modules."""
    target = unit(imported)
    if target in rule:
        return True
    dotted = imported.removeprefix("app.")
    return any(dotted == name or dotted.startswith(f"{name}.") for name in rule if "." in name)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_each_package_imports_only_what_its_docstring_allows() -> None:
    """A module imports only the packages (or modules) its package's "May import:" line names,
    or a foundation (settings, errors, ports)."""
    broken = []
    for package in packages():
        rule = may_import(package)
        for path in (APP / package).rglob("*.py"):
            for imported in imports_of(path):
                target = unit(imported.module)
                if target is None or target == package:
                    continue
                if allowed(rule, imported.module):
                    continue
                broken.append(str(imported))
    assert not broken, "imports the package's 'May import:' line does not allow:\n" + "\n".join(
        broken
    )


def test_foundations_import_only_foundations_below_them() -> None:
    """errors imports nothing of app, settings only errors, ports only errors and settings: every
    package may import them because they import none of it."""
    broken = [
        f"{source} -> {target}: {found[0]}"
        for (source, target), found in edges().items()
        if source in FOUNDATIONS and target not in FOUNDATIONS[source]
    ]
    assert not broken, "\n".join(broken)


def test_no_import_cycle_between_packages() -> None:
    """No two packages (or top-level modules) of app import each other, however indirectly."""
    graph: dict[str, set[str]] = {}
    for source, target in edges():
        graph.setdefault(source, set()).add(target)
    found = cycles(graph)
    assert not found, f"import cycles between packages: {found}"


def test_only_the_command_line_imports_workers() -> None:
    """Nothing in app imports workers except app/ops/cli.py, which starts a worker or beat and
    publishes on the embedded broker."""
    cli = APP / "ops" / "cli.py"
    found = [
        str(imported)
        for path in app_files()
        if path != cli
        for imported in imports_of(path)
        if unit(imported.module) == "workers"
    ]
    assert not found, "\n".join(found)


def test_app_has_few_top_level_modules() -> None:
    """app/ holds packages (rooms by feature), and at most a dozen modules beside them."""
    modules = sorted(p.name for p in APP.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_every_exception_class_is_in_errors() -> None:
    """Every exception class of app is defined in app/errors.py, where the tree is drawn."""
    errors = ast.parse((APP / "errors.py").read_text())
    ours = {node.name for node in errors.body if isinstance(node, ast.ClassDef)}
    elsewhere = []
    for path in app_files():
        if path == APP / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(base).split(".")[-1].split("[")[0] for base in node.bases}
            if bases & ours or any(b.endswith(("Error", "Exception")) for b in bases):
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not elsewhere, "exception classes outside app/errors.py:\n" + "\n".join(elsewhere)


def test_the_architecture_page_names_every_package() -> None:
    """docs/architecture.md names every package of app (as app/NAME/), and only packages that
    exist."""
    named = set(re.findall(r"\bapp/([a-z_]+)/", ARCHITECTURE.read_text()))
    assert named == set(packages()), (
        f"named but missing: {sorted(named - set(packages()))}; "
        f"missing from the page: {sorted(set(packages()) - named)}"
    )


SAMPLE = """
from __future__ import annotations
import workers.celery_app
from typing import TYPE_CHECKING
from app.ledger.store import Ledger
from app import errors
from . import compose
from ..messages import catalog

if TYPE_CHECKING:
    from app.container import Services


def later() -> None:
    from app.web.main import create_app
"""


def test_the_rules_see_every_kind_of_import() -> None:
    """The import reader finds plain, from, relative, nested and type-only imports, and the
    cycle finder finds a cycle of three, so that no rule passes because it saw nothing."""
    seen = {module for _, module in imported_modules(ast.parse(SAMPLE), "app.delivery")}
    assert {
        "workers.celery_app",
        "app.ledger.store",
        "app.errors",
        "app.delivery.compose",
        "app.messages.catalog",
        "app.container",
        "app.web.main",
    } <= seen
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert allowed({"events.kinds"}, "app.events.kinds")
    assert not allowed({"events.kinds"}, "app.events.processing")
