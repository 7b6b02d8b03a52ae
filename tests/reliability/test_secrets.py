"""The client secret appears nowhere: not in a log line, an artifact, an event, a variable, a
flow run, the ledger or a result file, even through token renewals and a refused credential."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import get_current_settings
from sqlalchemy.engine import make_url

from ocrflow.emulator.server import free_port
from ocrflow.flows.fetch_results import fetch_results
from ocrflow.flows.reports import Outcome
from tests.reliability.conftest import CLIENT_SECRET, Emulator, Report
from tests.reliability.helpers import seed, sweep
from tests.services import check_reachable, database_url, drop_databases


async def _logs(client: Any, run_ids: list[Any], *, until: str) -> list[Any]:
    """The runs' logs on the server, once one of them says ``until`` (at most 30 s)."""
    runs = LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids))
    logs: list[Any] = []
    for _ in range(60):  # bounded
        logs = await client.read_logs(log_filter=runs, limit=200)
        if any(until in log.message for log in logs):
            break
        await asyncio.sleep(0.5)
    return logs


def _events(api: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Every event related to the runs, page by page (the server gives 50 at most a page)."""
    body = {
        "filter": {
            "any_resource": {"id": [f"prefect.flow-run.{run_id}" for run_id in run_ids]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    page = httpx.post(f"{api}/events/filter", json=body, timeout=30).json()
    events = list(page["events"])
    for _ in range(200):  # bounded: 10,000 events at most
        if not page.get("next_page"):
            break
        page = httpx.get(page["next_page"], timeout=30).json()
        events += page["events"]
    return events


async def test_the_client_secret_is_nowhere(
    env: Path, emulator: Emulator, report: Report, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    seeded = await seed(6)
    emulator.set_faults(rate_token_expired=0.5)  # renewals: the secret is sent again and again
    good_state, good = await sweep(seeded)
    emulator.set_faults(token_reject_rate=1.0)  # a refused credential: error paths speak too
    more = await seed(0)
    bad_state, bad = await sweep([*more, str(uuid.uuid4())])
    emulator.set_faults()
    assert {r.outcome for r in good.reports} == {Outcome.STORED}
    assert {r.outcome for r in bad.reports} == {Outcome.ERROR}
    assert "rejected the credentials" in bad.reports[0].message

    places: dict[str, str] = {"this process's log records": caplog.text}
    flow_run_ids = [s.state_details.flow_run_id for s in (good_state, bad_state)]
    run_ids = [str(run_id) for run_id in flow_run_ids]
    async with get_client() as client:
        runs = [await client.read_flow_run(run_id) for run_id in flow_run_ids if run_id]
        places["flow runs (parameters, states)"] = "".join(run.model_dump_json() for run in runs)
        logs = await _logs(client, [run.id for run in runs], until="fetch finished")
        places["logs kept by the server"] = "".join(log.message for log in logs)
        artifacts = await client.read_artifacts(limit=200)
        places["artifacts"] = "".join(a.model_dump_json() for a in artifacts)
        variables = await client.read_variables(limit=200)
        places["variables"] = "".join(v.model_dump_json() for v in variables)
    api = str(get_current_settings().api.url)
    events = _events(api, run_ids)
    places["events"] = "".join(str(event) for event in events)
    ledger_files = sorted(env.glob("ledger.db*"))
    places["ledger (database files)"] = "".join(
        f.read_bytes().decode("latin-1") for f in ledger_files
    )
    result_files = [f for f in (env / "results").rglob("*") if f.is_file()]
    places["result files"] = "".join(f.read_bytes().decode("latin-1") for f in result_files)

    assert len(logs) > 0
    assert len(artifacts) > 0
    assert len(events) > 6  # the runs' states and their jobs' events
    assert ledger_files
    # The search works: a job id, which all of these name on purpose, is found in them.
    for where in ("events", "artifacts", "ledger (database files)", "this process's log records"):
        assert seeded[0] in places[where], where
    found = {where: text.count(CLIENT_SECRET) for where, text in places.items()}
    assert found == dict.fromkeys(places, 0)
    report.add(
        case="the client secret, searched everywhere after two runs",
        injected=f"{emulator.count('token_requests')} token requests, renewals and a refusal",
        jobs=len(seeded) + 1,
        outcome=f"searched {len(places)} places ({len(logs)} log lines, {len(events)} events, "
        f"{len(artifacts)} artifacts, {len(ledger_files)} ledger files): 0 occurrences",
        lost=0,
        duplicated=0,
    )


LEDGER_PASSWORD = "Ledger-Pw-Zq81xT"  # the local PostgreSQL trusts 127.0.0.1: any password opens


@pytest.fixture
def ledger_with_password() -> Iterator[str]:
    """A ledger database of the test's own, its URL carrying a password."""
    asyncio.run(check_reachable())
    name = f"ocrflow_secret_{uuid.uuid4().hex[:8]}"
    direct = database_url(name)

    async def create() -> None:
        connection = await asyncpg.connect(database_url("postgres").replace("+asyncpg", ""))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    try:
        yield make_url(direct).set(password=LEDGER_PASSWORD).render_as_string(hide_password=False)
    finally:
        asyncio.run(drop_databases([direct]))


async def test_the_ledger_password_is_nowhere(
    env: Path,
    emulator: Emulator,
    report: Report,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    ledger_with_password: str,
) -> None:
    caplog.set_level("DEBUG")
    monkeypatch.setenv("OCRFLOW_LEDGER_URL", ledger_with_password)
    seeded = await seed(3)
    good_state, good = await sweep(seeded)
    assert {r.outcome for r in good.reports} == {Outcome.STORED}
    unreachable = make_url(ledger_with_password).set(port=free_port())
    monkeypatch.setenv("OCRFLOW_LEDGER_URL", unreachable.render_as_string(hide_password=False))
    bad_state = await fetch_results(job_ids=None, return_state=True)  # the ledger is away
    assert bad_state.is_failed()
    assert "cannot open the ledger postgresql+asyncpg://postgres:***@" in str(bad_state.message)

    places: dict[str, str] = {"this process's log records": caplog.text}
    async with get_client() as client:
        runs = [
            await client.read_flow_run(s.state_details.flow_run_id)
            for s in (good_state, bad_state)
            if s.state_details.flow_run_id
        ]
        places["flow runs (parameters, states)"] = "".join(r.model_dump_json() for r in runs)
        # Logs reach the server in batches, a moment after they are written: wait (bounded).
        logs = await _logs(client, [r.id for r in runs], until="cannot open the ledger")
        places["logs kept by the server"] = "".join(log.message for log in logs)
        artifacts = await client.read_artifacts(limit=200)
        places["artifacts"] = "".join(a.model_dump_json() for a in artifacts)
    api = str(get_current_settings().api.url)
    places["events"] = "".join(str(e) for e in _events(api, [str(r.id) for r in runs]))
    assert "cannot open the ledger" in places["logs kept by the server"]  # the search works
    found = {where: text.count(LEDGER_PASSWORD) for where, text in places.items()}
    assert found == dict.fromkeys(places, 0)
    report.add(
        case="the ledger's database password, searched after a run and a ledger outage",
        injected="a PostgreSQL ledger URL with a password; then that ledger unreachable",
        jobs=len(seeded),
        outcome=f"searched {len(places)} places: 0 occurrences; shown as postgres:***@",
        lost=0,
        duplicated=0,
    )
