"""What the guest's page says, in each language it is written in (the hotel's, from
properties.toml; English for any other). Placeholders are filled in after autoescaping."""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Your key",
        "title_at": "Your key at {hotel}",
        "ask_sms": "We can send your key again by text message to {destination}.",
        "ask_email": "We can send your key again by email to {destination}.",
        "ask_whatsapp": "We can send your key again by WhatsApp to {destination}.",
        "ask_note": "It goes only there: the number or address the hotel has for you.",
        "button": "Send my key again",
        "sent_title": "On its way",
        "sent_sms": "Your key is on its way by text message to {destination}.",
        "sent_email": "Your key is on its way by email to {destination}.",
        "sent_whatsapp": "Your key is on its way by WhatsApp to {destination}.",
        "sent_note": "It may take a minute. If it does not arrive, please contact the front desk.",
        "limit_title": "Please contact the front desk",
        "limit": "Your key has been sent again as many times as this link allows for your stay.",
        "waiting_title": "Already on its way",
        "waiting": "A message with your key is already on its way: please wait a few minutes.",
        "gone_title": "This key no longer works",
        "gone": "The hotel has cancelled or is changing this key. Please contact the front desk.",
        "nowhere_title": "Please contact the front desk",
        "nowhere": "The hotel has no phone number or email address to send your key to.",
        "busy_title": "Please try again in a few minutes",
        "busy": "Your key cannot be sent right now.",
        "invalid_title": "This link does not work",
        "invalid": "Check that you opened the whole link from your message.",
        "expired_title": "This link has expired",
        "expired": "It worked until the end of your stay. Please contact the front desk.",
        "off_title": "This link no longer works",
        "off": "Please contact the front desk.",
        "throttled_title": "Too many requests",
        "throttled": "Please wait a few minutes and try again.",
    },
    "fr": {
        "title": "Votre clé",
        "title_at": "Votre clé à {hotel}",
        "ask_sms": "Nous pouvons vous renvoyer votre clé par SMS au {destination}.",
        "ask_email": "Nous pouvons vous renvoyer votre clé par e-mail à {destination}.",
        "ask_whatsapp": "Nous pouvons vous renvoyer votre clé par WhatsApp au {destination}.",
        "ask_note": "Elle n'est envoyée que là : au numéro ou à l'adresse que l'hôtel a pour vous.",
        "button": "Renvoyer ma clé",
        "sent_title": "C'est envoyé",
        "sent_sms": "Votre clé vous est envoyée par SMS au {destination}.",
        "sent_email": "Votre clé vous est envoyée par e-mail à {destination}.",
        "sent_whatsapp": "Votre clé vous est envoyée par WhatsApp au {destination}.",
        "sent_note": "Cela peut prendre une minute. Si elle n'arrive pas, contactez la réception.",
        "limit_title": "Merci de contacter la réception",
        "limit": "Votre clé a été renvoyée autant de fois que ce lien le permet pour votre séjour.",
        "waiting_title": "Déjà en route",
        "waiting": "Un message avec votre clé est déjà en route : patientez quelques minutes.",
        "gone_title": "Cette clé ne fonctionne plus",
        "gone": "L'hôtel a annulé ou modifie cette clé. Merci de contacter la réception.",
        "nowhere_title": "Merci de contacter la réception",
        "nowhere": "L'hôtel n'a ni numéro ni adresse e-mail où envoyer votre clé.",
        "busy_title": "Réessayez dans quelques minutes",
        "busy": "Votre clé ne peut pas être envoyée pour le moment.",
        "invalid_title": "Ce lien ne fonctionne pas",
        "invalid": "Vérifiez que vous avez ouvert le lien entier de votre message.",
        "expired_title": "Ce lien a expiré",
        "expired": "Il fonctionnait jusqu'à la fin de votre séjour. Contactez la réception.",
        "off_title": "Ce lien ne fonctionne plus",
        "off": "Merci de contacter la réception.",
        "throttled_title": "Trop de demandes",
        "throttled": "Patientez quelques minutes, puis réessayez.",
    },
}


def words_for(locale: str | None) -> tuple[str, dict[str, str]]:
    """(language, its words) for a guest of `locale` (fr_CA reads fr); English for others."""
    language = (locale or "en").replace("-", "_").split("_")[0].lower()
    return (language, WORDS[language]) if language in WORDS else ("en", WORDS["en"])
