"""Svix's own verification (`svix.webhooks`), loaded without the rest of the svix package.

`import svix.webhooks` first runs `svix/__init__.py`, which imports Svix's whole API client
(~290 modules: its models, httpx and pydantic glue, attrs, dateutil, deprecated): about 30 MB
of a web process that needs only the `Webhook` class to check a signature. This module loads
svix's `webhooks.py` file itself, from the installed svix package, under its own name: the
code that verifies is svix's, unchanged (it maps the svix-* headers and hands them to
`standardwebhooks`, the library svix depends on for the check). It is loaded under a private
name, so `svix` itself stays untouched: when svix is already imported (the worker signs the
hotels' status webhooks with it), its own module is used instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from app.errors import ConfigError

_NAME = "app.web.webhooks._svix_webhooks"


def _svix_webhooks() -> ModuleType:
    for name in ("svix.webhooks", _NAME):
        loaded = sys.modules.get(name)
        if loaded is not None:
            return loaded
    # find_spec of a top-level package locates it without running its __init__.
    package = importlib.util.find_spec("svix")
    if package is None or not package.submodule_search_locations:
        raise ConfigError("the svix package is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "webhooks.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"svix's webhooks module was not found at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return module


_module = _svix_webhooks()
Webhook = _module.Webhook
WebhookVerificationError: type[Exception] = _module.WebhookVerificationError

__all__ = ["Webhook", "WebhookVerificationError"]
