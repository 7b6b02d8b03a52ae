"""The command line's happy path: submit, fetch and export, under the Prefect test harness."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocrflow_cli.main import app
from tests.flows.conftest import SAMPLES

runner = CliRunner()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The commands quiet Prefect through os.environ, as a CLI process may; run in-process
    here, that must not outlive the test (it silenced every later stack's logs)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_submit_fetch_and_export(ocrflow_env: Path) -> None:
    regions = SAMPLES / "id-card.regions.json"
    submitted = runner.invoke(app, ["submit", "--regions", str(regions)], env={"COLUMNS": "200"})
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.output.strip().splitlines()[-1]

    fetched = runner.invoke(app, ["fetch", job_id], env={"COLUMNS": "200"})
    assert fetched.exit_code == 0, fetched.output
    assert "1 jobs (1 stored)" in fetched.output

    exported = runner.invoke(app, ["results", job_id, "--format", "json"])
    assert exported.exit_code == 0, exported.output
    rows = json.loads(exported.output)
    expected = [r["expected"] for r in json.loads(regions.read_text())["regions"]]
    assert [row["text"] for row in rows] == expected
    assert rows[0]["region_name"] == "surname"

    out = ocrflow_env / "results.csv"
    written = runner.invoke(app, ["results", "--format", "csv", "--output", str(out)])
    assert written.exit_code == 0, written.output
    assert [row["text"] for row in csv.DictReader(io.StringIO(out.read_text()))] == expected

    table = runner.invoke(app, ["results", job_id], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "JOHN ALBERT" in table.output


def test_submit_with_region_arguments(ocrflow_env: Path) -> None:
    image = SAMPLES / "id-card.png"
    done = runner.invoke(
        app, ["submit", str(image), "-r", "322,157,120,40", "--result-type", "Hocr"]
    )
    assert done.exit_code == 0, done.output
    job_id = done.output.strip().splitlines()[-1]
    fetched = runner.invoke(app, ["fetch"], env={"COLUMNS": "200"})  # every unfinished job
    assert fetched.exit_code == 0, fetched.output
    exported = runner.invoke(app, ["results", job_id, "--format", "json"])
    (row,) = json.loads(exported.output)
    assert (row["kind"], row["text"]) == ("hocr", "SMITH")
