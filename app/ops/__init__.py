"""The `keycourier` command and the operator's tools behind it.

Owns the command line (`cli`, `templates_cli`), `register-webhook`, `doctor` and `worker-health`
(`commands`, `doctor`), and the one-machine demo (`demo`).

May import anything in app, and workers (only to start a worker or beat).
"""
