"""The background runner of `recognize`: what ties a runner to a command, and who it answers.
(Its whole path, spawned beside the local server and used by a second command, is in
test_cli_errors.py::test_commands_keep_one_local_prefect_server_visible_and_stoppable.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ocrflow.cli.runner import TOKEN_HEADER, fingerprint
from ocrflow.cli.runner_app import create_runner_app


def test_a_changed_setting_gets_a_runner_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRFLOW_BASE_URL", "http://127.0.0.1:8080")
    first = fingerprint()
    monkeypatch.setenv("HOME_PAGE_OF_SOMETHING_ELSE", "x")  # not a setting of ours
    assert fingerprint() == first
    monkeypatch.setenv("OCRFLOW_BASE_URL", "http://127.0.0.1:8081")
    assert fingerprint() != first
    monkeypatch.setenv("OCRFLOW_BASE_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    assert fingerprint() != first


def test_a_different_folder_gets_a_runner_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = fingerprint()
    monkeypatch.chdir(tmp_path)
    assert fingerprint() != first


async def test_the_runner_answers_only_with_its_token_and_checks_its_input() -> None:
    transport = httpx.ASGITransport(app=create_runner_app("s3cret-token"))
    async with httpx.AsyncClient(transport=transport, base_url="http://runner") as client:
        assert (await client.get("/health")).status_code == 200
        body = {"specs": [], "width": 100, "color": False}
        assert (await client.post("/recognize", json=body)).status_code == 403
        wrong = await client.post("/recognize", json=body, headers={TOKEN_HEADER: "guess"})
        assert wrong.status_code == 403
        bad = await client.post(
            "/recognize",
            json={"specs": [{"image": "a.png", "regions": []}], "width": 100, "color": False},
            headers={TOKEN_HEADER: "s3cret-token"},
        )
    assert bad.status_code == 400  # a job with no region is refused before anything runs
    assert "regions" in bad.text


def test_a_runner_that_cannot_start_leaves_the_run_to_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocrflow.cli import main, runner
    from ocrflow.cli.localserver import LocalServer

    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid is gone once waited for
    gone.wait()
    dead = runner.Runner("runner-x", "http://127.0.0.1:9", "t", gone.pid, tmp_path / "x.log")
    monkeypatch.setattr(main, "_prefect_server", lambda: LocalServer("http://127.0.0.1:9/api"))
    monkeypatch.setattr(main, "_ready", lambda server: None)  # as if the server answered
    monkeypatch.setattr(runner, "use_runner", lambda home: dead)
    assert main._background_runner() is None  # recognize then runs in its own process
    said = capsys.readouterr().err
    assert "background runner exited while starting" in said
    assert "running in this process instead" in said


def test_a_server_started_again_keeps_the_runners_recorded(tmp_path: Path) -> None:
    """Else a runner outliving its server would vanish from `status` and `stop`."""
    from ocrflow.cli.stackfile import record_pid, recorded_pids

    record_pid(tmp_path, "server", 101)
    record_pid(tmp_path, "runner-abc", 102)
    record_pid(tmp_path, "server", 103)  # the server died and a command started another
    assert recorded_pids(tmp_path) == {"server": 103, "runner-abc": 102}
