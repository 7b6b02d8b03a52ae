"""ocrflow's wheel installs one namespace, ``ocrflow``, and works beside a user's own project.

The wheel is built from this checkout and installed into a fresh virtual environment. A user
project with its own ``flows/`` and ``tasks/`` packages runs a flow of its own that calls its
own task, ocrflow's public tasks (submit, status check, decode, process) with no runtime
opened first, the credentials block's ``get_client()``, and the ``fetch-results`` subflow,
against the wheel's emulator, on Prefect's ephemeral server.

Offline: the wheel is built without build isolation and installed without dependencies; the
fresh environment sees this environment's installed dependencies through a ``.pth`` line (the
editable install of this checkout is not among them: its import hook is not loaded).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrflow.cli.stackfile import wait_until_answering
from ocrflow.emulator.engine import tessdata_path
from ocrflow.emulator.server import free_port
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "ocrflow", "flows", "tasks")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built from a copy (the links under ocrflow/ kept)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", work, source],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (built,) = work.glob("ocrflow-*.whl")
    return built


def test_the_wheel_holds_the_ocrflow_namespace_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"ocrflow"}
    for module in ("flows/fetch_results.py", "tasks/status.py", "cli/main.py", "emulator/app.py"):
        assert f"ocrflow/{module}" in names
    with zipfile.ZipFile(wheel) as archive:
        scripts = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"ocrflow = ocrflow.cli.launch:main" in scripts


@pytest.fixture(scope="module")
def user_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its python."""
    env_dir = tmp_path_factory.mktemp("userenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", env_dir], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return python


USER_TASK = '''
"""The user's own tasks package: it shares its name with ocrflow's source folder."""
from prefect import task


@task
def tidy(texts: list[str]) -> list[str]:
    return [" ".join(text.split()) for text in texts]
'''

USER_FLOW = '''
"""The user's own flow: their task, ocrflow's tasks and subflow, in one run."""
import asyncio
import json
import sys
from pathlib import Path

from prefect import flow

import ocrflow
from ocrflow.flows.fetch_results import fetch_results
from ocrflow.jobspec import load_regions_file
from ocrflow.runtime import open_runtime
from ocrflow.tasks.credentials import OcrflowCredentials, load_settings
from ocrflow.tasks.decoding import CompletedAnswer, decode_results
from ocrflow.tasks.processing import process_by_kind
from ocrflow.tasks.status import check_status
from ocrflow.tasks.submission import submit_job
from tasks.tidy import tidy


@flow
async def read_card(regions_file: str) -> dict[str, object]:
    block = await OcrflowCredentials.aload("ocrflow")
    async with block.get_client() as client:
        await client.check_credentials()
    spec = load_regions_file(Path(regions_file))
    job_id = await submit_job(spec)
    answer = await check_status(job_id)
    decoded = await decode_results("mine", {job_id: CompletedAnswer(answer, len(spec.regions))})
    processed = await process_by_kind("mine", decoded)
    texts = tidy([entry.text or "" for entry in processed[job_id]])
    summary = await fetch_results([job_id])
    async with open_runtime(await load_settings()) as runtime:  # one client for many calls
        again = await check_status(job_id, runtime)
    return {
        "again": [again.task_status.value, len(again.results or [])],
        "snippet": OcrflowCredentials.get_code_example(),  # what the UI shows for the block
        "ocrflow": ocrflow.__file__,
        "tasks": sys.modules["tasks"].__file__,
        "job_id": job_id,
        "texts": texts,
        "stored": [report.outcome.value for report in summary.reports],
    }


async def main() -> None:
    settings = json.loads(sys.argv[2])
    await OcrflowCredentials(**settings).save("ocrflow", overwrite=True)
    print(json.dumps(await read_card(sys.argv[1])))


if __name__ == "__main__":
    asyncio.run(main())
'''


@pytest.fixture
def emulator_url(user_env: Path, tmp_path: Path) -> Iterator[str]:
    """The wheel's emulator, started from the fresh environment."""
    port, log = free_port(), tmp_path / "emulator.log"
    # Tesseract's models came with this environment's dependencies: there, not in the new one.
    env = {**os.environ, "TESSDATA_PREFIX": tessdata_path()}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [user_env, "-m", "ocrflow.emulator", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        alive = lambda: process.poll() is None  # noqa: E731
        wait_until_answering(
            f"{url}/_emulator/faults", "emulator", alive=alive, log=log, timeout_s=60
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_user_flow_calls_ocrflows_tasks_and_subflow(
    user_env: Path, emulator_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    for package, module, text in (
        ("flows", "read_card.py", USER_FLOW),
        ("tasks", "tidy.py", USER_TASK),
    ):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text("")
        (project / package / module).write_text(textwrap.dedent(text))
    regions = json.loads((REPO / "samples" / "id-card.regions.json").read_text())
    shutil.copy2(REPO / "samples" / "id-card.png", project / "id-card.png")
    (project / "card.regions.json").write_text(json.dumps(regions))
    # The credentials come from the block the flow saves; none are in the environment.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OCRFLOW_", "PREFECT_", "ASPOSE_"))
    }
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Prefect's own 20 s for its temporary server to start: too short beside the suite's
        # other half on two cores (seen at 20 s); ocrflow's commands set 120 s for the same.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "OCRFLOW_LEDGER_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "OCRFLOW_RESULTS_DIR": str(tmp_path / "results"),
        "PYTHONPATH": str(project),  # the user's packages, as in their own project
    }
    block = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "base_url": emulator_url,
    }
    done = subprocess.run(
        [user_env, "-m", "flows.read_card", "card.regions.json", json.dumps(block)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    site = Path(user_env).parents[1]
    assert Path(result["ocrflow"]).is_relative_to(site)  # the wheel's, not this checkout's
    assert Path(result["tasks"]).parent == project / "tasks"  # the user's own tasks package
    expected = [
        region["expected"] for region in sorted(regions["regions"], key=lambda r: r["order"])
    ]
    assert result["texts"] == expected
    assert result["stored"] == ["stored"]
    assert result["again"] == ["Completed", len(expected)]  # through a runtime of the user's
    assert "from ocrflow.tasks.credentials import OcrflowCredentials" in result["snippet"]
