"""The background runner of `recognize`: what ties a runner to a command, and who it answers.
(Its whole path, spawned beside the local server and used by a second command, is in
test_cli_errors.py::test_commands_keep_one_local_prefect_server_visible_and_stoppable.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ocrflow_cli.runner import TOKEN_HEADER, fingerprint
from ocrflow_cli.runner_app import create_runner_app


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
