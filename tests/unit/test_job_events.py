"""The run's events about its jobs: one per job needing attention, one per 50 that ended well."""

from __future__ import annotations

from typing import Any

import pytest

from ocrflow.flows import reports
from ocrflow.flows.reports import JobEvents, JobReport, Outcome


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(reports, "emit_event", lambda **event: sent.append(event))
    return sent


def report(number: int, outcome: Outcome) -> JobReport:
    job_id = f"00000000-0000-4000-8000-{number:012d}"
    return JobReport(job_id=job_id, outcome=outcome, final_job_id=job_id, entries=2)


def test_failures_are_told_one_job_at_a_time(emitted: list[dict[str, Any]]) -> None:
    events = JobEvents(per_event=3)
    events.add(report(1, Outcome.FAILED))
    events.add(report(2, Outcome.EXPIRED))
    assert [e["event"] for e in emitted] == ["ocrflow.job.failed", "ocrflow.job.expired"]
    assert (
        emitted[0]["resource"]["prefect.resource.id"]
        == f"ocrflow.job.{report(1, Outcome.FAILED).job_id}"
    )
    events.flush()
    assert len(emitted) == 2  # nothing was waiting


def test_jobs_that_ended_well_are_named_a_few_per_event(emitted: list[dict[str, Any]]) -> None:
    events = JobEvents(per_event=3)
    for number in range(7):
        events.add(report(number, Outcome.STORED))
    events.add(report(100, Outcome.ALREADY_DONE))
    assert [e["event"] for e in emitted] == ["ocrflow.jobs.stored"] * 2  # 3 + 3, one waits
    events.flush()
    assert [e["event"] for e in emitted] == [
        *["ocrflow.jobs.stored"] * 3,
        "ocrflow.jobs.already_done",
    ]
    named = [r["prefect.resource.id"] for e in emitted[:3] for r in e["related"]]
    assert named == [f"ocrflow.job.{report(n, Outcome.STORED).job_id}" for n in range(7)]
    assert {r["prefect.resource.role"] for e in emitted for r in e["related"]} == {"job"}
    last = emitted[2]
    assert last["resource"]["prefect.resource.name"] == "1 jobs stored"
    assert last["payload"]["jobs"][0]["entries"] == 2
    events.flush()
    assert len(emitted) == 4  # a second flush sends nothing twice
