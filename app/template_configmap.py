"""`keycourier templates configmap`: the templates folder as one Kubernetes ConfigMap.

A ConfigMap key cannot hold a `/`, so each file is stored under a flat key (`pin_code__en__sms.txt`)
and the volume's `items` put it back at its path. One ConfigMap means one atomic update: the
kubelet swaps every file at once, and hot reload then checks the new version as a whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.template_files import read_files


class ConfigMapError(ValueError):
    """The folder cannot be turned into a ConfigMap as it is."""


def flat_key(name: str) -> str:
    return name.replace("/", "__")


def configmap(templates_dir: Path, name: str) -> dict[str, object]:
    files = read_files(templates_dir)
    if files.missing_folder:
        raise ConfigMapError(f"{templates_dir} does not exist")
    if files.unreadable:
        first, reason = next(iter(files.unreadable.items()))
        raise ConfigMapError(f"{first} {reason}")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "keycourier"}},
        "data": {flat_key(path): text for path, text in sorted(files.sources.items())},
    }


def volume(templates_dir: Path, name: str) -> dict[str, object]:
    """The Deployment's `volumes:` entry that lays the ConfigMap out as the folder."""
    files = read_files(templates_dir)
    return {
        "name": "templates",
        "configMap": {
            "name": name,
            "items": [{"key": flat_key(path), "path": path} for path in sorted(files.sources)],
        },
    }


def render(templates_dir: Path, name: str, *, volume_only: bool = False) -> str:
    document = volume(templates_dir, name) if volume_only else configmap(templates_dir, name)
    # JSON is YAML too: kubectl apply -f reads it, and no quoting rule can bite a template.
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
