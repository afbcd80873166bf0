"""The `keycourier` command and the operator's tools behind it.

Owns the command line (`cli`, `templates_cli`), `register-webhook`, `doctor` and `worker-health`
(`commands`, `doctor`), the `deliveries` table (`deliveries`), the one-machine demo (`demo`;
`demo_group`: the workspaces it posts to, every one of SEAM_WORKSPACES_FILE's for a group),
and how many worker processes `keycourier worker` runs and their parent (`cores`,
`supervise`).

May import: web, console, intake, events, delivery, messages, ledger, adapters, observability,
standins, context, the foundations (settings, errors, ports), and workers (app/ops/cli.py
only: to start a worker or beat, and to publish on the embedded broker).
"""
