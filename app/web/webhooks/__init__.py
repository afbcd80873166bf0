"""The webhook endpoints: Seam's (Svix-signed events), Twilio's status callbacks and SendGrid's
Event Webhook. Each verifies its signature on the raw bytes, reads the body within one cap
(`body`), and hands on: a Seam event to intake, a provider report to app.delivery.provider_status.
"""
