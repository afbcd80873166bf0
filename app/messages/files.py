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


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    # Names starting with a dot are skipped: editor swap files, and ConfigMap's ..data links
    # (the files it projects appear at their own names too).
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(TEMPLATE_SUFFIXES):
                continue
            path = Path(folder, name)
            yield path.relative_to(root).as_posix(), path


def stamp(root: Path) -> str:
    """Changes whenever a template file is added, removed, resized, touched or relinked."""
    digest = hashlib.sha256()
    if not root.is_dir():
        return "missing"
    for name, path in _walk(root):
        try:
            info = path.stat()
        except OSError:
            continue
        digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        digest.update(os.path.realpath(path).encode() + b"\0")
    return digest.hexdigest()


def read_files(root: Path) -> TemplateFiles:
    root = Path(root).resolve()
    if not root.is_dir():
        return TemplateFiles(root, {}, {}, "missing", missing_folder=True)
    before = stamp(root)
    sources: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for name, path in _walk(root):
        try:
            data = path.read_bytes()
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
