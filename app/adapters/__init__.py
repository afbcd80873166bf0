"""The only code that talks to Seam, Twilio and SendGrid: one adapter per SDK.

Each adapter (`seam_api`, `twilio_sms`, `sendgrid_email`; `twilio_whatsapp` on twilio_sms's
shared client) implements a port of app.ports, speaks only its plain types, and translates its
SDK's errors into app.errors (transient or permanent).
Each also holds the checks `keycourier doctor` makes with its SDK (is the key accepted?), so an
SDK is imported in one module only. What Seam answers is input: `seam_input` cleans every id,
name, phone number, email address and credential and fits it to the ledger. The dry-run senders
stand in for a channel with no credentials; `timed` wraps the real adapters in the provider
latency metric.

May import: observability, and the foundations (settings, errors, ports). Nothing past this
package sees an SDK object.
"""
