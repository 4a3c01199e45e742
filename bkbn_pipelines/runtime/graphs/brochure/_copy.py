"""Copy: headline, subtitle, body and a facts table from the listing's facts.

Facts are cleaned first (:func:`clean_facts`): empty, ``None`` and unparseable values are
dropped, so the templates only ever see facts that exist and a missing fact leaves its
words out instead of printing "None".  The templates are jinja2 strings below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2

__all__ = ["clean_facts", "format_price", "write_copy"]

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
#: How each of the contract's styles reads in a sentence ("This warm Scandinavian home")
#: and, first letter raised, in a heading or the facts table.
_STYLE_WORDS = {
    "scandi-warm": "warm Scandinavian",
    "modern-neutral": "modern neutral",
    "mid-century": "mid-century modern",
    "coastal": "coastal",
    "industrial": "industrial",
    "japandi": "Japandi",
}
#: Room of the storyboard -> (one of it, several of it) in "The photographs show ...".
_ROOM_WORDS = {
    "exterior": ("the exterior", "the exterior"),
    "living": ("the living room", "the living rooms"),
    "kitchen": ("the kitchen", "the kitchen"),
    "dining": ("the dining room", "the dining room"),
    "bedroom": ("the bedroom", "the bedrooms"),
    "bathroom": ("the bathroom", "the bathrooms"),
    "office": ("the study", "the study"),
}
#: Rooms a listing may have several of, and the fact that counts them.
_COUNTED_ROOMS = {"bedroom": ("beds", "bedroom"), "bathroom": ("baths", "bathroom")}
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}

_ENV = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True)

HEADLINE = _ENV.from_string(
    "{% if style %}{{ style | capitalize_first }} {% endif %}"
    "{% if beds %}{{ beds }}-bedroom {% endif %}"
    "{{ kind }}"
    "{% if city %} in {{ city }}{% endif %}"
)
SUBTITLE = _ENV.from_string(
    "{{ [address, price_text] | select | join(' · ') }}"
)  # fmt: skip
BODY = _ENV.from_string(
    "{% set parts = [] %}"
    "{% if beds %}{% set _ = parts.append(beds ~ (' bedroom' if beds == 1 else ' bedrooms')) %}"
    "{% endif %}"
    "{% if baths %}{% set _ = parts.append(baths ~ (' bathroom' if baths == 1 else ' bathrooms'))"
    " %}{% endif %}"
    "{% if area_text %}{% set _ = parts.append(area_text ~ ' of living space') %}{% endif %}"
    "{% if parts %}This {{ style ~ ' ' if style else '' }}{{ kind }}"
    "{% if city %} in {{ city }}{% endif %} offers {{ parts | join_and }}.{% endif %}"
    "{% if description %} {{ description }}{% endif %}"
    "{% if rooms %} The photographs show {{ rooms | join_and }}.{% endif %}"
    "{% if price_text %} Offered at {{ price_text }}.{% endif %}"
)


def _join_and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_ENV.filters["join_and"] = _join_and


def _capitalize_first(text: str) -> str:
    return text[:1].upper() + text[1:]


_ENV.filters["capitalize_first"] = _capitalize_first
for _template in (HEADLINE, SUBTITLE, BODY):
    _template.environment.filters.update(_ENV.filters)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value).replace(",", "").replace("\u202f", "").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | float | None:
    number = _number(value)
    if number is None or number <= 0:
        return None
    return int(number) if number == int(number) else number


def _area_text(area_m2: float, *, imperial: bool = False) -> str:
    """``78.5 m²``, ``142 m²``: one decimal when the area is not whole, none when it is.

    Imperial areas are whole square feet (``845 sq ft``): a tenth of a square foot is
    noise, and listings quote square feet whole.
    """
    if imperial:
        return f"{area_m2 * 10.7639:,.0f} sq ft"
    tenths = round(area_m2, 1)
    digits = f"{tenths:,.0f}" if tenths == int(tenths) else f"{tenths:,.1f}"
    return f"{digits} m²"


def _room_phrases(rooms: Sequence[str], facts: Mapping[str, Any]) -> list[str]:
    """Each room shown once, in storyboard order: "the bedroom", "a bedroom" (one photo
    of a home with several), "the bedrooms", "two bedrooms" (two of four)."""
    counts: dict[str, int] = {}
    for room in rooms:
        if room in _ROOM_WORDS:
            counts[room] = counts.get(room, 0) + 1
    phrases = []
    for room, shown in counts.items():
        one, several = _ROOM_WORDS[room]
        if room in _COUNTED_ROOMS:
            fact, noun = _COUNTED_ROOMS[room]
            have = facts.get(fact)
            if shown == 1:
                phrases.append(f"a {noun}" if have is not None and have > 1 else one)
            elif have is None or shown >= have:
                phrases.append(one if have is not None and have <= 1 else several)
            else:
                phrases.append(f"{_NUMBER_WORDS.get(shown, str(shown))} {noun}s")
        else:
            phrases.append(one if shown == 1 else several)
    return phrases


def format_price(value: Any, currency: str | None) -> str | None:
    """``€450,000``, ``$1,250,000``, ``CHF 980,000``; ``None`` when there is no price."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return str(value).strip() or None
    if not amount.is_finite() or amount <= 0:
        return None
    digits = f"{amount:,.0f}" if amount == amount.to_integral() else f"{amount:,.2f}"
    code = (currency or "").upper().strip()
    if code in _CURRENCY_SYMBOLS:
        return f"{_CURRENCY_SYMBOLS[code]}{digits}"
    return f"{code} {digits}" if code else digits


def clean_facts(listing: Mapping[str, Any]) -> dict[str, Any]:
    """The facts the copy may use, each present and well-formed, or absent."""

    def text(key: str) -> str | None:
        value = listing.get(key)
        if value is None or isinstance(value, bool):
            return None
        value = str(value).strip()
        return value or None

    area = _number(listing.get("area_m2"))
    area = area if area is not None and area > 0 else None
    style_key = text("style")
    units = text("units") or "metric"
    area_text = None
    if area is not None:
        area_text = _area_text(area, imperial=units == "imperial")
    kind = (text("property_type") or "home").lower()
    return {
        "address": text("address"),
        "city": text("city"),
        "price_text": format_price(listing.get("price"), text("currency")),
        "beds": _count(listing.get("beds")),
        "baths": _count(listing.get("baths")),
        "area_m2": area,
        "area_text": area_text,
        "style": _STYLE_WORDS.get(style_key or "", style_key),
        "style_key": style_key,
        "kind": kind,
        "description": text("description"),
        "listing_id": text("listing_id") or text("id"),
    }


def write_copy(listing: Mapping[str, Any], rooms: Sequence[str] = ()) -> dict[str, Any]:
    """Headline, subtitle, body and facts rows from the listing and the storyboard's rooms."""
    facts = clean_facts(listing)
    context = {**facts, "rooms": _room_phrases(rooms, facts)}
    rows = [
        ("Price", facts["price_text"]),
        ("Address", facts["address"]),
        ("City", facts["city"]),
        ("Bedrooms", facts["beds"]),
        ("Bathrooms", facts["baths"]),
        ("Living area", facts["area_text"]),
        ("Style", _capitalize_first(facts["style"]) if facts["style"] else None),
    ]
    return {
        "headline": _capitalize_first(" ".join(HEADLINE.render(context).split())),
        "subtitle": SUBTITLE.render(context).strip(),
        "body": " ".join(BODY.render(context).split()),
        "facts": [{"label": k, "value": str(v)} for k, v in rows if v is not None],
        "address": facts["address"],
        "price": facts["price_text"],
        "listing_id": facts["listing_id"],
    }
