"""What leaves the process for people: logs, metrics, error reports, and the masks they use.

Owns JSON logging with redaction (`logs`, `redaction`), masking of phone numbers and email
addresses (`masking`), every Prometheus metric (`metrics`), Sentry reporting (`error_reports`),
and a worker process's hooks beside its tasks (`worker_hooks`).

May import: settings, errors. Everything else may import it.
"""
