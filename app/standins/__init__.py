"""Local stand-ins for the Seam, Twilio and SendGrid APIs, speaking their real wire formats.

Used by the tests, the benchmark and `keycourier demo`: reached through the official SDKs with
SEAM_ENDPOINT, TWILIO_BASE_URL and SENDGRID_BASE_URL.

May import: only the foundations (settings, errors, ports); it uses errors. Nothing else of app:
a stand-in knows only the wire format it imitates.
"""
