"""Numbers and units in each language (``convlens.render.formats``): where ``en`` and ``ko`` differ and where they
agree (issue 24 §5: the ``ko`` page uses Korean number and unit conventions where they differ)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from convlens.render.formats import count, date, number, percent, quantity, size


@pytest.mark.parametrize(
    ("value", "en", "ko"),
    [(0.9124, "91.2 %", "91.2%"), (0.5, "50.0 %", "50.0%"), (1.0, "100.0 %", "100.0%"), (0.0, "0.0 %", "0.0%"),
     (np.float32(0.455), "45.5 %", "45.5%"), (None, "–", "–"), (float("nan"), "–", "–")],
)  # fmt: skip
def test_a_percentage_is_spaced_in_english_and_not_in_korean(value, en, ko):
    assert percent(value, "en") == en and percent(value) == en  # English: the page's convention so far
    assert percent(value, "ko") == ko


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.8885, "88.9 %"), (8885 / 10000, "88.9 %"), (np.float32(0.8885), "88.9 %"), (np.float64(0.0005), "0.1 %"),
     (0.9125, "91.3 %"), (0.88849, "88.8 %"), (0.99995, "100.0 %")],
)  # fmt: skip
def test_a_percentage_rounds_half_up_from_the_value_as_written(value, shown):
    """8,885 of 10,000 is 88.85 %: shown 88.9 %, not 88.8 % (the float 100 × 0.8885 is 88.849999…)."""
    assert percent(value) == shown


def test_a_percentage_keeps_the_digits_asked_for():
    assert percent(0.91254, "ko", digits=2) == "91.25%" and percent(0.91254, "en", digits=2) == "91.25 %"


@pytest.mark.parametrize(
    ("value", "noun", "counter", "en", "ko"),
    [(32, "filters", "개", "32 filters", "filters 32개"), (10000, "images", "장", "10,000 images", "images 10,000장"),
     (np.int64(64), "channels", "개", "64 channels", "channels 64개")],
)  # fmt: skip
def test_a_count_puts_the_noun_after_in_english_and_before_with_its_counter_in_korean(value, noun, counter, en, ko):
    assert count(value, noun, "en") == en
    assert count(value, noun, "ko", counter) == ko
    assert count(32, "필터", "ko") == "필터 32개"  # 개 unless told


def test_what_both_languages_write_alike():
    """The decimal point, thousands separators, n × m sizes and a space before a unit are the same in both."""
    assert number(10000.0) == "10,000" and number(333526) == "333,526" and number(0.0143835) == "0.01438"
    assert size("3x3x1x32") == "3×3×1×32" and size((28, 28)) == "28×28" and size("") == ""
    assert quantity(0.412, "MB") == "0.41 MB" and quantity(23, "px", digits=0) == "23 px"
    assert quantity(59123.4, "KB", digits=0) == "59,123 KB"


def test_a_date_reads_day_month_year_in_english_and_year_month_day_in_korean():
    day = dt.date(2026, 12, 5)
    assert date(day, "en") == "5 December 2026"
    assert date(day, "ko") == "2026년 12월 5일"
    assert date(dt.date(2027, 1, 31), "ko") == "2027년 1월 31일"
