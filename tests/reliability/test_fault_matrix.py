"""The fault matrix: the fetch flow against every fault the emulator can inject.

Each case submits jobs, turns a fault on, runs a sweep and checks the ledger: every job ends in
a recorded state (stored; failed or timed out with a reason; or, when the run itself could not
reach the service, still unfinished with the reason kept for the next sweep), no job has two
results for one region, none was resubmitted twice. Each case adds a row to the report.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ocrflow.flows.reports import Outcome
from ocrflow.ledger import Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import REGIONS, LedgerCheck, check_ledger, seed, sweep

JOBS = 12


def add_row(report: Report, case: str, injected: str, check: LedgerCheck, **extra: Any) -> None:
    names = {"submitted": "unfinished, reason kept"}
    states = ", ".join(
        f"{n} {names.get(state, state)}" for state, n in sorted(check.states().items())
    )
    report.add(
        case=case,
        injected=injected,
        jobs=len(check.final),
        outcome=states + "".join(f"; {k.replace('_', ' ')} {v}" for k, v in extra.items()),
        lost=len(check.lost),
        duplicated=len(check.duplicated),
    )


# --- transport and service faults: every job must end stored ---

TRANSIENT = [
    ("429 storm with Retry-After", {"rate_429": 0.5, "retry_after_s": 1.0}, "fault_429"),
    ("bursts of 5xx", {"rate_5xx": 0.4}, "fault_5xx"),
    ("dropped connections", {"rate_drop": 0.3}, "fault_drop"),
    ("answers slower than the read timeout", {"rate_slow": 0.3, "slow_s": 2.0}, "fault_slow"),
    ("tokens expiring mid-run", {"rate_token_expired": 0.3}, "fault_token_expired"),
    ("malformed JSON answers", {"rate_malformed_json": 0.3}, "fault_malformed_json"),
    ("jobs that vanish (NotExist)", {"rate_not_exist": 0.3}, None),
    ("jobs that end in Error", {"rate_job_error": 0.3}, None),
]


@pytest.mark.parametrize(("case", "faults", "counter"), TRANSIENT, ids=[c[0] for c in TRANSIENT])
async def test_transient_faults_lose_nothing(
    env: Path,
    emulator: Emulator,
    report: Report,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    faults: dict[str, float],
    counter: str | None,
) -> None:
    monkeypatch.setenv("OCRFLOW_READ_TIMEOUT_S", "0.5")
    monkeypatch.setenv("OCRFLOW_MAX_RESUBMISSIONS", "4")
    submitted_before = 0
    if "rate_not_exist" in faults or "rate_job_error" in faults:
        emulator.set_faults(**faults)  # drawn when a job is submitted
        seeded = await seed()
        submitted_before = emulator.count("submit_RecognizeRegions")
    else:
        seeded = await seed()
        emulator.set_faults(**faults)
    state, summary = await sweep(seeded)
    emulator.set_faults()
    check = await check_ledger(seeded)
    assert check.lost == []
    assert check.duplicated == []
    assert state.is_completed(), state.message
    assert check.states() == Counter({"stored": JOBS})
    assert {r.outcome for r in summary.reports} == {Outcome.STORED}
    assert all(check.results[job.job_id] == len(REGIONS) for job in check.final.values())
    if counter is not None:
        injected = emulator.count(counter)
        assert injected > 0  # the fault really happened
        add_row(report, case, f"{injected} x {counter.removeprefix('fault_')}", check)
    else:
        resubmitted = emulator.count("submit_RecognizeRegions") - submitted_before
        add_row(report, case, f"{resubmitted} jobs failed and were resubmitted", check)
        assert resubmitted > 0
        assert sum(r.resubmissions for r in summary.reports) == resubmitted


# --- the token endpoint refuses: a clear error, almost no token requests, nothing lost ---


@pytest.mark.parametrize(
    ("case", "faults", "words"),
    [
        ("token endpoint answers 400", {"token_reject_rate": 1.0}, "rejected"),
        ("token endpoint answers 429", {"token_429_rate": 1.0}, "rate-limiting"),
    ],
)
async def test_a_refusing_token_endpoint_is_a_clear_error_not_a_loop(
    env: Path, emulator: Emulator, report: Report, case: str, faults: dict[str, float], words: str
) -> None:
    seeded = await seed()
    tokens_before = emulator.count("token_requests")
    emulator.set_faults(**faults)
    started = time.monotonic()
    state, summary = await sweep(seeded)
    minutes = max((time.monotonic() - started) / 60, 1.0)
    token_requests = emulator.count("token_requests") - tokens_before
    assert state.is_failed()
    assert {r.outcome for r in summary.reports} == {Outcome.ERROR}
    assert all(words in r.message for r in summary.reports), summary.reports[0].message
    assert token_requests / minutes <= 2  # never a loop that would get the client banned
    check = await check_ledger(seeded)
    assert check.lost == []  # each kept its reason and stays unfinished
    assert check.states() == Counter({"submitted": JOBS})
    emulator.set_faults()
    state, _ = await sweep(None)  # the next sweep, with the endpoint back, stores them all
    assert state.is_completed(), state.message
    after = await check_ledger(seeded)
    assert after.states() == Counter({"stored": JOBS})
    add_row(
        report,
        case,
        f"every token request refused ({token_requests} made in the run)",
        check,
        then_next_sweep=f"{JOBS} stored",
    )


# --- hostile or broken results: a clear per-region error, the job stored, nothing fetched ---


class _Receiver(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"secret file contents")

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def xxe_target() -> Iterator[tuple[str, type[_Receiver]]]:
    """An HTTP server on 127.0.0.1 that counts what would fetch the external entity."""
    handler = type("Receiver", (_Receiver,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/xxe", handler
    finally:
        server.shutdown()
        server.server_close()


HOSTILE = [
    ("corrupt base64", {"rate_corrupt_base64": 1.0}, "not valid base64"),
    ("truncated PDF", {"rate_hostile": 1.0, "hostile": "truncated_pdf"}, "PDF"),
    (
        "hOCR with entity expansion",
        {"rate_hostile": 1.0, "hostile": "billion_laughs"},
        "EntitiesForbidden",
    ),
    (
        "hOCR with an external entity (XXE)",
        {"rate_hostile": 1.0, "hostile": "xxe"},
        "EntitiesForbidden",
    ),
    (
        "a result over the size limit",
        {"rate_hostile": 1.0, "hostile": "oversize", "oversize_bytes": 3_000_000},
        "over the 1000000-byte limit",
    ),
]


@pytest.mark.parametrize(("case", "faults", "words"), HOSTILE, ids=[c[0] for c in HOSTILE])
async def test_hostile_results_leave_their_job_incomplete_never_stored(
    env: Path,
    emulator: Emulator,
    report: Report,
    monkeypatch: pytest.MonkeyPatch,
    xxe_target: tuple[str, type[_Receiver]],
    case: str,
    faults: dict[str, Any],
    words: str,
) -> None:
    monkeypatch.setenv("OCRFLOW_MAX_RESULT_BYTES", "1000000")
    url, receiver = xxe_target
    seeded = await seed()
    emulator.set_faults(**faults, xxe_url=url)
    state, summary = await sweep(seeded)
    emulator.set_faults()
    check = await check_ledger(seeded)
    assert check.lost == []
    assert check.duplicated == []
    assert check.states() == Counter({"incomplete": JOBS})  # fetched again, then given up
    assert all(words in (job.last_error or "") for job in check.final.values())
    assert {r.outcome for r in summary.reports} == {Outcome.INCOMPLETE}
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        rows = await ledger.results(seeded)
    finally:
        await ledger.close()
    assert rows == []  # nothing stored incomplete
    assert receiver.hits == 0  # the external entity was never fetched
    assert state.is_failed()  # the alert fires
    reason = next(iter(check.final.values())).last_error or ""
    add_row(report, case, f"every answer ({JOBS})", check, reason=reason[:70])


# --- answers that break the contract or the memory bound: recorded, never a crash ---


@pytest.mark.parametrize(
    ("case", "faults", "words"),
    [
        ("an unknown job status", {"rate_hostile": 1.0, "hostile": "unknown_status"}, "Exploded"),
        (
            "an answer over max_response_bytes",
            {"rate_hostile": 1.0, "hostile": "oversize", "oversize_bytes": 3_000_000},
            "over the 1000000-byte limit",
        ),
    ],
)
async def test_answers_that_cannot_be_read_are_recorded_for_the_next_sweep(
    env: Path,
    emulator: Emulator,
    report: Report,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    faults: dict[str, Any],
    words: str,
) -> None:
    monkeypatch.setenv("OCRFLOW_MAX_RESPONSE_BYTES", "1000000")
    seeded = await seed()
    emulator.set_faults(**faults)
    state, summary = await sweep(seeded)
    emulator.set_faults()
    assert state.is_failed()
    assert all(r.outcome is Outcome.ERROR and words in r.message for r in summary.reports)
    check = await check_ledger(seeded)
    assert check.lost == []
    assert all(words in (job.last_error or "") for job in check.final.values())
    state, _ = await sweep(None)
    assert state.is_completed(), state.message
    assert (await check_ledger(seeded)).states() == Counter({"stored": JOBS})
    add_row(report, case, f"every answer ({JOBS})", check, then_next_sweep=f"{JOBS} stored")


async def test_an_unknown_result_type_instead_of_text_leaves_the_job_incomplete(
    env: Path, emulator: Emulator, report: Report
) -> None:
    seeded = await seed()
    emulator.set_faults(rate_hostile=1.0, hostile="unknown_type")
    state, _ = await sweep(seeded)
    emulator.set_faults()
    assert state.is_failed()
    check = await check_ledger(seeded)
    assert check.states() == Counter({"incomplete": JOBS})
    assert all(
        "0 Text entries for 1 region(s)" in (j.last_error or "") for j in check.final.values()
    )
    add_row(report, "an unknown result type", f"every answer ({JOBS})", check, kept_as="nothing")


async def test_hostile_job_ids_are_rejected_before_any_request(
    env: Path, emulator: Emulator, report: Report
) -> None:
    hostile = [
        "../../etc/passwd",
        "b7162f77-bf10-407d-86de-ee255e422ca7/../x",
        "not-a-guid",
        "b7162f77bf10407d86deee255e422ca7%2F",
        "",
        "b7162f77-bf10-407d-86de-ee255e422ca7\nGET /admin",
    ]
    requests_before = emulator.count("requests")
    state, summary = await sweep(hostile)
    assert state.is_failed()
    assert [r.outcome for r in summary.reports] == [Outcome.INVALID] * len(hostile)
    assert emulator.count("requests") == requests_before  # nothing was sent
    report.add(
        case="job ids with path separators or not GUIDs",
        injected=f"{len(hostile)} ids",
        jobs=len(hostile),
        outcome=f"{len(hostile)} invalid, 0 requests sent",
        lost=0,
        duplicated=0,
    )


async def test_a_job_that_never_completes_times_out_before_the_retention(
    env: Path, emulator: Emulator, report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRFLOW_POLL_DEADLINE_S", "2")
    emulator.state.settings.processing.seconds = 3600.0
    seeded = await seed(3)
    started = time.monotonic()
    state, summary = await asyncio.wait_for(sweep(seeded), timeout=120)
    took = time.monotonic() - started
    assert state.is_failed()
    assert {r.outcome for r in summary.reports} == {Outcome.TIMED_OUT}
    assert all(
        "2 s after its submission (the polling deadline)" in r.message for r in summary.reports
    )
    check = await check_ledger(seeded)
    assert check.states() == Counter({"timed_out": 3})
    assert all("deadline" in (job.last_error or "") for job in check.final.values())
    assert took < 60  # ended by the deadline, not by anything else
    add_row(report, "a job that never completes", "deadline 2 s", check, run_took=f"{took:.0f} s")
