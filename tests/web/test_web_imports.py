"""The web process with Redis as its broker writes Celery's message format itself: it loads
neither Celery nor kombu (~6 MB resident that the web process's budget, under 120 MB, has no
room for). It does load the Twilio and SendGrid packages: their signature checks verify the
providers' callbacks."""

from __future__ import annotations

import subprocess
import sys

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
