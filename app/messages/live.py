"""Hot reload with a safety net: the templates the web and worker processes render from.

At most every TEMPLATES_RELOAD_SECONDS, a render first asks whether the folder changed. A
changed folder is read whole and put through `keycourier templates check`; only a version that
passes replaces the one in use. A version that fails is logged, problem by problem, and the
last good one keeps serving: `status()` (shown on /readyz) says "degraded" until the folder
is fixed. A process that starts on a failing folder has nothing to serve: each render raises
TemplateError, so deliveries wait and are retried once the folder is fixed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from app.errors import TemplateError
from app.messages.check import CheckResult, Problem, check_renderer
from app.messages.files import TemplateFiles, read_files, stamp
from app.messages.properties import Audience, Routing
from app.messages.rendering import RenderedEmail, Renderer
from app.messages.whatsapp import Content
from app.settings import ALL_CHANNELS, Channel, Settings

log = logging.getLogger(__name__)

# The versions this process has checked, by what they hold and how they were checked. Checking
# compiles every template and renders each message (~0.5 s of CPU); a second LiveTemplates over
# the same text (the single-machine web process and its embedded worker, a Context built
# again) takes the first one's renderer and result instead. A changed folder is a new key.
CHECKED_KEPT = 8
_checked: OrderedDict[tuple[object, ...], tuple[Renderer, CheckResult]] = OrderedDict()
_checked_lock = threading.Lock()


class LiveTemplates:
    """Renders from the last version of the templates folder that passed the check."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        default_locale: str = "en",
        default_timezone: str = "UTC",
        max_segments: int = 2,
        channels: Sequence[Channel] = ALL_CHANNELS,
        reload_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.templates_dir = Path(templates_dir).resolve()
        self._default_locale = default_locale
        self._default_timezone = default_timezone
        self._max_segments = max_segments
        self._channels = tuple(channels)
        self._reload_seconds = reload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Renderer | None = None
        self._problems: list[Problem] = []
        self._stamp: str | None = None
        self._looked_at = float("-inf")
        self.refresh(force=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveTemplates:
        return cls(
            settings.templates_dir,
            default_locale=settings.default_locale,
            default_timezone=settings.timezone,
            max_segments=settings.sms_max_segments,
            channels=settings.delivery_channels,
            reload_seconds=settings.templates_reload_seconds,
        )

    def refresh(self, *, force: bool = False) -> None:
        """Take up the folder's current version if it changed and passes the check."""
        now = self._clock()
        if not force and now - self._looked_at < self._reload_seconds:
            return
        # One thread looks; the others render with what is there meanwhile.
        if not self._lock.acquire(blocking=force):
            return
        try:
            self._looked_at = now
            if stamp(self.templates_dir) == self._stamp:
                return
            self._load()
        finally:
            self._lock.release()

    def _load(self) -> None:
        files = read_files(self.templates_dir)
        candidate, result = self._checked(files)
        self._stamp = files.stamp
        if result.ok:
            replaced = self._current is not None
            self._current = candidate
            self._problems = []
            log.info("templates %s from %s", "reloaded" if replaced else "loaded", files.root)
            return
        self._problems = result.problems
        serving = "the last good version" if self._current is not None else "nothing"
        log.warning(
            "templates in %s fail the check (%d problem(s)); still serving %s",
            files.root,
            len(result.problems),
            serving,
        )
        for problem in result.problems:
            log.warning("template problem: %s", problem)

    def _checked(self, files: TemplateFiles) -> tuple[Renderer, CheckResult]:
        """A renderer for `files` and its check: this process's earlier one for the same text
        and settings, else a new one."""
        key = (
            files.root,
            files.digest(),
            self._default_locale,
            self._default_timezone,
            self._max_segments,
            self._channels,
        )
        with _checked_lock:
            if (found := _checked.get(key)) is not None:
                _checked.move_to_end(key)
                return found
        renderer = Renderer(
            files, default_locale=self._default_locale, default_timezone=self._default_timezone
        )
        result = check_renderer(renderer, max_segments=self._max_segments, channels=self._channels)
        with _checked_lock:
            _checked[key] = (renderer, result)
            while len(_checked) > CHECKED_KEPT:
                _checked.popitem(last=False)
        return renderer, result

    def status(self) -> dict[str, object]:
        """For /readyz: "ok", or "degraded" with the problems and what is being served."""
        self.refresh()
        if not self._problems:
            return {"status": "ok"}
        return {
            "status": "degraded",
            "serving": "last good version" if self._current is not None else "nothing",
            "problems": [str(problem) for problem in self._problems],
        }

    def current(self) -> Renderer:
        self.refresh()
        current = self._current
        if current is None:
            first = self._problems[0] if self._problems else "unknown"
            raise TemplateError(
                f"no version of the templates has passed the check yet (first problem: {first})"
            )
        return current

    def audience(
        self, message: str, workspace_id: str | None, space_ids: Sequence[str]
    ) -> Audience:
        return self.current().audience(message, workspace_id, space_ids)

    def timezone(self, workspace_id: str | None, space_ids: Sequence[str]) -> str:
        return self.current().timezone(workspace_id, space_ids)

    def country(self, workspace_id: str | None, space_ids: Sequence[str]) -> str | None:
        return self.current().country(workspace_id, space_ids)

    def routing(self, workspace_id: str | None, space_ids: Sequence[str]) -> Routing:
        return self.current().routing(workspace_id, space_ids)

    def whatsapp_content(
        self,
        message: str,
        workspace_id: str | None,
        space_ids: Sequence[str],
        context: Mapping[str, object],
    ) -> Content | None:
        return self.current().whatsapp_content(message, workspace_id, space_ids, context)

    def guest_resend_link(self, workspace_id: str | None, space_ids: Sequence[str]) -> bool:
        return self.current().guest_resend_link(workspace_id, space_ids)

    def render_sms(self, message: str, context: Mapping[str, object]) -> str:
        return self.current().render_sms(message, context)

    def render_email(self, message: str, context: Mapping[str, object]) -> RenderedEmail:
        return self.current().render_email(message, context)
