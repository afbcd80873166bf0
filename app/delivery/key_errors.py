"""An access method's errors that no alert of their own covers: what the front desk's
`front_desk_key_error` email tells, and the ledger key that tells each set of them once
(planned by app/events/planner.py, re-checked when composed by app/delivery/compose.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from app.messages.kinds import MessageKind
from app.ports import AccessMethod

# Errors with their own Seam event and alert: read on the access method, they plan that alert.
ERRORS_WITH_THEIR_OWN_ALERT = {"failed_to_issue": MessageKind.FRONT_DESK_ISSUE_FAILED}


def unexplained_errors(method: AccessMethod) -> tuple[str, ...]:
    """The access method's error codes that no alert of their own covers."""
    return tuple(sorted(set(method.errors) - set(ERRORS_WITH_THEIR_OWN_ALERT)))


def errors_fingerprint(codes: Sequence[str]) -> str:
    """A set of error codes as a short ledger key: told once per set."""
    digest = hashlib.sha256(",".join(sorted(set(codes))).encode()).hexdigest()[:24]
    return f"errors-{digest}"
