"""A fake service answering what a real service or a proxy might send instead of a proper
answer: each job ends in a recorded state with its reason, none is stored incomplete, and
``ocrflow fetch`` exits non-zero naming the jobs that did not end well.

The fake is scripted per job id: a list of answers, one per GET (the last one repeats).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from typer.testing import CliRunner

from ocrflow.cli.main import app as cli
from ocrflow.emulator.server import serve_in_thread
from ocrflow.ledger import JobRecord, JobState, Ledger, ResultRecord
from ocrflow.models import RecognizeRegionsSettings, Rect, to_wire
from ocrflow.settings import OcrflowSettings
from tests.prefect_harness import flow_env

REGIONS = 5
SECRET = "fuzz-secret"


def text_entry(value: str) -> dict[str, str]:
    return {"type": "Text", "data": base64.b64encode(value.encode()).decode()}


def completed(results: Any, *, with_key: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"taskStatus": "Completed", "responseStatusCode": "Ok", "error": None}
    if with_key:
        body["results"] = results
    return body


WHOLE = completed([text_entry(f"FIELD {n}") for n in range(REGIONS)])


@dataclass
class Script:
    """What the fake answers each job: status code, media type and body, GET after GET."""

    answers: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    gets: dict[str, int] = field(default_factory=dict)

    def add(
        self, job_id: str, *bodies: Any, status: int = 200, media: str = "application/json"
    ) -> None:
        self.answers[job_id] = [
            (status, media, body if isinstance(body, str) else json.dumps(body)) for body in bodies
        ]


def fake_service(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/connect/token")
    async def token() -> JSONResponse:
        return JSONResponse({"access_token": "fake", "expires_in": 3600, "token_type": "Bearer"})

    @app.get("/v5.0/ocr/RecognizeRegions")
    async def answer(request: Request) -> Response:
        job_id = request.query_params.get("id", "")
        script.gets[job_id] = script.gets.get(job_id, 0) + 1
        answers = script.answers.get(job_id) or [
            (200, "application/json", json.dumps({"taskStatus": "NotExist"}))
        ]
        status, media, body = answers[min(script.gets[job_id], len(answers)) - 1]
        if media == "text/plain":
            return PlainTextResponse(body, status_code=status)
        return Response(body, status_code=status, media_type=media)

    return app


CASES: dict[str, tuple[list[Any], str]] = {
    "results null": ([completed(None)], "the answer holds no results"),
    "results empty": ([completed([])], "the answer holds no results"),
    "no results key": ([completed(None, with_key=False)], "the answer holds no results"),
    "2 entries for 5 regions": (
        [completed([text_entry("A"), text_entry("B")])],
        "2 Text entries for 5 region(s)",
    ),
    "6 entries for 5 regions": (
        [completed([text_entry(str(n)) for n in range(6)])],
        "cannot tell which region each belongs to",
    ),
    "bad base64": (
        [
            completed(
                [
                    text_entry("A"),
                    {"type": "Text", "data": "QW=xs"},
                    *(text_entry("C") for _ in range(3)),
                ]
            )
        ],
        "not valid base64",
    ),
    "a PDF where text was asked": (
        [completed([{"type": "Pdf", "data": base64.b64encode(b"%PDF-1.7 nothing").decode()}] * 5)],
        "0 Text entries for 5 region(s)",
    ),
}


# Answers that are no OCRResponse at all: the job stays unfinished with the reason kept (the
# next sweep tries again), reported as an error; the run fails.
BROKEN: dict[str, tuple[tuple[int, str, str], str]] = {
    "unknown status": ((200, "application/json", '{"taskStatus": "Exploded"}'), "Exploded"),
    "wrong types": (
        (200, "application/json", json.dumps(completed([{"type": 5, "data": 7}]))),
        "ResponseFormatError",
    ),
    "200 with HTML": ((200, "text/html", "<html><body>Bad gateway</body></html>"), "JSON"),
    "empty 404": ((404, "text/plain", ""), "404"),
}
# Odd but whole answers: read as they are meant (built for the job's own id).
TOLERATED: dict[str, Callable[[str], tuple[int, str, str]]] = {
    "JSON served as text/plain": lambda _job: (200, "text/plain", json.dumps(WHOLE)),
    "its id echoed braced and quoted": lambda job: (
        200,
        "application/json",
        json.dumps({**WHOLE, "id": f'"{{{job.upper()}}}"'}),
    ),
}


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The command quiets Prefect through os.environ; run in-process, that must not last."""
    saved, raising = dict(os.environ), logging.raiseExceptions
    yield
    os.environ.clear()
    os.environ.update(saved)
    logging.raiseExceptions = raising


@pytest.fixture
def fuzz_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Script, Path]]:
    script = Script()
    with serve_in_thread(fake_service(script)) as url:
        for name, value in flow_env(url, SECRET, tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OCRFLOW_MAX_ATTEMPTS", "2")
        yield script, tmp_path


async def record(job_ids: list[str]) -> None:
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        regions = [
            {"rect": to_wire(Rect.from_xywh(0, 30 * n, 200, 20)), "order": n, "name": f"field{n}"}
            for n in range(REGIONS)
        ]
        for job_id in job_ids:
            await ledger.record_job(
                job_id,
                image_sha256=None,
                source="form.png",
                regions=regions,
                settings=to_wire(RecognizeRegionsSettings()),
            )
    finally:
        await ledger.close()


async def read_ledger() -> tuple[dict[str, JobRecord], list[ResultRecord]]:
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        return {job.job_id: job for job in await ledger.jobs()}, await ledger.results()
    finally:
        await ledger.close()


def guid(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def test_every_contract_variant_ends_recorded_and_none_is_stored_incomplete(
    fuzz_env: tuple[Script, Path],
) -> None:
    script, _ = fuzz_env
    ids = {name: guid(n) for n, name in enumerate(CASES, start=1)}
    control, healed = guid(90), guid(91)
    broken = {name: guid(n) for n, name in enumerate(BROKEN, start=50)}
    tolerated = {name: guid(n) for n, name in enumerate(TOLERATED, start=70)}
    for name, (answers, _) in CASES.items():
        script.add(ids[name], *answers)
    for name, ((status, media, body), _) in BROKEN.items():
        script.answers[broken[name]] = [(status, media, body)]
    for name, answer in TOLERATED.items():
        script.answers[tolerated[name]] = [answer(tolerated[name])]
    script.add(control, WHOLE)
    script.add(healed, completed([text_entry("A")]), WHOLE)  # a proxy cut the first answer short
    everyone = [*ids.values(), *broken.values(), *tolerated.values(), control, healed]
    asyncio.run(record(everyone))

    done = CliRunner().invoke(cli, ["fetch", *everyone], env={"COLUMNS": "400"})

    assert done.exit_code == 1, done.output
    jobs, rows = asyncio.run(read_ledger())
    stored = {row.job_id for row in rows}
    assert stored == {control, healed, *tolerated.values()}  # nothing incomplete stored
    assert sorted(row.text or "" for row in rows if row.job_id == control) == [
        f"FIELD {n}" for n in range(REGIONS)
    ]
    assert jobs[healed].state is JobState.STORED
    assert script.gets[healed] == 2  # fetched again once, and whole
    for name, (_, reason) in CASES.items():
        job = jobs[ids[name]]
        assert job.state is JobState.INCOMPLETE, name
        assert reason in (job.last_error or ""), (name, job.last_error)
        assert script.gets[ids[name]] == 4, name  # the first answer and 3 refetches, no more
        assert ids[name] in done.output
    assert "incomplete answer" in done.output
    shown = CliRunner().invoke(cli, ["results", ids["results null"]], env={"COLUMNS": "400"})
    assert shown.exit_code == 1  # nothing stored, and it says why
    assert f"job {ids['results null']} is incomplete: incomplete answer" in shown.output
    for name, (_, reason) in BROKEN.items():
        job = jobs[broken[name]]
        assert job.state is JobState.SUBMITTED, name  # unfinished: the next sweep tries again
        assert reason in (job.last_error or ""), (name, job.last_error)
        assert broken[name] in done.output
