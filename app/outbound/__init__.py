"""Status webhooks to the hotel's PMS: what each says, signed the Standard Webhooks way, sent
from the ledger's outbox with retries.

The ledger records each webhook owed in the same transaction as the state change it is about
(app/ledger/outbox.py). Beat's relay (`relay`) hands those due to the workers by id; a worker's
task calls `send.send_status_webhook`: claim it (a lease), build its payload (`payloads`: ids,
statuses, times and the masked recipient, never a PIN or an Instant Key URL), sign it with
STATUS_WEBHOOK_SECRET through the `svix` library (webhook-id, webhook-timestamp,
webhook-signature), POST it to STATUS_WEBHOOK_URL, and record the try: a 2xx delivers it,
anything else is tried again with exponential backoff, up to STATUS_WEBHOOK_MAX_ATTEMPTS, then
recorded as failed for good.

May import: ledger, observability, and the foundations (settings, errors, ports).
"""
