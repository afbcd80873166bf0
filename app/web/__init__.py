"""The web process: the HTTP edge.

Owns `create_app` (routes, lifespan, health and readiness, metrics, and where the console and
the guest's link page are mounted), the webhook endpoints for
Seam (Svix), Twilio and SendGrid (verify the signature, read the body within its cap, hand the
event to intake or the report to delivery), the event loop's lag watch, and the HTTP server's own
limits (`limits`: head size, read timeouts, keep-alive, connections).

May import: intake, events.kinds (which events are acted on), ledger, delivery (provider
reports, off the loop), console, messages, observability, adapters (the reference SendGrid's
events echo back), context (the console builds one on first use), guest (the guest's resend
link page), and the foundations (settings, errors, ports). Nothing imports web but ops.
"""
