"""What a person reads about a run: a job's results in one line, the run's markdown, and the
not-ready polls that Prefect would log as failures."""

from __future__ import annotations

import logging

from ocrflow.errors import JobNotReadyError
from ocrflow.flows.reports import FetchSummary, JobReport, Outcome, outcome_rows, summary_markdown
from ocrflow.models import TaskStatus
from ocrflow.preview import image_name, text_preview
from ocrflow.processing import ProcessedEntry, ResultKind
from ocrflow.tasks.status import NotReadyIsNotAFailure

PREFECT_RETRY_LINE = "Task run failed with %s: %r - Retry %s/%s will start %s"


def entry(index: int, text: str | None, error: str | None = None) -> ProcessedEntry:
    return ProcessedEntry(
        index=index, region=index, wire_type="Text", kind=ResultKind.TEXT, text=text, error=error
    )


def test_preview_names_each_region_and_collapses_whitespace() -> None:
    entries = [entry(0, "SMITH\n"), entry(1, "JOHN   ALBERT"), entry(2, "")]
    assert text_preview(entries, ["surname", "given_names"]) == (
        "surname: SMITH · given_names: JOHN ALBERT · #2: (empty)"
    )


def test_preview_shows_files_and_errors_by_kind_and_is_bounded() -> None:
    pdf = ProcessedEntry(index=0, region=0, wire_type="Pdf", kind=ResultKind.PDF, payload=b"%")
    broken = entry(1, None, error="bad base64")
    assert text_preview([pdf, broken], []) == "#0: (Pdf file) · #1: (error)"
    long = text_preview([entry(0, "x" * 500)], ["a"], limit=20)
    assert (len(long), long[-1]) == (20, "…")


def test_preview_escapes_control_characters() -> None:
    assert text_preview([entry(0, "A\x1b[31mB")], ["n"]) == "n: A\\x1b[31mB"


def test_image_name_keeps_only_the_file_name() -> None:
    assert image_name("/srv/in/2026/id-card.png") == "id-card.png"
    assert image_name(None) is None


def test_artifacts_lead_with_image_outcome_and_text() -> None:
    summary = FetchSummary(
        reports=[
            JobReport(job_id="a", outcome=Outcome.STORED, image="card.png", text="n: X"),
            JobReport(job_id="b", outcome=Outcome.FAILED, image="form|1.png", message="Error"),
        ]
    )
    rows = outcome_rows(summary)
    assert list(rows[0])[:4] == ["image", "outcome", "text", "reason"]
    assert (rows[0]["text"], rows[0]["reason"], rows[1]["reason"]) == ("n: X", "", "Error")
    markdown = summary_markdown(summary)
    assert "| form/1.png | `b` | failed | Error |" in markdown  # a pipe cannot break the table
    assert "| card.png | `a` | n: X |" in markdown


def test_a_large_runs_table_keeps_its_failures_first_within_the_limit() -> None:
    stored = [JobReport(job_id=f"s{n}", outcome=Outcome.STORED) for n in range(5)]
    failed = JobReport(job_id="f", outcome=Outcome.FAILED, message="Error")
    summary = FetchSummary(reports=[*stored, failed])
    assert [row["job"] for row in outcome_rows(summary)] == ["s0", "s1", "s2", "s3", "s4", "f"]
    assert [row["job"] for row in outcome_rows(summary, limit=3)] == ["f", "s0", "s1"]


def test_an_empty_run_says_there_was_nothing_to_do() -> None:
    assert FetchSummary().headline() == "no job to settle"
    held = FetchSummary(held_elsewhere="2 unfinished job(s) leased by 1 other run(s)")
    assert held.headline() == "no job to settle; 2 unfinished job(s) leased by 1 other run(s)"


def retry_record(error: Exception) -> logging.LogRecord:
    return logging.LogRecord(
        "prefect.task_runs",
        logging.INFO,
        __file__,
        1,
        PREFECT_RETRY_LINE,
        ("exception", error, 1, 724, "0.25 second(s) from now"),
        None,
    )


def test_a_not_ready_poll_is_not_logged_as_a_failure() -> None:
    record = retry_record(
        JobNotReadyError("job j-1 is Processing", job_id="j-1", status=TaskStatus.PROCESSING)
    )
    assert NotReadyIsNotAFailure().filter(record)
    assert record.getMessage() == (
        "job j-1 is Processing: not ready yet; look 2 of at most 725 in 0.25 s"
    )
    assert record.levelno == logging.INFO


def test_other_retried_failures_keep_prefects_wording() -> None:
    record = retry_record(TimeoutError("read timed out"))
    assert NotReadyIsNotAFailure().filter(record)
    assert record.getMessage().startswith("Task run failed with exception: TimeoutError(")
