"""The workflow end to end under a Prefect test harness, against the emulator."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.events.filters import (
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventResourceFilter,
)
from pypdf import PdfReader
from sqlalchemy import update

from ocrflow.client import OcrClient
from ocrflow.flows.fetch_results import fetch_results
from ocrflow.flows.pipeline import ocr_pipeline, summary_of
from ocrflow.flows.reports import FetchSummary, Outcome
from ocrflow.flows.settle_many import Sweep
from ocrflow.flows.submit_regions import SubmitSummary, submit_regions
from ocrflow.jobspec import JobSpec, load_regions_file
from ocrflow.ledger import JobState, Ledger
from ocrflow.ledger.schema import JobRow
from ocrflow.models import Rect, ResultType, TaskStatus, to_wire
from ocrflow.settings import OcrflowSettings
from tests.flows.conftest import SAMPLES, RunningEmulator


def sample(name: str = "id-card", result_type: ResultType = ResultType.TEXT) -> JobSpec:
    spec = load_regions_file(SAMPLES / f"{name}.regions.json")
    return spec.model_copy(
        update={"settings": spec.settings.model_copy(update={"result_type": result_type})}
    )


async def wait_for_events(
    client: Any, resource_id: str, name: str, *, as_related: bool = False
) -> list[Any]:
    """Events reach the server's database a little after they are emitted: wait (bounded).
    ``as_related``: the resource may be the event's own or one of its related resources."""
    event_filter = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=None if as_related else EventResourceFilter(id=[resource_id]),
        any_resource=EventAnyResourceFilter(id=[resource_id]) if as_related else None,
    )
    for _ in range(100):  # at most about 20 s
        page = await client.read_events(filter=event_filter, limit=50)  # the server caps 50
        if page.events:
            return list(page.events)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {name} event for {resource_id}")


async def ledger() -> Ledger:
    return await Ledger.open(OcrflowSettings().ledger_url)


async def submit(*specs: JobSpec) -> list[str]:
    state = await submit_regions(list(specs), return_state=True)
    summary = await summary_of(state, SubmitSummary)
    assert state.is_completed(), state.message
    return summary.job_ids


async def fetch(job_ids: list[str] | None = None, **options: Any) -> tuple[Any, FetchSummary]:
    state = await fetch_results(job_ids=job_ids, return_state=True, **options)
    return state, await summary_of(state, FetchSummary)


@pytest.mark.parametrize(
    "result_type",
    [
        ResultType.TEXT,
        ResultType.JSON,
        ResultType.HOCR,
        ResultType.PDF,
        ResultType.TEXT_AND_PDF_AND_HOCR,
    ],
)
async def test_each_result_type_end_to_end(ocrflow_env: Path, result_type: ResultType) -> None:
    spec = sample(result_type=result_type)
    state = await ocr_pipeline([spec], return_state=True)
    assert state.is_completed(), state.message
    store = await ledger()
    try:
        results = await store.results()
        (job,) = await store.jobs()
    finally:
        await store.close()
    assert job.state is JobState.STORED
    expected = [region.expected for region in spec.regions]
    formats = result_type.formats
    assert len(results) == len(expected) * len(formats)
    for kind in {f.lower() for f in formats}:
        rows = [r for r in results if r.kind == kind]
        assert [r.region_name for r in rows] == [r.name for r in spec.regions]
        assert [r.text for r in rows] == expected, kind
        assert all(r.error is None for r in rows)
        if kind in ("json", "hocr"):
            assert all(r.structured and r.structured["lines"] for r in rows)
        if kind == "pdf":
            assert all(r.file_path and Path(r.file_path).is_file() for r in rows)
            assert len(PdfReader(str(rows[0].file_path)).pages) == 1


async def test_a_pending_job_completes_through_the_task_retries(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    emulator.set_processing_s(3600.0)  # held until it has been seen unfinished twice
    (job_id,) = await submit(sample())
    fetching = asyncio.create_task(fetch([job_id]))
    await emulator.until_looked_at(job_id, times=2)  # the task's retries are polling it
    emulator.release(job_id)
    state, summary = await fetching
    assert state.is_completed(), state.message
    assert summary.reports[0].outcome is Outcome.STORED
    store = await ledger()
    try:
        job = await store.get_job(job_id)
    finally:
        await store.close()
    assert job is not None
    assert job.polls >= 3  # Pending, Processing…, then Completed: all in one task run


async def test_not_exist_is_resubmitted_and_completes(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    emulator.set_faults(rate_not_exist=1.0)
    (job_id,) = await submit(sample())
    emulator.set_faults()
    state, summary = await fetch([job_id])
    assert state.is_completed(), state.message
    (report,) = summary.reports
    assert (report.outcome, report.resubmissions) == (Outcome.STORED, 1)
    assert report.final_job_id != job_id
    store = await ledger()
    try:
        old, new = await store.get_job(job_id), await store.get_job(str(report.final_job_id))
    finally:
        await store.close()
    assert old is not None
    assert new is not None
    assert (old.state, old.replaced_by) == (JobState.RESUBMITTED, new.job_id)
    assert (new.state, new.replaces, new.attempt) == (JobState.STORED, job_id, 2)


async def test_error_with_resubmission_exhausted_fails_the_run(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    (good,) = await submit(sample("application-form"))
    emulator.set_faults(rate_job_error=1.0)
    (bad,) = await submit(sample())
    state, summary = await fetch([good, bad], max_resubmissions=1)
    assert state.is_failed()
    assert state.message == "1 of 2 jobs failed (1 failed, 1 stored)"
    failed = next(r for r in summary.reports if r.job_id == bad)
    assert failed.outcome is Outcome.FAILED
    assert failed.resubmissions == 1
    assert "limit is 1" in failed.message
    async with get_client() as client:
        flow_run = await client.read_flow_run(state.state_details.flow_run_id)
        artifacts = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id={"any_": [flow_run.id]}),
        )
        events = await wait_for_events(client, f"ocrflow.job.{bad}", "ocrflow.job.failed")
        # The jobs that ended well are named together, each a related resource of one event.
        (stored_event,) = await wait_for_events(
            client, f"ocrflow.job.{good}", "ocrflow.jobs.stored", as_related=True
        )
    by_key = {artifact.key: artifact for artifact in artifacts}
    table = by_key["ocrflow-fetch-outcomes"]
    rows: list[dict[str, Any]] = json.loads(str(table.data))  # a table's rows, as JSON
    by_job = {row["job"]: row for row in rows}
    # What a person looks for: the image, how it ended, what was read, why it failed.
    stored = next(r for r in summary.reports if r.job_id == good)
    assert stored.text.startswith(f"{sample('application-form').region_names()[0]}: ")
    assert by_job[good]["image"] == "application-form.png"
    assert (by_job[good]["outcome"], by_job[good]["text"]) == ("stored", stored.text)
    assert by_job[bad]["image"] == "id-card.png"
    assert by_job[bad]["outcome"] == "failed"
    assert "limit is 1" in by_job[bad]["reason"]
    markdown = str(by_key["ocrflow-fetch-summary"].data)
    assert "## Failed jobs" in markdown
    assert f"| application-form.png | `{good}` |" in markdown
    assert by_key["ocrflow-fetch-progress"].data == 100.0
    assert events[0].payload["resubmissions"] == 1
    assert [r.id for r in stored_event.related if r.role == "job"] == [f"ocrflow.job.{good}"]
    assert [job["job_id"] for job in stored_event.payload["jobs"]] == [good]


async def test_ids_unknown_to_the_ledger_are_fetched_but_not_resubmitted(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    spec = sample()
    async with OcrClient(OcrflowSettings()) as client:
        outside = await client.submit_regions(spec.image, spec.wire_regions())
    vanished = "00000000-0000-4000-8000-00000000abcd"
    state, summary = await fetch([outside, vanished])
    assert state.is_failed()
    stored, failed = summary.reports
    assert (stored.outcome, stored.known) == (Outcome.STORED, False)
    assert (failed.outcome, failed.known) == (Outcome.FAILED, False)
    assert "cannot be resubmitted" in failed.message


async def test_invalid_ids_are_reported_not_fetched(ocrflow_env: Path) -> None:
    state, summary = await fetch(["../../etc/passwd"])
    assert state.is_failed()
    assert summary.reports[0].outcome is Outcome.INVALID


async def test_a_second_sweep_fetches_nothing_and_writes_no_duplicate(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    job_ids = await submit(sample(), sample("application-form"))
    state, first = await fetch()  # all unfinished jobs in the ledger
    assert state.is_completed(), state.message
    assert {r.job_id for r in first.reports} == set(job_ids)
    gets_before = emulator.state.counts["get_RecognizeRegions"]
    again, second = await fetch()
    assert again.is_completed()
    assert second.reports == []
    by_id, named = await fetch(job_ids)
    assert by_id.is_completed()
    assert {r.outcome for r in named.reports} == {Outcome.ALREADY_DONE}
    assert emulator.state.counts["get_RecognizeRegions"] == gets_before
    store = await ledger()
    try:
        assert len(await store.results()) == 5 + 6
    finally:
        await store.close()


async def test_an_entry_that_never_decodes_leaves_the_job_incomplete_not_stored(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    (job_id,) = await submit(sample())
    emulator.set_faults(rate_corrupt_base64=1.0)  # every answer: one entry is not base64
    state, summary = await fetch([job_id])
    assert state.is_failed()
    report = summary.reports[0]
    assert report.outcome is Outcome.INCOMPLETE
    assert "does not decode" in report.message
    assert "not valid base64" in report.message
    assert "(fetched 4 times)" in report.message  # the first answer and 3 refetches
    store = await ledger()
    try:
        job = await store.get_job(job_id)
        assert await store.results([job_id]) == []  # nothing stored incomplete
    finally:
        await store.close()
    assert job is not None
    assert job.state is JobState.INCOMPLETE
    assert job.last_error == report.message
    assert emulator.state.counts["fault_corrupt_base64"] == 4  # bounded: no endless refetching


async def test_a_missing_image_fails_its_submission_only(ocrflow_env: Path) -> None:
    missing = sample().model_copy(update={"image": ocrflow_env / "nowhere.png"})
    state = await submit_regions([sample(), missing], return_state=True)
    summary = await summary_of(state, SubmitSummary)
    assert state.is_failed()
    assert len(summary.job_ids) == 1
    assert "cannot read image" in str(summary.submissions[1].error)


async def test_a_job_past_the_retention_is_reported_expired_before_its_resubmission(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    spec = sample()
    store = await ledger()
    try:  # a job sent 25 h ago: the service has forgotten it (NotExist)
        digest = await store.save_image(spec.image.read_bytes())
        old = "00000000-0000-4000-8000-000000000025"
        await store.record_job(
            old,
            image_sha256=digest,
            source=str(spec.image),
            regions=[region.stored() for region in spec.regions],
            settings=to_wire(spec.settings.model_copy(update={"regions": None})),
            submitted_at=datetime.now(UTC) - timedelta(hours=25),
        )
    finally:
        await store.close()
    state, summary = await fetch([old])
    (report,) = summary.reports
    assert report.expired
    assert report.outcome is Outcome.STORED  # resubmitted from its image, visibly
    assert report.message.startswith("expired after 24 h, resubmitted as ")
    assert "1 expired after 24 h" in (state.message or "")
    store = await ledger()
    try:
        job = await store.get_job(old)
    finally:
        await store.close()
    assert job is not None
    assert job.state is JobState.RESUBMITTED
    assert (job.last_error or "").startswith("expired: submitted 25.0 h ago")


async def test_a_sweep_says_how_many_jobs_another_run_holds_and_until_when(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    (job_id,) = await submit(sample())
    store = await ledger()
    try:
        assert await store.claim_unfinished("another-run@host:1", lease_s=300) == [job_id]
    finally:
        await store.close()
    state, summary = await fetch()
    assert state.is_completed(), state.message
    assert summary.reports == []
    assert "1 unfinished job(s) leased by 1 other run(s) until" in summary.headline()


async def test_a_ledger_that_fails_at_the_end_leaves_the_summary_whole(
    ocrflow_env: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job_id,) = await submit(sample())

    async def broken(self: Ledger, claim: str) -> None:
        raise RuntimeError("database or disk is full")

    monkeypatch.setattr(Ledger, "release_claim", broken)
    state, summary = await fetch([job_id])
    assert state.is_completed(), state.message  # the release failed; the work stands
    assert [r.outcome for r in summary.reports] == [Outcome.STORED]


async def test_input_that_must_fail_is_never_sent_by_the_flow(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    good = sample()
    outside = good.model_copy(
        update={
            "regions": [
                good.regions[0].model_copy(update={"rect": Rect.from_xywh(5000, 0, 50, 20)})
            ]
        }
    )
    not_an_image = ocrflow_env / "scan.png"
    not_an_image.write_text("a text file named .png\n")
    text_file = good.model_copy(update={"image": not_an_image})
    posts = emulator.state.counts["submit_RecognizeRegions"]
    state = await submit_regions([outside, text_file], return_state=True)
    summary = await summary_of(state, SubmitSummary)
    assert state.is_failed()
    assert emulator.state.counts["submit_RecognizeRegions"] == posts  # nothing paid for
    assert "reaches outside the" in str(summary.submissions[0].error)
    assert "is not an image" in str(summary.submissions[1].error)


async def test_learned_polling_takes_over_once_a_class_has_completions(
    ocrflow_env: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRFLOW_POLL_LEARN_AFTER", "1")
    emulator.set_processing_s(1.0)
    (first,) = await submit(sample())
    await fetch([first])  # the exponential policy: polls from the start, learns ~1 s
    (second,) = await submit(sample())
    state, summary = await fetch([second])  # learned: waits out the lag budget, then one poll
    assert state.is_completed(), state.message
    assert summary.reports[0].outcome is Outcome.STORED
    store = await ledger()
    try:
        learned, quick = await store.get_job(first), await store.get_job(second)
    finally:
        await store.close()
    assert learned is not None
    assert quick is not None
    assert learned.processing_s is not None
    assert 0.2 < learned.processing_s < 3.0
    assert quick.polls == 1  # first look at an age of 2 s (the lag budget): done by then


async def test_an_id_given_twice_is_settled_once(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    (job_id,) = await submit(sample())
    state, summary = await fetch([job_id, job_id.upper()])
    assert state.is_completed(), state.message
    assert [r.job_id for r in summary.reports] == [job_id]


async def test_a_fetch_by_id_leaves_a_job_another_live_run_holds_to_it(
    ocrflow_env: Path, emulator: RunningEmulator
) -> None:
    held, free = await submit(sample(), sample("application-form"))
    store = await ledger()
    try:  # another run (a sweep, a shard) holds the first job's lease and is alive
        assert await store.claim_jobs("other-run@host:1", [held], lease_s=300) == ([held], [])
    finally:
        await store.close()
    gets_before = emulator.state.counts["get_RecognizeRegions"]
    state, summary = await fetch([held, free])
    assert state.is_completed(), state.message  # left to the other run: not a failure
    by_id = {r.job_id: r for r in summary.reports}
    assert by_id[held].outcome is Outcome.ELSEWHERE
    assert "not fetched twice" in by_id[held].message
    assert by_id[free].outcome is Outcome.STORED
    assert emulator.state.counts["get_RecognizeRegions"] - gets_before == 1  # the free one only
    store = await ledger()
    try:
        still = await store.get_job(held)
        leases = {lease.claim: lease.jobs for lease in await store.leases()}
    finally:
        await store.close()
    assert still is not None
    assert still.state is JobState.SUBMITTED
    assert leases == {"other-run@host:1": 1}  # the run gave back its own lease, not the other's


_DEFAULT_NAME = re.compile(r"[a-z]+(-[a-z]+)*-[0-9a-f]{3}")  # a task name and 3 hex


async def task_run_names(flow_run_id: Any, expected: int) -> list[str]:
    """The names of a flow run's task runs, once the server has recorded ``expected`` (bounded)."""
    names: list[str] = []
    async with get_client() as client:
        for _ in range(100):  # at most about 20 s: the server records task runs from events
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]})
            )
            names = sorted(run.name for run in runs)
            # A run's first event may carry Prefect's default name (``store-results-b4f``);
            # the name its ``task_run_name`` renders comes with a later one.
            if len(names) >= expected and not any(_DEFAULT_NAME.fullmatch(n) for n in names):
                return names
            await asyncio.sleep(0.2)
    return names


async def test_done_jobs_are_settled_in_batches_and_pending_ones_alone(
    ocrflow_env: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRFLOW_BATCH", "4")
    done = await submit(*[sample()] * 6)
    async with OcrClient(OcrflowSettings()) as client:
        for _ in range(200):  # bounded: at most about 20 s of OCR
            statuses = [await client.get_status(job_id) for job_id in done]
            if all(status.task_status is TaskStatus.COMPLETED for status in statuses):
                break
            await asyncio.sleep(0.1)
    emulator.set_processing_s(3600.0)  # held: still running at the first look, however slow
    (pending,) = await submit(sample())
    fetching = asyncio.create_task(fetch([*done, pending]))
    await emulator.until_looked_at(pending)  # the first look has seen it unfinished
    emulator.release(pending)
    state, summary = await fetching
    assert state.is_completed(), state.message
    assert [r.outcome for r in summary.reports] == [Outcome.STORED] * 7
    assert all(r.entries == len(sample().regions) for r in summary.reports)
    names = await task_run_names(state.state_details.flow_run_id, expected=12)
    # Two batches (4 + 3 jobs) looked at once each; the six done jobs decoded, processed and
    # stored a batch at a time; only the pending job has a status check of its own, and its
    # answer is stored with the others polled alone (here none: a batch of one).
    assert [n for n in names if n.startswith("first-look")] == [
        "first-look-batch-1-of-4-jobs",
        "first-look-batch-2-of-3-jobs",
    ]
    assert [n for n in names if n.startswith("check-status")] == [f"check-status-{pending}"]
    assert [n for n in names if n.startswith("store")] == sorted(
        ["store-batch-1-of-4-jobs", "store-batch-2-of-3-jobs", "store-polled-1-of-1-jobs"]
    )
    assert len(names) == 12


async def test_a_backlog_is_settled_nearest_expiry_first_and_the_expired_last(
    ocrflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[tuple[int, int]] = []  # (records asked for, records held after) per load
    load_records = Sweep.load_records

    async def spy(sweep: Sweep, job_ids: list[str]) -> None:
        await load_records(sweep, job_ids)
        held.append((len(job_ids), len(sweep.records)))

    monkeypatch.setattr(Sweep, "load_records", spy)
    job_ids = await submit(*(sample() for _ in range(12)))
    old, expired = job_ids[9:11], job_ids[11:]  # submitted last, but 23 h and 25 h old
    store = await ledger()
    try:
        async with store.engine.begin() as connection:
            for ids, hours in ((old, 23), (expired, 25)):
                await connection.execute(
                    update(JobRow)
                    .where(JobRow.job_id.in_(ids))
                    .values(created_at=datetime.now(UTC) - timedelta(hours=hours))
                )
        state, summary = await fetch(window=2)  # one batch of two at a time: a slow sweep
        assert state.is_completed(), state.message
        order = [report.job_id for report in summary.reports]
        assert set(order[:2]) == set(old)  # the same age: in id order
        assert order[-1:] == expired
        finished = {
            job.job_id: job.finished_at
            for job in await store.jobs(job_ids)
            if job.finished_at is not None
        }
    finally:
        await store.close()
    assert set(finished) == set(job_ids)
    # The records are loaded a chunk at a time (2 windows of 2), and never all held at once.
    assert [asked for asked, _ in held] == [4, 4, 4]
    assert max(count for _, count in held) < len(job_ids)
    fresh = [finished[j] for j in job_ids[:9]]
    assert max(finished[j] for j in old) <= min(fresh)
    assert max(fresh) <= finished[expired[0]]
