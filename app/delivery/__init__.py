"""One delivery's life: compose it, send it through a port, record the attempt, retry, fall back.

Owns building a delivery to plan (`planned`: the one maker of its ledger row), sending (`send`),
composing a message from Seam's state (`compose`), the delivery window (`window`, pure;
`scheduling`, applied), what a provider's status report means (`provider_status`,
`undelivered`), the fallback to the next channel or the front desk (`fallback`, in the hotel's
channel order: `channels`), the front desk's resend and card encoding (`resend`, `encoding`),
the retry policy, and the keyed fingerprints and hashes that let the ledger compare credentials
and find guests without keeping either (`credentials`, `destinations`).

May import: messages, ledger, observability, context (what a domain call works with), and the
foundations (settings, errors, ports). It returns what follows a send (`ports.Queued`) and
knows nothing of the queue or of events.
"""
