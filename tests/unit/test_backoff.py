"""Transient-retry delays and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ocrflow.backoff import full_jitter_delay, parse_retry_after


def test_full_jitter_grows_then_caps() -> None:
    ceilings = [full_jitter_delay(n, base_s=0.5, cap_s=4.0, rand=1.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_full_jitter_spans_zero_to_ceiling() -> None:
    assert full_jitter_delay(3, base_s=1.0, cap_s=30.0, rand=0.0) == 0.0
    assert full_jitter_delay(3, base_s=1.0, cap_s=30.0, rand=0.25) == 1.0


def test_full_jitter_survives_huge_attempt_numbers() -> None:
    assert full_jitter_delay(10_000, base_s=1.0, cap_s=30.0, rand=0.5) == 15.0


def test_full_jitter_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="1-based"):
        full_jitter_delay(0, base_s=1.0, cap_s=2.0, rand=0.5)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_delta_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now=now) == 0.0
