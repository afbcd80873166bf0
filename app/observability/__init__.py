"""What leaves the process for people: logs, metrics, error reports, and the masks they use.

Owns JSON logging with redaction (`logs`, `redaction`), masking of phone numbers and email
addresses (`masking`), every Prometheus metric (`metrics`) and Sentry reporting
(`error_reports`). It knows nothing of the domain: the event types that get their own metric
label are told to it (app/events/kinds.py); a worker's Celery signal hooks are workers/hooks.py.

May import: only the foundations (settings, errors, ports). Everything else may import it.
"""
