"""Getting work into the queue, and keeping it there until it is done.

Owns the group commit of incoming webhooks (`ingest`, `ingest_async`), the enqueuers that hand
ids to the broker (`queue`: only ids cross it), catching up from Seam's events list
(`reconcile`), and the sweeper that re-enqueues from the ledger whatever is unfinished.

May import: events.kinds (which event types to take in, and which are acted on), ledger,
observability, and the foundations (settings, errors, ports). It knows nothing else of what an
event means (events), nor how a message is sent (delivery).
"""
