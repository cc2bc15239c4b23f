"""Amounts of the site's currency as exact integers.

Prices are micro-units (10⁻⁶): per million tokens, or per call. A call's cost is nano-units
(10⁻⁹): tokens × micro-units per million tokens is pico-units, rounded half up to nano-units once
per call. Amounts travel through the API as decimal strings ("2.5"), never as floats.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

MICRO = 1_000_000
NANO = 1_000_000_000
MAX_PRICE_MICRO = 10**15  # a billion currency units per million tokens: past any real price
MAX_AMOUNT = Decimal(10**12)  # no amount here is ever more (exact arithmetic stays in range)


def decimal_of(value: object) -> Decimal:
    """A non-negative decimal amount from a string, an integer or a float (read as printed)."""
    if isinstance(value, bool):
        raise ValueError("an amount must be a number")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("an amount must be a decimal number such as 2.5") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("an amount must be a finite number, zero or more")
    if amount > MAX_AMOUNT:
        raise ValueError("the amount is too large")
    return amount


def to_micro(value: object) -> int:
    """Micro-units of `value` (at most six decimal places)."""
    amount = decimal_of(value) * MICRO
    if amount != amount.to_integral_value():
        raise ValueError("an amount may have at most six decimal places")
    micro = int(amount)
    if micro > MAX_PRICE_MICRO:
        raise ValueError("the amount is too large")
    return micro


def to_nano(value: object) -> int:
    """Nano-units of `value`, rounded half up past the ninth decimal place."""
    amount = (decimal_of(value) * NANO).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(amount)


def _text(units: int, scale: int) -> str:
    text = format(Decimal(units) / scale, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def micro_text(micro: int) -> str:
    """2500000 → "2.5"."""
    return _text(micro, MICRO)


def nano_text(nano: int) -> str:
    """123456 → "0.000123456"."""
    return _text(nano, NANO)


def cost_text(nano: object) -> object:
    """A stored cost (nano-units, or None for unknown) as the API shows it."""
    return nano_text(nano) if isinstance(nano, int) and not isinstance(nano, bool) else nano


# A cost the API shows: a decimal string of the currency; null when it is unknown (no price).
CostText = Annotated[str | None, BeforeValidator(cost_text)]


def _nano_amount(value: object) -> int:
    nano = to_nano(value)
    if nano > MAX_PRICE_MICRO * 1000:
        raise ValueError("the amount is too large")
    return nano


# A budget or a balance sent to the API ("20"), read as nano-units.
NanoAmount = Annotated[
    int,
    BeforeValidator(_nano_amount),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,9})?$",
            "description": "A decimal amount of the site's currency; a number is accepted too",
            "examples": ["20"],
        }
    ),
]


# An amount sent to the API: "2.5" (or 2.5), read as micro-units.
MicroAmount = Annotated[
    int,
    BeforeValidator(to_micro),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,6})?$",
            "description": "A decimal amount of the site's currency (up to six decimal places); "
            "a number is accepted too",
            "examples": ["2.5"],
        }
    ),
]
