"""What a Seam event means for the guest: re-read Seam, plan the messages owed, record them.

Owns the event kinds and their actions (`kinds`), the pure planner (`planner`), processing one
recorded event (`processing`), a worker's tries at it, bounded by EVENT_MAX_TRIES whether they
raise or kill the worker (`tries`), cancellation on delete (`deletion`) and the guest notices
that carry no credential (`notices`).

May import: delivery (to plan and send what it decided), messages, ledger, observability,
context (what a domain call works with), and the foundations (settings, errors, ports). What
follows an event is returned (`Outcome.next`), never called back.
"""
