"""The command line's happy path: submit, fetch and export, under the Prefect test harness."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocrflow.cli.main import app
from tests.flows.conftest import SAMPLES

runner = CliRunner()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The commands quiet Prefect through os.environ, as a CLI process may; run in-process
    here, that must not outlive the test (it silenced every later stack's logs)."""
    saved, raising = dict(os.environ), logging.raiseExceptions
    yield
    os.environ.clear()
    os.environ.update(saved)
    logging.raiseExceptions = raising


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

    listed = runner.invoke(app, ["jobs"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "1 job(s): 1 stored" in listed.output
    row = next(line for line in listed.output.splitlines() if job_id in line)
    assert "id-card.png" in row
    assert "0h00m" in row
    unfinished = runner.invoke(app, ["jobs", "--state", "submitted", "--state", "failed"])
    assert unfinished.exit_code == 0, unfinished.output
    assert "0 job(s)" in unfinished.output
    assert job_id not in unfinished.output


def test_version_and_state_choices_are_shown() -> None:
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0
    assert shown.output.startswith("ocrflow ")
    refused = runner.invoke(app, ["jobs", "--state", "bogus"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2
    assert "'submitted'" in refused.output
    assert "'expired'" in refused.output


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


def test_a_files_settings_are_sent_as_written_and_every_file_is_submitted(
    ocrflow_env: Path,
) -> None:
    card = json.loads((SAMPLES / "id-card.regions.json").read_text())
    card["image"] = str(SAMPLES / "id-card.png")
    card["settings"] = {**card.get("settings", {}), "resultType": "TextAndPdf"}
    card["regions"] = card["regions"][:2]
    first, second = ocrflow_env / "a.regions.json", ocrflow_env / "b.regions.json"
    first.write_text(json.dumps(card))
    second.write_text(json.dumps({**card, "settings": {"resultType": "Text"}}))

    done = runner.invoke(app, ["submit", str(first), str(second)], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    lines = [line.split() for line in done.output.strip().splitlines()[-2:]]
    assert [Path(path).name for _, path in lines] == ["id-card.png", "id-card.png"]
    assert len({job_id for job_id, _ in lines}) == 2  # both files went out, as two jobs

    fetched = runner.invoke(app, ["fetch", *(job_id for job_id, _ in lines)])
    assert fetched.exit_code == 0, fetched.output
    rows = json.loads(runner.invoke(app, ["results", "--format", "json"]).output)
    by_job: dict[str, list[str]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append(f"{row['region']}:{row['wire_type']}")
    kinds = sorted(sorted(entries) for entries in by_job.values())
    # The TextAndPdf file: a Text and a Pdf entry for each region; the Text file: Text only.
    assert kinds == [["0:Pdf", "0:Text", "1:Pdf", "1:Text"], ["0:Text", "1:Text"]]


def test_the_command_line_replaces_a_files_setting_only_when_given(ocrflow_env: Path) -> None:
    card = json.loads((SAMPLES / "id-card.regions.json").read_text())
    card["image"] = str(SAMPLES / "id-card.png")
    card["settings"] = {"resultType": "Hocr"}
    card["regions"] = card["regions"][:1]
    folder = ocrflow_env / "batch"
    folder.mkdir()
    (folder / "card.regions.json").write_text(json.dumps(card))
    done = runner.invoke(app, ["submit", str(folder), "--result-type", "Text"])
    assert done.exit_code == 0, done.output
    fetched = runner.invoke(app, ["fetch"])
    assert fetched.exit_code == 0, fetched.output
    (row,) = json.loads(runner.invoke(app, ["results", "--format", "json"]).output)
    assert row["wire_type"] == "Text"
