"""Every user error of the command line is one clear line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ocrflow.cli.orphans import pid_alive
from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import free_port, serve_in_thread
from ocrflow.emulator.settings import EmulatorSettings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
GUID = "b7162f77-bf10-407d-86de-ee255e422ca7"


def ocrflow(
    *args: str,
    tmp_path: Path,
    base_url: str | None = None,
    ledger_url: str | None = None,
    credentials: tuple[str, str] = ("ocrflow-demo", "ocrflow-demo-secret"),
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OCRFLOW_CLIENT_ID": credentials[0],
        "OCRFLOW_CLIENT_SECRET": credentials[1],
        "OCRFLOW_LEDGER_URL": ledger_url or f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "OCRFLOW_BASE_URL": base_url or f"http://127.0.0.1:{free_port()}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("OCRFLOW_DEBUG", None)
    env.pop("PREFECT_API_URL", None)  # no server here: what a first-time user has
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "ocrflow.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_missing_image_file(tmp_path: Path) -> None:
    done = ocrflow("submit", "nowhere.png", "--region", "1,2,30,40", tmp_path=tmp_path)
    assert_one_line_error(done, "image not found: nowhere.png")


def test_missing_regions_file(tmp_path: Path) -> None:
    done = ocrflow("submit", "--regions", "nowhere.json", tmp_path=tmp_path)
    assert_one_line_error(done, "cannot read regions file nowhere.json")


@pytest.mark.parametrize(
    ("region", "fragment"),
    [("1,2,3", "expected x,y,width,height"), ("a,b,c,d", "bad region"), ("1,2,0,4", "above 0")],
)
def test_bad_region(tmp_path: Path, region: str, fragment: str) -> None:
    image = SAMPLES / "id-card.png"
    done = ocrflow("submit", str(image), "--region", region, tmp_path=tmp_path)
    assert_one_line_error(done, fragment)


def test_no_region_at_all(tmp_path: Path) -> None:
    done = ocrflow("submit", str(SAMPLES / "id-card.png"), tmp_path=tmp_path)
    assert_one_line_error(done, "give --region x,y,width,height for an image")


def test_unknown_job_id(tmp_path: Path) -> None:
    done = ocrflow("results", GUID, tmp_path=tmp_path)
    assert_one_line_error(done, f"job {GUID} is not in the ledger")


def test_malformed_job_id(tmp_path: Path) -> None:
    done = ocrflow("fetch", "../../etc/passwd", tmp_path=tmp_path)
    assert_one_line_error(done, "not a job id")


def test_emulator_not_running(tmp_path: Path) -> None:
    done = ocrflow("fetch", GUID, tmp_path=tmp_path)
    assert_one_line_error(done, "cannot reach the OCR service")
    assert "is the emulator running?" in done.stderr
    done = ocrflow("submit", "--regions", str(SAMPLES / "id-card.regions.json"), tmp_path=tmp_path)
    assert_one_line_error(done, "cannot reach the OCR service")


def test_table_cannot_go_to_a_file(tmp_path: Path) -> None:
    done = ocrflow("results", "--output", "out.txt", tmp_path=tmp_path)
    assert_one_line_error(done, "use --format json or csv")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OCRFLOW_MAX_ATTEMPTS=0\n")
    done = ocrflow("results", tmp_path=tmp_path)
    assert_one_line_error(done, "bad setting OCRFLOW_MAX_ATTEMPTS")


def _card_file(tmp_path: Path, image: Path, rect: dict[str, int] | None = None) -> Path:
    import json

    document = json.loads((SAMPLES / "id-card.regions.json").read_text())
    document["image"] = str(image)
    if rect is not None:
        document["regions"][0]["rect"] = rect
    path = tmp_path / "card.regions.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        ("outside", "reaches outside the"),
        ("text", "is not an image"),
        ("truncated", "cannot be decoded"),
        ("inverted", "top-left must be above and left of bottom-right"),
    ],
)
def test_input_that_must_fail_is_refused_before_anything_is_sent(
    tmp_path: Path, make: str, fragment: str
) -> None:
    image = SAMPLES / "id-card.png"
    rect = None
    if make == "outside":
        rect = {"topLeftX": 5000, "topLeftY": 10, "bottomRightX": 5100, "bottomRightY": 40}
    elif make == "inverted":
        rect = {"topLeftX": 100, "topLeftY": 40, "bottomRightX": 10, "bottomRightY": 10}
    elif make == "text":
        image = tmp_path / "scan.png"
        image.write_text("this is a text file, not a PNG\n")
    elif make == "truncated":
        image = tmp_path / "half.png"
        data = (SAMPLES / "id-card.png").read_bytes()
        image.write_bytes(data[: len(data) // 2])
    done = ocrflow("submit", str(_card_file(tmp_path, image, rect)), tmp_path=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, fragment)


@pytest.mark.parametrize(
    ("setting", "value", "fragment"),
    [
        ("OCRFLOW_WINDOW", "abc", "OCRFLOW_WINDOW: Input should be a valid integer"),
        (
            "OCRFLOW_MAX_ATTEMPTS",
            "0",
            "OCRFLOW_MAX_ATTEMPTS: Input should be greater than or equal to 1",
        ),
        (
            "OCRFLOW_POLL_DEADLINE_S",
            "90000",
            "OCRFLOW_POLL_DEADLINE_S: Input should be less than 86400",
        ),
    ],
)
def test_a_bad_setting_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(setting, value)
    done = ocrflow("fetch", tmp_path=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, fragment)


def test_a_ledger_password_is_never_printed(tmp_path: Path) -> None:
    password = "Ledger-Pw-7f3Kq"
    url = f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{free_port()}/x"
    regions = str(SAMPLES / "id-card.regions.json")
    for args in (("results", GUID), ("results",), ("fetch",), ("submit", regions)):
        done = ocrflow(*args, tmp_path=tmp_path, ledger_url=url)
        assert_one_line_error(done, "cannot open the ledger postgresql+asyncpg://postgres:***@")
        assert password not in done.stdout + done.stderr


def _regions_file(tmp_path: Path, document: object) -> Path:
    import json

    path = tmp_path / "bad.regions.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


RECT = {"topLeftX": 10, "topLeftY": 10, "bottomRightX": 100, "bottomRightY": 40}


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (
            {"image": "x.png", "regions": [{"rect": {**RECT, "bottomRightY": None}}]},
            "regions[0].rect.bottomRightY: must be a whole number",
        ),
        (
            {
                "image": "x.png",
                "regions": [{"rect": {k: v for k, v in RECT.items() if k != "bottomRightY"}}],
            },
            "regions[0].rect.bottomRightY: missing",
        ),
        (
            {"image": "x.png", "regions": [{"rect": {**RECT, "topLeftX": 12.5}}]},
            "topLeftX: must be a whole number of pixels, not 12.5",
        ),
        (
            {"image": "x.png", "regions": [{"rect": {**RECT, "topLeftY": 90}}]},
            "top-left must be above and left of bottom-right",
        ),
        (
            {"image": "x.png", "regions": [{"rect": RECT, "nmae": "surname"}]},
            "unknown key(s) 'nmae'",
        ),
        (
            {"image": "x.png", "settings": {"resultTyp": "Pdf"}, "regions": [{"rect": RECT}]},
            "unknown setting(s) 'resultTyp'",
        ),
        ({"image": "x.png", "region": [{"rect": RECT}]}, "unknown key(s) 'region'"),
        ("[" * 100000 + "]" * 100000, "nested too deeply to be a regions file"),
        (
            {"image": "x.png", "regions": [{"rect": RECT, "expected": [[[[[[[[["deep"]]]]]]]]]}]},
            "nested deeper than 8 levels",
        ),
    ],
    ids=[
        "null corner",
        "missing corner",
        "float",
        "inverted",
        "unknown region key",
        "unknown setting",
        "unknown file key",
        "deep JSON",
        "deep value",
    ],
)
def test_a_bad_regions_file_is_one_line_naming_the_field(
    tmp_path: Path, document: object, fragment: str
) -> None:
    done = ocrflow("submit", str(_regions_file(tmp_path, document)), tmp_path=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, fragment)
    assert "bad.regions.json" in done.stderr


def test_stored_text_cannot_drive_the_terminal() -> None:
    import io

    from rich.console import Console

    from ocrflow.cli.output import results_table
    from ocrflow.ledger import ResultRecord

    hostile = ResultRecord(
        entry_index=0,
        region=0,
        region_name="name\x1b[2J[bold red]",
        wire_type="Text",
        kind="text",
        text="SMITH\x1b]0;owned\x07",
        structured=None,
        file_path=None,
        error=None,
        warnings=[],
        job_id=GUID,
    )
    screen = io.StringIO()
    Console(file=screen, width=200, color_system=None).print(results_table([hostile]))
    shown = screen.getvalue()
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "name\\x1b[2J[bold red]" in shown  # escaped, and the markup printed as text
    assert "SMITH\\x1b]0;owned\\x07" in shown


def test_sweep_interval_without_a_server_says_where_to_point(tmp_path: Path) -> None:
    done = ocrflow("sweep-interval", "60", tmp_path=tmp_path)
    assert_one_line_error(done, "no Prefect server to change: set PREFECT_API_URL")
    api = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    done = ocrflow("sweep-interval", "60", tmp_path=tmp_path, extra_env={"PREFECT_API_URL": api})
    assert_one_line_error(done, f"cannot reach the Prefect server at {api}")


def test_setup_alerts_without_a_server_says_where_to_point(tmp_path: Path) -> None:
    done = ocrflow("setup-alerts", "--webhook-url", "http://127.0.0.1:9/hook", tmp_path=tmp_path)
    assert_one_line_error(done, "no Prefect server for the alerts: start the stack")
    assert not (tmp_path / "var" / "local-server").exists()  # nothing started for nothing


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [
        (("", ""), "set OCRFLOW_CLIENT_ID and OCRFLOW_CLIENT_SECRET"),
        (("ocrflow-demo", "  "), "set OCRFLOW_CLIENT_SECRET ("),
    ],
)
def test_missing_credentials_are_one_line_before_anything_starts(
    tmp_path: Path, credentials: tuple[str, str], missing: str
) -> None:
    done = ocrflow("fetch", tmp_path=tmp_path, credentials=credentials)
    assert done.returncode == 2
    assert_one_line_error(done, f"no credentials: {missing}")


def test_a_command_leaves_on_time_when_prefect_cannot_deliver_its_queues(tmp_path: Path) -> None:
    """Prefect drains its queued events and logs at exit; against an API gone for good that
    takes hours. The command waits OCRFLOW_EXIT_WAIT_S, then leaves with one line."""
    script = (
        "import time, ocrflow.cli.shutdown as shutdown\n"
        "shutdown.drain_prefect_queues = lambda: time.sleep(3600)  # an API that never answers\n"
        "shutdown.leave(3, lambda line: print('error:', line, flush=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "OCRFLOW_EXIT_WAIT_S": "0.5",
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
        },
    )
    assert done.returncode == 3  # the command's own exit code, kept
    (line,) = done.stdout.strip().splitlines()
    assert "did not take this run's last events and logs within 0.5 s" in line
    assert "the results are in the ledger" in line


def test_ctrl_c_while_the_stack_starts_stops_what_started_and_says_so(tmp_path: Path) -> None:
    """SIGINT (what Ctrl-C sends) once the server answers, while the rest is starting."""
    home, port = tmp_path / "stack", free_port()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ocrflow.cli",
            "serve",
            "--home",
            str(home),
            "--port",
            str(port),
            "--emulator-port",
            str(free_port()),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(1200):  # at most 2 minutes for the server to answer
            if serve.poll() is not None or _answers(f"http://127.0.0.1:{port}/api/health"):
                break
            time.sleep(0.1)
        assert serve.poll() is None, serve.communicate()
        serve.send_signal(signal.SIGINT)
        _, err = serve.communicate(timeout=90)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert serve.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: what had started of the stack was stopped; nothing is left running"
    ]
    started = json.loads((home / "pids.json").read_text())
    assert "server" in started
    assert not any(pid_alive(pid) for pid in started.values()), started
    assert not _answers(f"http://127.0.0.1:{port}/api/health")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_commands_keep_one_local_prefect_server_visible_and_stoppable(tmp_path: Path) -> None:
    """With no server named, the first command starts one in the background and says so; the
    next uses it; `status` shows it; `stop` stops it."""
    app = create_app(
        EmulatorSettings.model_validate({"simulate": True, "processing": {"seconds": 0.2}})
    )
    env = {"OCRFLOW_LOCAL_SERVER": "1", "PREFECT_HOME": str(tmp_path / "prefect")}
    with serve_in_thread(app) as url:

        def recognize() -> subprocess.CompletedProcess[str]:
            card = str(SAMPLES / "id-card.regions.json")
            return ocrflow("recognize", card, tmp_path=tmp_path, base_url=url, extra_env=env)

        try:
            first = recognize()
            assert first.returncode == 0, first.stderr
            assert "starting a local Prefect server" in first.stderr
            second = recognize()
            assert second.returncode == 0, second.stderr
            assert "starting a local Prefect server" not in second.stderr  # the same one
            # Both ran in the background runner started beside the server: its answer is
            # what the command printed (the stored entries), and it is listed and stopped.
            assert "5 stored result entries" in second.stdout
            assert app.state.emulator.counts["submit_RecognizeRegions"] == 2
            shown = ocrflow("status", tmp_path=tmp_path, extra_env=env)
            assert "local Prefect server" in shown.stdout
            assert "runner-" in shown.stdout
            pids = json.loads((tmp_path / "var" / "local-server" / "pids.json").read_text())
            runners = [pid for name, pid in pids.items() if name.startswith("runner-")]
            assert len(runners) == 1, pids  # one runner for the same settings and code
            assert pid_alive(pids["server"])
            assert pid_alive(runners[0])
        finally:
            stopped = ocrflow("stop", tmp_path=tmp_path, extra_env=env)
    assert "local server" in stopped.stdout
    assert "local runner-" in stopped.stdout
    assert not pid_alive(pids["server"])
    assert not pid_alive(runners[0])
    assert "nothing of ocrflow's" in ocrflow("status", tmp_path=tmp_path, extra_env=env).stdout


@pytest.mark.parametrize("command", [["fetch"], ["submit", str(SAMPLES / "id-card.regions.json")]])
def test_refused_credentials_are_one_line_before_anything_starts(
    tmp_path: Path, command: list[str]
) -> None:
    app = create_app(EmulatorSettings.model_validate({"simulate": True}))
    with serve_in_thread(app) as url:
        done = ocrflow(
            *command, tmp_path=tmp_path, base_url=url, credentials=("ocrflow-demo", "wrong")
        )
        posts = app.state.emulator.counts["submit_RecognizeRegions"]
    assert done.returncode == 2
    assert_one_line_error(
        done, "rejected the credentials of client id 'ocrflow-…' (invalid_client)"
    )
    assert "wrong" not in done.stderr
    assert posts == 0  # nothing paid for
