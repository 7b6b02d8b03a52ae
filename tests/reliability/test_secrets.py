"""The client secret appears nowhere: not in a log line, an artifact, an event, a variable, a
flow run, the ledger or a result file, even through token renewals and a refused credential."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings

from flows.reports import Outcome
from tests.reliability.conftest import CLIENT_SECRET, Emulator, Report
from tests.reliability.helpers import seed, sweep


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
        logs = await client.read_logs(limit=200)
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
    assert len(events) > 6  # at least an event a job
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
