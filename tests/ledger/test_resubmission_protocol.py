"""The resubmission protocol (ocrflow.submitting.resubmit_recorded) over any run of sends and
crashes, on a real SQLite ledger: at most one new job per failed job ever reaches the service."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ocrflow.errors import ApiError, ResubmissionInFlightError, TransportError
from ocrflow.ledger import JobState, Ledger
from ocrflow.models import RecognizeRegionsSettings, Region
from ocrflow.submitting import resubmit_recorded

JOB = "aaaaaaaa-0000-4000-8000-000000000001"
REGIONS = [
    {"rect": {"topLeftX": 1, "topLeftY": 2, "bottomRightX": 30, "bottomRightY": 40}, "order": 0}
]

# What one run's send meets: the service makes the job and answers; refuses it (an error
# answer: no job made); makes it but the answer is lost; or the run dies before it arrives.
SENDS = st.lists(st.sampled_from(["ok", "refused", "lost", "died"]), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(sends=SENDS)
def test_a_failed_job_reaches_the_service_again_at_most_once(sends: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_runs(Path(folder), sends))


async def _runs(folder: Path, sends: list[str]) -> None:
    ledger = await Ledger.open(f"sqlite+aiosqlite:///{folder / 'ledger.db'}")
    made: list[str] = []  # the jobs the service created from the resubmissions
    attempts: list[str] = []  # what each send that was made met
    try:
        intent = await ledger.begin_submission(
            b"image bytes", source="card.png", regions=REGIONS, settings={}
        )
        await ledger.record_submitted(intent, JOB, submitted_at=ledger.clock.now())
        for number, outcome in enumerate(sends, 1):  # each a run of its own, one after another
            record = await ledger.get_job(JOB)
            assert record is not None
            if record.state.is_final:
                break  # resubmitted: a sweep leaves it

            async def send(
                image: bytes, regions: list[Region], options: RecognizeRegionsSettings
            ) -> str:
                attempts.append(outcome)  # noqa: B023 - called within this iteration only
                if outcome == "refused":  # noqa: B023
                    raise ApiError("400: bad request", status_code=400)
                if outcome == "died":  # noqa: B023
                    raise asyncio.CancelledError  # the run stops before the service answers
                made.append(f"bbbbbbbb-0000-4000-8000-{number:012d}")  # noqa: B023
                if outcome == "lost":  # noqa: B023
                    raise TransportError("read timeout: the answer never came")
                return made[-1]

            expected = (ApiError, TransportError, asyncio.CancelledError, ResubmissionInFlightError)
            with contextlib.suppress(*expected):  # the run's end; what the ledger kept counts
                await resubmit_recorded(
                    ledger, send, JOB, reason="Error: engine hiccup", fence=None, polls=1
                )
        record = await ledger.get_job(JOB)
    finally:
        await ledger.close()

    assert record is not None
    assert len(made) <= 1, "a second job for the same failed job reached the service"
    first_not_refused = next((a for a in attempts if a != "refused"), None)
    # A send is tried again only after the service refused the one before (it made no job).
    assert all(a == "refused" for a in attempts[:-1])
    if first_not_refused == "ok":
        assert record.state is JobState.RESUBMITTED
        assert record.replaced_by == made[0]
    elif first_not_refused in ("lost", "died"):  # it may have arrived: the mark stays
        assert record.resubmission_interrupted
    else:
        assert record.state is JobState.SUBMITTED
        assert not record.resubmission_interrupted
