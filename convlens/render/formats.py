"""Numbers and units as a reader of each language writes them: the one place the report's page (and any figure that
prints a number) formats a count, a percentage, a size, a quantity with its unit or a date in ``report.language``.

Where ``en`` and ``ko`` agree they share one rule: the decimal point, the thousands separators (``10,000`` in both),
``n × m`` sizes (``3×3``), and a space between a number and its unit (``0.41 MB``, ``23 px``, as Korean technical
writing has it too). Where they differ:

- a percentage: ``91.2 %`` (the page's English so far) and ``91.2%`` (Korean writing never spaces the sign);
- a count: ``32 filters`` (the noun, already plural, after the number) and ``필터 32개`` (the noun, then the number
  with its counter: 개 for things, 장 for sheets such as images);
- a date: ``5 December 2026`` and ``2026년 12월 5일``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
from collections.abc import Sequence
from typing import Any

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip


def number(value: Any) -> str:
    """A statistic for a caption or a table cell, the same in every language: 4 significant digits, integers in full
    with thousands separators, text as it is, ``–`` for none or NaN."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "–"
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, str):
        try:
            return number(float(value))
        except ValueError:
            return value
    return "–" if value is None else str(value)


def percent(value: float | None, language: str = "en", digits: int = 1) -> str:
    """A fraction as a percentage in ``language`` (``0.912`` → ``91.2 %`` / ``91.2%``), rounded half up from the
    value as written (``0.8885``, 8,885 of 10,000, → ``88.9 %``; the float 88.85 would round down); ``None`` (no image
    of a class, so no accuracy) and NaN as a dash."""
    if value is None or not math.isfinite(value):
        return "–"
    exact = decimal.Decimal(str(value)).scaleb(2)  # str: the shortest digits that read back as the value
    shown = f"{exact.quantize(decimal.Decimal(1).scaleb(-digits), rounding=decimal.ROUND_HALF_UP)}"
    return f"{shown}%" if language == "ko" else f"{shown} %"


def count(value: int, noun: str, language: str = "en", counter: str = "개") -> str:
    """A count of things: ``32 filters`` (``noun`` already plural) or ``필터 32개`` (``counter``: 개, or 장 for
    images)."""
    return f"{noun} {number(value)}{counter}" if language == "ko" else f"{number(value)} {noun}"


def size(dims: Sequence[Any] | str) -> str:
    """A size or kernel shape, the same in every language: ``(3, 3)`` or ``"3x3x1x32"`` → ``3×3`` / ``3×3×1×32``."""
    parts = dims.split("x") if isinstance(dims, str) else [str(d) for d in dims]
    return "×".join(p.strip() for p in parts)


def quantity(value: float, unit: str, digits: int = 2) -> str:
    """A measured amount with its unit, the same in every language: a space between them (``0.41 MB``, ``23 px``)."""
    return f"{value:,.{digits}f} {unit}"


def date(day: dt.date, language: str = "en") -> str:
    """``5 December 2026`` or ``2026년 12월 5일``."""
    if language == "ko":
        return f"{day.year}년 {day.month}월 {day.day}일"
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
