"""Reading the templates folder into one immutable snapshot.

A render never reads the disk: it uses the snapshot it was given, so a half-saved edit, or a
Kubernetes ConfigMap swapping its files, is never seen half-way. `stamp()` is the cheap
question "has anything changed?" (names, sizes, modification times and link targets), asked
before paying for a new read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE_SUFFIXES = (".txt", ".html", ".toml")
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class TemplateFiles:
    """The text of every template file, by its path in the folder (`pin_code/en/sms.txt`)."""

    root: Path
    sources: Mapping[str, str] = field(repr=False)
    # Files that are there but cannot be used, with the reason.
    unreadable: Mapping[str, str]
    stamp: str
    missing_folder: bool = False

    def digest(self) -> str:
        """What was read, whatever the files' times: two reads with the same digest hold the
        same text under the same names, and the same files that could not be used."""
        digest = hashlib.sha256(b"missing\0" if self.missing_folder else b"folder\0")
        for part, entries in ((b"source", self.sources), (b"unreadable", self.unreadable)):
            for name in sorted(entries):
                for value in (name, entries[name]):
                    data = value.encode("utf-8", "surrogatepass")
                    digest.update(b"%s\0%d\0%s" % (part, len(data), data))
        return digest.hexdigest()


def _walk(root: Path) -> Iterator[tuple[str, str]]:
    """Each template file under `root` as (its name in the folder, its path), in name order.

    Plain strings and os.scandir: stamp() walks the folder every TEMPLATES_RELOAD_SECONDS in
    each process, inside a task, and pathlib's walk cost it several milliseconds."""
    # Names starting with a dot are skipped: editor swap files, and ConfigMap's ..data links
    # (the files it projects appear at their own names too). Linked folders are followed.
    folders = [(os.fspath(root), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            continue
        below = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if is_folder:
                below.append((entry.path, f"{prefix}{name}/"))
            elif name.endswith(TEMPLATE_SUFFIXES):
                yield f"{prefix}{name}", entry.path
        folders += reversed(below)


def stamp(root: Path) -> str:
    """Changes whenever a template file is added, removed, resized, touched or relinked."""
    digest = hashlib.sha256()
    if not root.is_dir():
        return "missing"
    real_folders: dict[str, str] = {}
    for name, path in _walk(root):
        try:
            info = os.stat(path)
        except OSError:
            continue
        digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        digest.update(_real_path(path, real_folders).encode() + b"\0")
    return digest.hexdigest()


def _real_path(path: str, real_folders: dict[str, str]) -> str:
    """os.path.realpath(path), resolving each folder once rather than once per file in it."""
    folder, name = os.path.split(path)
    real_folder = real_folders.get(folder)
    if real_folder is None:
        real_folder = real_folders[folder] = os.path.realpath(folder)
    real = os.path.join(real_folder, name)
    return os.path.realpath(real) if os.path.islink(real) else real


def read_files(root: Path) -> TemplateFiles:
    root = Path(root).resolve()
    if not root.is_dir():
        return TemplateFiles(root, {}, {}, "missing", missing_folder=True)
    before = stamp(root)
    sources: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for name, path in _walk(root):
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as exc:
            unreadable[name] = f"cannot be read ({exc.strerror or type(exc).__name__})"
            continue
        if len(data) > MAX_FILE_BYTES:
            unreadable[name] = f"is larger than {MAX_FILE_BYTES // 1024} KB"
            continue
        try:
            sources[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            unreadable[name] = "is not UTF-8 text (save it as UTF-8)"
    # Stamped before reading: if a file changed meanwhile, the next stamp differs and the
    # folder is read again, rather than a mixed read being taken for the latest.
    return TemplateFiles(root, sources, unreadable, before)
