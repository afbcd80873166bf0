"""The web process: the HTTP edge.

Owns `create_app` (routes, lifespan, health and readiness, metrics), the webhook endpoints for
Seam (Svix), Twilio and SendGrid (verify the signature, read the body within its cap, hand the
event to intake or the report to delivery), the event loop's lag watch, and the HTTP server's own
limits (`limits`: head size, read timeouts, keep-alive, connections).

May import: intake, ledger, delivery (provider reports, off the loop), console, messages,
observability, adapters (built lazily), settings, errors, ports. Nothing imports web but ops.
"""
