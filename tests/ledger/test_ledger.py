"""The ledger: jobs, images, results written once, final states that stay final."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ocrflow.adaptive import job_class
from ocrflow.errors import InvalidJobIdError
from ocrflow.ledger import (
    JobResults,
    JobState,
    Ledger,
    NewResult,
    SubmissionState,
    Written,
    image_digest,
)
from tests.unit.fakes import ManualClock

JOB_A = "aaaaaaaa-0000-4000-8000-000000000001"
JOB_B = "bbbbbbbb-0000-4000-8000-000000000002"
JOB_C = "cccccccc-0000-4000-8000-000000000003"
JOB_D = "dddddddd-0000-4000-8000-000000000004"
REGIONS = [
    {
        "rect": {"topLeftX": 1, "topLeftY": 2, "bottomRightX": 30, "bottomRightY": 40},
        "order": 0,
        "name": "surname",
    }
]


def result(index: int, text: str | None = "SMITH", error: str | None = None) -> NewResult:
    return NewResult(
        entry_index=index,
        region=index,
        region_name="surname",
        wire_type="Text",
        kind="text",
        text=text,
        structured={"lines": [{"text": text, "box": [1, 2, 3, 4]}]} if text else None,
        file_path=None,
        error=error,
        warnings=["clipped"] if error is None else [],
    )


async def add(ledger: Ledger, job_id: str, *, replaces: str | None = None) -> None:
    digest = await ledger.save_image(b"\x89PNG image bytes")
    await ledger.record_job(
        job_id,
        image_sha256=digest,
        source="samples/id-card.png",
        regions=REGIONS,
        settings={"language": "English", "resultType": "Text"},
        replaces=replaces,
    )


async def test_jobs_are_recorded_with_their_original(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    await add(ledger, JOB_A)  # recording twice changes nothing
    job = await ledger.get_job(JOB_A.upper())
    assert job is not None
    assert (job.state, job.attempt, job.source, job.regions) == (
        JobState.SUBMITTED,
        1,
        "samples/id-card.png",
        REGIONS,
    )
    assert job.can_resubmit
    assert job.image_sha256 == image_digest(b"\x89PNG image bytes")
    assert await ledger.load_image(job.image_sha256) == b"\x89PNG image bytes"
    assert await ledger.get_job(JOB_B) is None


async def test_a_submitted_job_has_a_learning_class_and_an_id_given_by_hand_none(
    ledger: Ledger,
) -> None:
    await add(ledger, JOB_A)
    await ledger.claim_jobs("fetch", [JOB_B], lease_s=60)  # recorded only to be leased
    submitted, given = await ledger.get_job(JOB_A), await ledger.get_job(JOB_B)
    assert submitted is not None
    assert given is not None
    assert given.given_by_id
    assert given.learning_class is None  # its size and regions are unknown: learn nothing
    image_bytes = len(b"\x89PNG image bytes")
    assert submitted.learning_class == job_class(image_bytes, len(REGIONS))


async def test_unfinished_jobs_are_listed_oldest_first(ledger: Ledger) -> None:
    for job_id in (JOB_B, JOB_A, JOB_C):
        await add(ledger, job_id)
    await ledger.finish(JOB_A, JobState.FAILED, error="gone")
    assert await ledger.unfinished_job_ids() == [JOB_B, JOB_C]
    assert await ledger.unfinished_job_ids(limit=1) == [JOB_B]


async def test_a_sweep_takes_the_jobs_nearest_expiry_first_and_the_expired_last(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.now()
    ages_h = {JOB_A: 0.5, JOB_B: 25.0, JOB_C: 23.0, JOB_D: 1.0}  # B: past the 24 h retention
    for job_id, hours in ages_h.items():
        await ledger.record_job(
            job_id,
            image_sha256=None,
            source=None,
            regions=REGIONS,
            settings={},
            submitted_at=now - timedelta(hours=hours),
        )
    in_order = [JOB_C, JOB_D, JOB_A, JOB_B]
    assert await ledger.unfinished_job_ids() == in_order
    assert await ledger.claim_unfinished("shard-1", lease_s=60, limit=3) == in_order[:3]
    assert await ledger.claim_unfinished("shard-2", lease_s=60) == [JOB_B]


async def test_results_are_written_once(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    assert await ledger.store_results(JOB_A, [result(0), result(1, None, "bad base64")], polls=3)
    assert not await ledger.store_results(JOB_A, [result(0), result(1)], polls=1)
    rows = await ledger.results([JOB_A])
    assert [(r.entry_index, r.text, r.error) for r in rows] == [
        (0, "SMITH", None),
        (1, None, "bad base64"),
    ]
    assert rows[0].structured == {"lines": [{"text": "SMITH", "box": [1, 2, 3, 4]}]}
    assert rows[0].warnings == ["clipped"]
    job = await ledger.get_job(JOB_A)
    assert job is not None
    assert (job.state, job.last_status, job.polls) == (JobState.STORED, "Completed", 3)
    assert job.finished_at is not None


async def test_concurrent_stores_of_one_job_write_it_once(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    written = await asyncio.gather(*(ledger.store_results(JOB_A, [result(0)]) for _ in range(5)))
    assert sorted(written) == [False, False, False, False, True]
    assert await ledger.count_results(JOB_A) == 1


async def test_an_unknown_job_is_added_when_its_results_are_stored(ledger: Ledger) -> None:
    assert await ledger.store_results(JOB_B, [result(0)])
    job = await ledger.get_job(JOB_B)
    assert job is not None
    assert (job.state, job.can_resubmit) == (JobState.STORED, False)


async def test_final_states_stay_final(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    await add(ledger, JOB_B, replaces=JOB_A)
    assert await ledger.finish(JOB_A, JobState.RESUBMITTED, error="NotExist", replaced_by=JOB_B)
    assert not await ledger.finish(JOB_A, JobState.FAILED, error="again")
    old, new = await ledger.get_job(JOB_A), await ledger.get_job(JOB_B)
    assert old is not None
    assert new is not None
    assert (old.state, old.replaced_by, old.last_error) == (JobState.RESUBMITTED, JOB_B, "NotExist")
    assert new.replaces == JOB_A
    with pytest.raises(ValueError, match="final state"):
        await ledger.finish(JOB_B, JobState.SUBMITTED)


async def test_polls_are_noted_on_unfinished_jobs(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    await ledger.note_poll(JOB_A, last_status="Processing", polls=4, error=None)
    job = await ledger.get_job(JOB_A)
    assert job is not None
    assert (job.last_status, job.polls) == ("Processing", 4)


async def test_hostile_ids_never_reach_the_database(ledger: Ledger) -> None:
    with pytest.raises(InvalidJobIdError):
        await ledger.get_job("x' OR '1'='1")
    with pytest.raises(InvalidJobIdError):
        await ledger.store_results("../etc/passwd", [])


async def test_processing_times_come_back_with_size_and_region_count(ledger: Ledger) -> None:
    await ledger.record_job(
        JOB_A, image_sha256=None, source=None, regions=REGIONS, settings={}, image_bytes=1234
    )
    await ledger.store_results(JOB_A, [result(0)], processing_s=2.5)
    await ledger.store_results(JOB_B, [result(0)])  # no estimate: not listed
    assert await ledger.processing_times() == [(1234, 1, 2.5)]


async def test_many_ids_are_read_in_chunks(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    await add(ledger, JOB_B)
    others = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(1200)]
    found = await ledger.jobs([JOB_B, *others, JOB_A, JOB_A])
    assert [job.job_id for job in found] == [JOB_A, JOB_B]


def job_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


async def test_concurrent_claims_never_take_the_same_job(ledger: Ledger) -> None:
    for number in range(300):
        await ledger.record_job(
            job_id(number), image_sha256=None, source=None, regions=REGIONS, settings={}
        )
    for number in range(10):
        await ledger.store_results(job_id(number), [result(0)])
    # On PostgreSQL each sweep has its own engine (its own connections), as separate workers
    # would; SQLite is the one-machine default and shares one writer.
    url = ledger.engine.url.render_as_string(hide_password=False)
    shared = ledger.engine.dialect.name == "sqlite"
    others = [ledger if shared else await Ledger.open(url) for _ in range(4)]
    try:
        claims = await asyncio.gather(
            *(
                other.claim_unfinished(f"sweep-{n}", lease_s=60, limit=100)
                for n, other in enumerate(others)
            )
        )
    finally:
        for other in others:
            if other is not ledger:
                await other.close()
    taken = [job for claim in claims for job in claim]
    assert len(taken) == len(set(taken)) == 290  # each unfinished job once, none stored
    assert set(taken) == {job_id(n) for n in range(10, 300)}
    assert await ledger.claim_unfinished("late", lease_s=60) == []


async def test_a_lease_that_expires_is_taken_over(ledger: Ledger, clock: ManualClock) -> None:
    await add(ledger, JOB_A)
    await add(ledger, JOB_B)
    assert await ledger.claim_unfinished("dead-sweep", lease_s=0.3) == [JOB_A, JOB_B]
    assert await ledger.claim_unfinished("live-sweep", lease_s=60) == []
    clock.advance(0.4)
    assert await ledger.claim_unfinished("live-sweep", lease_s=60) == [JOB_A, JOB_B]
    assert await ledger.renew_claim("dead-sweep", lease_s=60) == 0  # it holds nothing now


async def test_a_renewed_lease_holds_and_a_released_one_is_free(
    ledger: Ledger, clock: ManualClock
) -> None:
    await add(ledger, JOB_A)
    assert await ledger.claim_unfinished("sweep", lease_s=0.3) == [JOB_A]
    assert await ledger.renew_claim("sweep", lease_s=60) == 1
    clock.advance(0.4)
    assert await ledger.claim_unfinished("other", lease_s=60) == []
    assert await ledger.claim_unfinished("sweep", lease_s=60) == [JOB_A]  # its own, again
    await ledger.release_claim("sweep")
    assert await ledger.claim_unfinished("other", lease_s=60) == [JOB_A]


async def test_the_survey_counts_free_jobs_and_names_every_lease(
    ledger: Ledger, clock: ManualClock
) -> None:
    for number in range(5):
        await ledger.record_job(
            job_id(number), image_sha256=None, source=None, regions=REGIONS, settings={}
        )
    assert await ledger.claimable_count() == 5
    assert await ledger.claim_unfinished("run-a@host:1", lease_s=60, limit=2) == [
        job_id(0),
        job_id(1),
    ]
    assert await ledger.claim_unfinished("run-b@host:2", lease_s=0.2, limit=1) == [job_id(2)]
    assert await ledger.claimable_count() == 2
    clock.advance(0.3)
    assert await ledger.claimable_count() == 3  # run-b's lease ran out: its job is free again
    leases = {lease.claim: lease for lease in await ledger.leases()}
    assert {claim: lease.jobs for claim, lease in leases.items()} == {
        "run-a@host:1": 2,
        "run-b@host:2": 1,
    }
    assert not leases["run-a@host:1"].expired(clock.now())
    assert leases["run-b@host:2"].expired(clock.now())
    await ledger.store_results(job_id(0), [result(0)])  # a stored job leaves the lease
    assert {lease.claim: lease.jobs for lease in await ledger.leases()}["run-a@host:1"] == 1


async def test_a_renewal_does_not_wait_for_a_job_being_stored(postgres_ledger: Ledger) -> None:
    # PostgreSQL only: SQLite has one writer and no row locks, a renewal waits its turn.
    ledger = postgres_ledger
    for number in range(3):
        await ledger.record_job(
            job_id(number), image_sha256=None, source=None, regions=REGIONS, settings={}
        )
    assert len(await ledger.claim_unfinished("sweep", lease_s=60)) == 3
    url = ledger.engine.url.render_as_string(hide_password=False)
    storing = await Ledger.open(url)  # another connection holds a row lock, as a store does
    try:
        async with storing._write() as session:
            await session.execute(
                text("SELECT job_id FROM ocrflow_jobs WHERE job_id = :j FOR UPDATE"),
                {"j": job_id(0)},
            )
            renewed = await asyncio.wait_for(ledger.renew_claim("sweep", lease_s=60), 5)
    finally:
        await storing.close()
    assert renewed == 2  # the locked job skipped, the others renewed at once


async def test_a_resubmitted_job_stays_with_the_sweep_that_resubmitted_it(ledger: Ledger) -> None:
    await add(ledger, JOB_A)
    assert await ledger.claim_unfinished("sweep-1", lease_s=60) == [JOB_A]
    await ledger.record_resubmission(JOB_A, JOB_B, reason="NotExist", polls=1, image_bytes=10)
    assert await ledger.claim_unfinished("sweep-2", lease_s=60) == []  # not free to take
    assert {lease.claim: lease.jobs for lease in await ledger.leases()} == {"sweep-1": 1}
    assert await ledger.renew_claim("sweep-1", lease_s=60) == 1  # the new job, renewed


async def test_jobs_asked_for_by_id_are_leased_unless_another_run_holds_them(
    ledger: Ledger,
) -> None:
    for number in range(4):
        await ledger.record_job(
            job_id(number), image_sha256=None, source=None, regions=REGIONS, settings={}
        )
    await ledger.store_results(job_id(3), [result(0)])  # finished: in neither answer
    assert await ledger.claim_unfinished("sweep", lease_s=60, limit=1) == [job_id(0)]
    unknown = "cccccccc-0000-4000-8000-000000000003"
    taken, elsewhere = await ledger.claim_jobs(
        "fetch", [job_id(0), job_id(1), job_id(2), job_id(3), unknown], lease_s=60
    )
    assert taken == [job_id(1), job_id(2), unknown]  # an unknown id is recorded and leased
    assert elsewhere == [job_id(0)]
    assert await ledger.claim_unfinished("late", lease_s=60) == []


async def test_the_same_new_image_saved_at_once_by_many_writers_is_kept_once(
    ledger: Ledger,
) -> None:
    url = ledger.engine.url.render_as_string(hide_password=False)
    others = [await Ledger.open(url) for _ in range(4)]
    try:
        image = b"the same new scan " * 100
        digests = await asyncio.gather(
            *(writer.save_image(image) for writer in [ledger, *others] for _ in range(10))
        )
    finally:
        for other in others:
            await other.close()
    assert set(digests) == {image_digest(image)}
    assert await ledger.load_image(digests[0]) == image


async def test_a_submission_is_written_before_its_post_and_resolved_after_it(
    ledger: Ledger,
) -> None:
    sent = await ledger.begin_submission(
        b"scan", source="a.png", regions=REGIONS, settings={"resultType": "Text"}
    )
    refused = await ledger.begin_submission(b"scan", source="b.png", regions=REGIONS, settings={})
    cut_off = await ledger.begin_submission(b"scan", source="c.png", regions=REGIONS, settings={})
    await ledger.record_submitted(sent, JOB_A, submitted_at=datetime.now(UTC))
    await ledger.record_submitted(sent, JOB_A, submitted_at=datetime.now(UTC))  # a retry: no-op
    assert await ledger.close_submission(refused, SubmissionState.REFUSED, "400 bad image")
    assert not await ledger.close_submission(sent, SubmissionState.UNKNOWN, "too late")
    states = {s.source: s.state for s in await ledger.submissions()}
    assert states == {
        "a.png": SubmissionState.SENT,
        "b.png": SubmissionState.REFUSED,
        "c.png": SubmissionState.SENDING,
    }
    job = await ledger.get_job(JOB_A)
    assert job is not None
    assert (job.source, job.regions, job.settings) == ("a.png", REGIONS, {"resultType": "Text"})
    assert await ledger.load_image(job.image_sha256 or "") == b"scan"
    (pending,) = await ledger.submissions([SubmissionState.SENDING])
    assert pending.id == cut_off


async def test_a_stale_lease_holder_is_fenced_out_of_every_write(
    ledger: Ledger, clock: ManualClock
) -> None:
    for job in (JOB_A, JOB_B, JOB_C):
        await add(ledger, job)
    await ledger.claim_unfinished("stalled-sweep", lease_s=0.3)
    stale = await ledger.fence("stalled-sweep")
    assert stale.epochs == {JOB_A: 1, JOB_B: 1, JOB_C: 1}
    clock.advance(0.4)  # it stalled past its lease: another sweep takes over
    assert await ledger.claim_unfinished("live-sweep", lease_s=60) == [JOB_A, JOB_B, JOB_C]
    live = await ledger.fence("live-sweep")
    assert live.epochs == {JOB_A: 2, JOB_B: 2, JOB_C: 2}  # a new token at each takeover
    assert sorted(await ledger.taken_over(stale)) == [JOB_A, JOB_B, JOB_C]

    written = await ledger.store_many([JobResults(JOB_A, [result(0)])], stale)
    assert written == {JOB_A: Written.FENCED}
    assert await ledger.results([JOB_A]) == []
    assert not await ledger.finish(JOB_B, JobState.FAILED, error="stale", fence=stale)
    assert not await ledger.begin_resubmission(JOB_C, stale)
    assert await ledger.renew_claim("stalled-sweep", lease_s=60) == 0

    assert await ledger.store_many([JobResults(JOB_A, [result(0)])], live) == {JOB_A: Written.NOW}
    assert await ledger.finish(JOB_B, JobState.FAILED, error="gone", fence=live)
    assert await ledger.begin_resubmission(JOB_C, live)
    stored = await ledger.get_job(JOB_A)
    assert stored is not None
    assert stored.state is JobState.STORED


async def test_ids_the_ledger_does_not_know_are_recorded_and_leased(ledger: Ledger) -> None:
    held, elsewhere = await ledger.claim_jobs("fetch-by-id", [JOB_A], lease_s=60)
    assert (held, elsewhere) == ([JOB_A], [])
    assert await ledger.claim_jobs("second-fetch", [JOB_A], lease_s=60) == ([], [JOB_A])
    job = await ledger.get_job(JOB_A)
    assert job is not None
    assert (job.state, job.settings, job.image_sha256) == (JobState.SUBMITTED, {}, None)
