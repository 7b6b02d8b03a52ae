"""The job's lifecycle decisions: resubmit or give up, expiry, and the deadline from submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrflow.ledger import JobState
from ocrflow.lifecycle import (
    Decision,
    JobFacts,
    after_failure,
    is_permanent_error,
    nearing_expiry,
    remaining_poll_s,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KNOWN = JobFacts(known=True, can_resubmit=True, submitted_at=NOW - timedelta(minutes=5))


def decide(
    status: str = "Error", messages: list[str] | None = None, **overrides: object
) -> Decision:
    arguments: dict[str, object] = {
        "status": status,
        "messages": messages or [],
        "detail": f"job ended {status}",
        "facts": KNOWN,
        "resubmissions": 0,
        "limit": 2,
        "now": NOW,
    }
    return after_failure(**{**arguments, **overrides})  # type: ignore[arg-type]


def test_a_failure_that_may_pass_is_resubmitted() -> None:
    decision = decide("Error", ["internal error while recognising: TimeoutError"])
    assert decision.resubmit
    assert not decision.expired


@pytest.mark.parametrize(
    "message",
    [
        "region 2 (5000, 0, 5100, 40) lies outside the 800x500 image",
        "the data is not an image the emulator can read",
        "the image could not be decoded: broken PNG file",
        "image format WEBP is not supported",
        "region 0 is empty: (10, 10, 10, 40)",
    ],
)
def test_a_cause_that_cannot_pass_is_not_resubmitted(message: str) -> None:
    decision = decide("Error", [message])
    assert not decision.resubmit
    assert decision.state is JobState.FAILED
    assert "would fail a new job the same way" in decision.reason


def test_a_job_past_the_retention_is_expired_before_it_is_resubmitted() -> None:
    old = JobFacts(known=True, can_resubmit=True, submitted_at=NOW - timedelta(hours=26))
    decision = decide("NotExist", facts=old)
    assert decision.resubmit
    assert decision.expired
    assert decision.reason.startswith("expired: submitted 26.0 h ago")
    spent = decide("NotExist", facts=old, resubmissions=2)
    assert not spent.resubmit
    assert spent.state is JobState.EXPIRED
    assert "resubmitted 2 time(s), the limit is 2" in spent.reason


def test_a_young_job_that_does_not_exist_is_not_expired() -> None:
    decision = decide("NotExist")
    assert decision.resubmit
    assert not decision.expired


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (JobFacts(False, False, None), "the ledger does not know this job"),
        (JobFacts(True, False, NOW), "keeps no original image"),
    ],
)
def test_without_an_image_there_is_no_resubmission(facts: JobFacts, why: str) -> None:
    decision = decide("NotExist", facts=facts)
    assert not decision.resubmit
    assert why in decision.reason


def test_the_deadline_counts_from_submission() -> None:
    assert remaining_poll_s(NOW - timedelta(hours=1), 6 * 3600, NOW) == 5 * 3600
    assert remaining_poll_s(NOW - timedelta(hours=7), 6 * 3600, NOW) == 0.0
    assert remaining_poll_s(None, 600, NOW) == 600


def test_a_sweep_is_warned_of_jobs_near_expiry() -> None:
    assert nearing_expiry(NOW - timedelta(hours=23), NOW)
    assert not nearing_expiry(NOW - timedelta(hours=20), NOW)


@given(
    status=st.sampled_from(["Error", "NotExist"]),
    messages=st.lists(st.text(max_size=40), max_size=3),
    age_h=st.floats(min_value=0, max_value=100),
    resubmissions=st.integers(min_value=0, max_value=5),
    limit=st.integers(min_value=0, max_value=5),
    known=st.booleans(),
    image=st.booleans(),
)
def test_resubmission_stays_within_its_bounds(
    status: str,
    messages: list[str],
    age_h: float,
    resubmissions: int,
    limit: int,
    known: bool,
    image: bool,
) -> None:
    """Property: never a resubmission past the limit, without an image, or for a lasting cause;
    a job past the retention is always told expired."""
    facts = JobFacts(known, known and image, NOW - timedelta(hours=age_h) if known else None)
    decision = decide(status, messages, facts=facts, resubmissions=resubmissions, limit=limit)
    if decision.resubmit:
        assert resubmissions < limit
        assert facts.can_resubmit
        assert not (status == "Error" and is_permanent_error(messages))
    else:
        assert decision.state in (JobState.FAILED, JobState.EXPIRED)
    assert decision.expired == (status == "NotExist" and known and age_h >= 24)
