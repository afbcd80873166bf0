"""Celery side of keycourier: the app and thin tasks. All logic lives in `app`."""
