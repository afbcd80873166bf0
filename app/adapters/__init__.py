"""The only code that talks to Seam, Twilio and SendGrid: one adapter per SDK.

Each adapter implements a port of app.ports, speaks only its plain types, and translates its
SDK's errors into app.errors (transient or permanent). What Seam answers is input: `seam_input`
cleans every id, name, phone number, email address and credential and fits it to the ledger.
The dry-run senders stand in for a channel with no credentials; `timed` wraps the real adapters
in the provider latency metric; `checks` asks each provider whether keycourier's credentials
work (doctor).

May import: settings, errors, ports, observability. Nothing past this package sees an SDK object.
"""
