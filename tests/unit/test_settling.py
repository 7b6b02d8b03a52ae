"""One job's state machine (ocrflow.settling): examples, then properties over any answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocrflow.completeness import RefetchPolicy
from ocrflow.errors import JobFailedError, JobNotFoundError, JobNotReadyError
from ocrflow.jobstate import JobState
from ocrflow.lifecycle import JobFacts
from ocrflow.settling import Action, Done, End, Ending, Limits, Poll, Resubmit, Settling, Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JOB = "aaaaaaaa-0000-4000-8000-000000000001"
LIMITS = Limits(max_resubmissions=2, poll_deadline_s=600.0, refetch=RefetchPolicy(2, 1.0, 4.0))


def facts(*, known: bool = True, image: bool = True, age_h: float = 0.1) -> JobFacts:
    return JobFacts(known=known, can_resubmit=image, submitted_at=NOW - timedelta(hours=age_h))


def machine(job_facts: JobFacts | None = None, limits: Limits = LIMITS) -> Settling:
    return Settling(JOB, job_facts or facts(), limits, lambda: NOW)


def error(job_id: str, *messages: str) -> JobFailedError:
    return JobFailedError("Error", job_id=job_id, messages=list(messages))


def gone(job_id: str) -> JobNotFoundError:
    return JobNotFoundError("NotExist", job_id=job_id)


def test_a_job_answered_and_stored_is_done() -> None:
    settling = machine()
    assert settling.start() == Poll(JOB, first=True)
    assert settling.answered() == Store(JOB, original=True)
    assert settling.stored() == Done(JOB)


def test_a_failed_job_is_resubmitted_and_its_new_job_polled() -> None:
    settling = machine()
    settling.start()
    assert settling.failed(error(JOB, "engine hiccup")) == Resubmit(JOB, "Error")
    assert settling.resubmitted("new-1") == Poll("new-1")
    assert settling.answered() == Store("new-1", original=False)
    assert settling.stored() == Done("new-1")
    assert settling.resubmissions == 1


def test_a_job_expired_before_the_first_poll_is_resubmitted_and_says_so() -> None:
    settling = machine(facts(age_h=25))
    action = settling.start(gone(JOB))
    assert isinstance(action, Resubmit)
    assert "expired" in action.reason
    assert settling.expired


def test_an_unknown_job_that_fails_ends_failed_with_the_reason() -> None:
    settling = machine(facts(known=False))
    action = settling.start(gone(JOB))
    assert isinstance(action, End)
    assert (action.ending, action.state, action.last_status) == (
        Ending.FAILED,
        JobState.FAILED,
        "NotExist",
    )
    assert "does not know this job" in action.reason


def test_an_answer_incomplete_every_time_ends_incomplete_after_the_refetches() -> None:
    settling = machine()
    settling.start()
    settling.answered()
    assert settling.stored(incomplete="region 2 missing") == Poll(JOB, wait_s=1.0)
    settling.answered()
    assert settling.stored(incomplete="region 2 missing") == Poll(JOB, wait_s=2.0)
    settling.answered()
    end = settling.stored(incomplete="region 2 missing")
    assert isinstance(end, End)
    assert end.state is JobState.INCOMPLETE
    assert end.reason == "region 2 missing (fetched 3 times)"


def test_still_processing_at_the_deadline_ends_timed_out() -> None:
    settling = machine()
    settling.start()
    end = settling.not_ready_at_deadline("Processing")
    assert isinstance(end, End)
    assert end.state is JobState.TIMED_OUT
    assert "600 s after its submission" in end.reason


def test_nothing_is_taken_once_settled_nor_while_a_resubmission_is_out() -> None:
    settling = machine()
    settling.start()
    settling.failed(error(JOB, "hiccup"))
    with pytest.raises(RuntimeError, match="being resubmitted"):
        settling.answered()
    settling.resubmitted("new-1")
    settling.answered()
    settling.stored()
    with pytest.raises(RuntimeError, match="settled already"):
        settling.stored()
    with pytest.raises(RuntimeError, match="no resubmission"):
        settling.resubmitted("new-2")


# Properties: whatever the service answers, in any order.
POLL_OUTCOMES = st.sampled_from(
    ["complete", "incomplete", "never-ready", "error", "permanent-error", "not-exist"]
)


@settings(max_examples=400, deadline=None)
@given(
    outcomes=st.lists(POLL_OUTCOMES, min_size=1, max_size=40),
    known=st.booleans(),
    image=st.booleans(),
    age_h=st.floats(min_value=0, max_value=48),
    max_resubmissions=st.integers(min_value=0, max_value=3),
    max_refetches=st.integers(min_value=0, max_value=3),
)
def test_every_job_ends_within_its_bounds_whatever_the_answers(
    outcomes: list[str],
    known: bool,
    image: bool,
    age_h: float,
    max_resubmissions: int,
    max_refetches: int,
) -> None:
    limits = Limits(max_resubmissions, 600.0, RefetchPolicy(max_refetches, 1.0, 8.0))
    settling = machine(facts(known=known, image=image, age_h=age_h), limits)
    script = iter(outcomes)
    action: Action = settling.start()
    steps, resubmits, stores = 0, 0, []
    drawn = "never-ready"
    bound = 3 * (max_resubmissions + 1) * (max_refetches + 2)  # poll + store per fetch
    while not isinstance(action, (End, Done)):
        steps += 1
        assert steps <= bound, "a job's settling must end (the deadline is always reached)"
        if isinstance(action, Poll):
            drawn = next(script, "never-ready")  # a service that never finishes, past the script
            action = _answer(settling, action.job_id, drawn)
        elif isinstance(action, Store):
            stores.append((action.job_id, drawn))
            complete = drawn == "complete"
            action = settling.stored(incomplete=None if complete else "region 1 missing")
        else:
            assert isinstance(action, Resubmit)
            assert settling.resubmitting  # one resubmission out at a time, answered first
            resubmits += 1
            action = settling.resubmitted(f"new-{resubmits}")

    assert resubmits == settling.resubmissions <= max_resubmissions
    if resubmits:  # only a job the ledger can resend is resubmitted
        assert known
        assert image
    if isinstance(action, Done):
        # Stored only from a complete answer, and of the job being polled: no region lost.
        assert stores[-1] == (action.job_id, "complete")
        assert action.job_id == settling.current
    else:
        assert all(outcome != "complete" for _, outcome in stores)
        if action.ending is Ending.INCOMPLETE:
            assert len(stores) >= max_refetches + 1
        if action.ending is Ending.EXPIRED:
            assert age_h >= 24
            assert action.job_id == JOB
    with pytest.raises(RuntimeError):  # a settled job takes no more events: never written again
        settling.answered()


def _answer(settling: Settling, job_id: str, outcome: str) -> Action:
    if outcome in ("complete", "incomplete"):
        return settling.answered()
    if outcome == "never-ready":
        return settling.not_ready_at_deadline("Processing")
    if outcome == "error":
        return settling.failed(error(job_id, "engine hiccup"))
    if outcome == "permanent-error":
        return settling.failed(error(job_id, "the region lies outside the image"))
    return settling.failed(gone(job_id))


def test_a_first_look_that_found_the_job_not_ready_polls_it_first() -> None:
    looked = JobNotReadyError("Pending", job_id=JOB, status="Pending")
    assert machine().start(looked) == Poll(JOB, first=True)
