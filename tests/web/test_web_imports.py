"""The web process with Redis as its broker writes Celery's message format itself: it loads
neither Celery nor kombu (~6 MB resident that the web process's budget, under 120 MB, has no
room for). It does load the Twilio and SendGrid packages: their signature checks verify the
providers' callbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("celery", "kombu", "billiard", "amqp")


def test_the_web_app_loads_no_worker_side_library() -> None:
    """Importing the web app and building its Redis enqueuer imports none of them."""
    probe = (
        "import sys\n"
        "import app.web.main\n"
        "from app.intake.queue import RedisEnqueuer\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def _loaded_after(probe: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import sys\n{probe}\nprint(' '.join(sorted(sys.modules)))\n"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=None if env is None else {**os.environ, **env},
    )
    return result.stdout.split()


def test_the_web_app_starts_without_the_sdks_only_rare_paths_need(tmp_path: Path) -> None:
    """The Seam and SendGrid SDKs (console actions; SendGrid's event webhook when its public
    key is set) and Svix's API client are not loaded by a web process that takes Seam's
    webhooks: svix's verification module is loaded alone (app/web/webhooks/svix_verify.py)."""
    env = {
        "SEAM_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    }
    probe = (
        "from app.settings import Settings\n"
        "from app.web.main import create_app\n"
        "routes = create_app(Settings()).routes\n"
        "assert any(getattr(r, 'path', '') == '/webhooks/seam' for r in routes)\n"
    )
    loaded = {name.split(".")[0] for name in _loaded_after(probe, env)}
    assert "app" in loaded  # the probe ran
    assert loaded & {"seam", "sendgrid", "svix", "python_http_client"} == set()


def test_a_seam_webhook_is_verified_by_svix_webhooks_code() -> None:
    """What the endpoint verifies with is svix's own `webhooks` module's class, and a later
    `import svix` (the worker's signing) is unaffected."""
    probe = (
        "from app.web.webhooks.svix_verify import Webhook, WebhookVerificationError\n"
        "assert 'svix' not in sys.modules\n"
        "import svix.webhooks\n"
        "assert Webhook.__qualname__ == svix.webhooks.Webhook.__qualname__ == 'Webhook'\n"
        "assert svix.webhooks.Webhook is not Webhook\n"
        "assert WebhookVerificationError is svix.webhooks.WebhookVerificationError\n"
        "print(svix.webhooks.__file__ == sys.modules[Webhook.__module__].__file__)\n"
    )
    assert _loaded_after(probe)[0] == "True"


def test_the_command_line_loads_alembic_only_to_migrate() -> None:
    """`keycourier serve` with PostgreSQL never migrates (the release phase does): the command
    line module loads neither Alembic nor Mako (~8 MB of the web process)."""
    loaded = {name.split(".")[0] for name in _loaded_after("import app.ops.cli")}
    assert "app" in loaded
    assert loaded & {"alembic", "mako"} == set()
