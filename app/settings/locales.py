"""Language codes: what DEFAULT_LOCALE, properties.toml and the templates' folders may name."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError


def normalize_locale(text: str) -> str:
    """`pt-BR`, `pt_br` and `pt_BR` alike become Babel's `pt_BR`; raises ValueError if unknown."""
    try:
        return str(Locale.parse(text.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"{text!r} is not a language code Babel knows (e.g. en, fr, pt_BR)"
        ) from None
