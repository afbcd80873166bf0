"""How many billable segments an SMS takes, as carriers count them.

A message of GSM-7 characters fits 160 in one segment, 153 in each part of a longer one; the
extension characters (such as € and {) take two. One character outside GSM-7 (an emoji, a
curly quote, á) turns the whole message into UCS-2: 70 in one segment, 67 per part, counted
in UTF-16 units (an emoji takes two).
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    # The first characters that forced UCS-2, to show the editor what to replace.
    non_gsm: str = ""

    def describe(self) -> str:
        text = f"{self.segments} segment{'s' if self.segments != 1 else ''}, {self.encoding}"
        text += f", {self.units} {'characters' if self.encoding == 'GSM-7' else 'UCS-2 units'}"
        if self.non_gsm:
            text += f" (UCS-2 because of {', '.join(repr(c) for c in self.non_gsm)})"
        return text


def count_segments(text: str) -> Segments:
    outside = [c for c in dict.fromkeys(text) if c not in GSM7_BASIC and c not in GSM7_EXTENSION]
    if outside:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    else:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, part, encoding = 160, 153, "GSM-7"
    segments = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, segments, "".join(outside[:3]))
