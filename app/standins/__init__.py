"""Local stand-ins for the Seam, Twilio and SendGrid APIs, speaking their real wire formats."""
