"""Every paid job recorded: batch submissions killed at random moments (SIGKILL, SIGINT) and a
ledger database restarted mid-submit, then the service's own job list compared with the ledger.

A job the service received is *recorded* when the ledger has its id, and *visible* when the
ledger holds an unresolved submission (``sending``/``unknown``, with the image and the reason)
of the same image: the run died between the POST and the record. Anything else is
*unrecorded*, a paid job lost: there must be none.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from prefect.settings import get_current_settings

from ocrflow.flows.pipeline import summary_of
from ocrflow.flows.submit_regions import SubmitSummary, submit_regions
from ocrflow.jobspec import load_regions_file
from ocrflow.ledger import Ledger, SubmissionState, image_digest
from ocrflow.settings import OcrflowSettings
from tests.pgproxy import FlakyProxy, proxied_database
from tests.reliability.conftest import Emulator, Report

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 30
KILLS = 20  # 12 SIGKILL, 8 SIGINT, at random moments of the sending


def make_batch(folder: Path, count: int, tag: str) -> Path:
    """``count`` distinct small PNGs and their regions files (simulation mode reads no text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        image = Image.new("L", (320, 60), color=255)
        ImageDraw.Draw(image).text((10, 20), f"{tag} {number}", fill=0)
        image.putpixel((number % 320, 59), number % 250)  # distinct bytes, distinct digests
        image.save(folder / f"scan-{number:03}.png")
        regions = {
            "image": f"scan-{number:03}.png",
            "regions": [
                {
                    "order": 0,
                    "rect": {
                        "topLeftX": 5,
                        "topLeftY": 10,
                        "bottomRightX": 300,
                        "bottomRightY": 50,
                    },
                }
            ],
        }
        (folder / f"scan-{number:03}.regions.json").write_text(json.dumps(regions))
    return folder


@dataclass
class Audit:
    """The service's jobs against the ledger."""

    received: int
    recorded: int  # the ledger has the job's id
    visible: int  # only an unresolved submission of its image stands for it
    unrecorded: int  # neither: a paid job lost


async def audit(emulator: Emulator, ledger_url: str) -> Audit:
    ledger = await Ledger.open(ledger_url)
    try:
        known = {job.job_id for job in await ledger.jobs()}
        open_states = [SubmissionState.SENDING, SubmissionState.UNKNOWN]
        unresolved = Counter(s.image_sha256 for s in await ledger.submissions(open_states))
    finally:
        await ledger.close()
    received = emulator.state.jobs.received()
    missing = Counter(job["image_sha256"] for job in received if job["id"] not in known)
    visible = sum(min(n, unresolved[sha]) for sha, n in missing.items())
    unrecorded = sum(max(n - unresolved[sha], 0) for sha, n in missing.items())
    return Audit(len(received), len(received) - sum(missing.values()), visible, unrecorded)


def submit_child(folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ocrflow submit FOLDER`` in a process of its own; its stderr goes to FOLDER/stderr."""
    with (folder / "stderr").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "ocrflow.cli", "submit", str(folder)],
            cwd=ROOT,
            env={**env, "NO_COLOR": "1", "COLUMNS": "300"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )


async def test_batch_submissions_killed_at_random_leave_no_paid_job_unrecorded(
    env: Path, emulator: Emulator, report: Report
) -> None:
    emulator.set_faults(latency_s=0.1)  # sending takes about a second: room to kill mid-way
    rng = random.Random(20261130)  # noqa: S311 - reproducible moments, not security
    child_env = {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "OCRFLOW_CONCURRENCY": "8",
    }
    ledger_url = OcrflowSettings().ledger_url
    kills = ["SIGKILL"] * 12 + ["SIGINT"] * 8
    rng.shuffle(kills)
    rows: list[tuple[str, int, int, int]] = []
    last = Audit(0, 0, 0, 0)
    for round_number, how in enumerate(kills):
        folder = make_batch(env / f"batch-{round_number}", IMAGES, f"r{round_number}")
        before = emulator.count("submit_RecognizeRegions")
        kill_after = before + rng.randint(1, IMAGES - 2)
        child = submit_child(folder, child_env)
        try:
            for _ in range(12000):  # at most 60 s: until the chosen number of POSTs arrived
                if (
                    emulator.count("submit_RecognizeRegions") >= kill_after
                    or child.poll() is not None
                ):
                    break
                await asyncio.sleep(0.005)
            assert child.poll() is None, "the submission ended before it could be stopped"
            os.kill(child.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
            if how == "SIGINT":  # it stops sending, records what was sent, and ends by itself
                for _ in range(600):
                    if child.poll() is not None:
                        break
                    await asyncio.sleep(0.1)
                assert child.poll() is not None, "SIGINT did not end the submission in 60 s"
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        posted = emulator.count("submit_RecognizeRegions") - before
        if how == "SIGINT":  # interrupted: it ends by itself, with the shell's code for it
            assert child.returncode == 130, (child.returncode, posted)
            said = (folder / "stderr").read_text().strip().splitlines()
            assert said[-1].startswith("interrupted by SIGINT: "), said  # what went, what not
        result = await audit(emulator, ledger_url)
        assert result.unrecorded == 0, (how, result)
        # This round's share: what the audit counts now beyond what it counted before it.
        received = result.received - last.received  # POSTs still under way at the kill count
        rows.append((how, received, result.recorded - last.recorded, result.visible - last.visible))
        last = result
        if how == "SIGINT":  # nothing left mid-air: every sent image recorded with its id
            ledger = await Ledger.open(ledger_url)
            try:
                mid_air = await ledger.submissions([SubmissionState.SENDING])
            finally:
                await ledger.close()
            ours = {image_digest(path.read_bytes()) for path in folder.glob("*.png")}
            assert [s for s in mid_air if s.image_sha256 in ours] == []
    final = await audit(emulator, ledger_url)
    assert final.unrecorded == 0
    assert final.recorded + final.visible == final.received
    by_kind = {kind: [r for r in rows if r[0] == kind] for kind in ("SIGKILL", "SIGINT")}
    for kind, kind_rows in by_kind.items():
        posted = sum(r[1] for r in kind_rows)
        visible = sum(r[3] for r in kind_rows)
        assert sum(r[2] for r in kind_rows) + visible == posted
        report.add(
            case=f"batch submit killed with {kind} at random moments ({len(kind_rows)} times)",
            injected=f"{IMAGES} images a batch",
            jobs=posted,
            outcome=f"{posted - visible} recorded with their id, {visible} visible as "
            "unresolved submissions (image and reason kept); 0 unrecorded",
            lost=0,
            duplicated=0,
        )
    assert len(rows) == KILLS


# --- the ledger's database restarted mid-submit ------------------------------------------


@pytest.fixture
def restartable_ledger() -> Iterator[tuple[str, FlakyProxy]]:
    with proxied_database("restart") as ledger:
        yield ledger


async def test_a_ledger_restart_mid_submit_leaves_no_paid_job_unrecorded(
    env: Path,
    emulator: Emulator,
    report: Report,
    monkeypatch: pytest.MonkeyPatch,
    restartable_ledger: tuple[str, FlakyProxy],
) -> None:
    url, proxy = restartable_ledger
    monkeypatch.setenv("OCRFLOW_LEDGER_URL", url)
    monkeypatch.setenv("OCRFLOW_CONCURRENCY", "8")
    emulator.set_faults(latency_s=0.2)  # about 3 s of sending for 120 images
    folder = make_batch(env / "restart", 120, "restart")
    specs = [load_regions_file(path) for path in sorted(folder.glob("*.regions.json"))]

    async def restart_when_a_third_is_sent() -> None:
        for _ in range(6000):  # at most 60 s
            if emulator.count("submit_RecognizeRegions") >= 40:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(proxy.restart, 5.0)

    restart = asyncio.create_task(restart_when_a_third_is_sent())
    state = await submit_regions(specs, return_state=True)
    await restart
    summary = await summary_of(state, SubmitSummary)
    result = await audit(emulator, url)
    assert result.received == 120
    assert result.unrecorded == 0
    assert result.recorded == 120, summary.headline()  # the writes waited the restart out
    assert state.is_completed(), summary.headline()
    report.add(
        case="the ledger's database restarted (5 s) mid-submit",
        injected="120 images, connections cut at the 40th POST",
        jobs=120,
        outcome=f"{result.recorded} recorded with their id; 0 unrecorded",
        lost=0,
        duplicated=0,
    )
