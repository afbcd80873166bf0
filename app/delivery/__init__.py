"""One delivery's life: compose it, send it through a port, record the attempt, retry, fall back.

Owns sending (`send`), composing a message from Seam's state (`compose`), the delivery window
(`window`, pure; `scheduling`, applied), what a provider's status report means
(`provider_status`, `undelivered`), the fallback to the other channel or the front desk
(`fallback`), the front desk's resend and card encoding (`resend`, `encoding`), the retry policy,
and the keyed fingerprints and hashes that let the ledger compare credentials and find guests
without keeping either (`credentials`, `destinations`).

May import: messages, ledger, observability, container (the Services type), and the foundations
(settings, errors, ports). Its imports of events (the planner's message kinds, processing's
callback types) and of intake (provider_status's enqueuer type) are on their way out with the
rework of those callbacks: tests/test_architecture.py allows them for now, in
TEMPORARY_EXCEPTIONS.
"""
