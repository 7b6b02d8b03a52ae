"""Screenshots of what a person sees of ocrflow's runs in the Prefect UI (`make ui-shots`).

Starts a Prefect server with its UI, the emulator and three commands on 127.0.0.1 (a pipeline
on the samples, a fetch of a job the service does not know, a sweep with nothing to do), then
takes headless Chromium screenshots of the runs list, the fetch run's artifacts and a status
check's logs into docs/img/ui-*.png. Needs Debian's `chromium` (the make target installs it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from bench.stack import prefect_server
from ocrflow.emulator.server import free_port
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
UNKNOWN_JOB = "00000000-0000-4000-8000-00000000abcd"


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs chromium: `apt-get install -y chromium` (make ui-shots does)")
    work = Path(tempfile.mkdtemp(prefix="ocrflow-ui-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OCRFLOW_", "PREFECT_"))}
    emulator = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        # 3 s a job, as the service takes: the status checks poll a few times ("not ready")
        [sys.executable, "-m", "ocrflow.emulator", "--port", str(port), "--processing-s", "3"],
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with prefect_server(work) as api:
            env = {
                **clean,
                "PREFECT_API_URL": api,
                "OCRFLOW_LOCAL_SERVER": "0",
                "OCRFLOW_BASE_URL": base,
                "OCRFLOW_CLIENT_ID": DEMO_CLIENT_ID,
                "OCRFLOW_CLIENT_SECRET": DEMO_CLIENT_SECRET,
                "OCRFLOW_LEDGER_URL": f"sqlite+aiosqlite:///{work / 'ledger.db'}",
                "OCRFLOW_RESULTS_DIR": str(work / "results"),
            }
            samples = sorted(str(p) for p in (ROOT / "samples").glob("*.regions.json"))
            ocrflow(env, work, "recognize", *samples)
            ocrflow(env, work, "fetch", UNKNOWN_JOB, ok=False)
            ocrflow(env, work, "fetch")
            time.sleep(3)  # the server records the last task runs and events
            ui = api.removesuffix("/api")
            artifact = f"{ui}/artifacts/artifact"
            fetch_run = _flow_run(api, "fetch-results", with_tasks="check-status")
            check = _task_run(api, fetch_run, "check-status")
            shots = {  # the file, the page, a text that shows its data has loaded
                "ui-runs.png": (f"{ui}/runs", "fetch-results"),
                "ui-fetch-artifacts.png": (
                    f"{ui}/runs/flow-run/{fetch_run}?tab=Artifacts",
                    "ocrflow-fetch-outcomes",
                ),
                "ui-check-status-logs.png": (
                    f"{ui}/runs/task-run/{check}?tab=Logs",
                    "not ready yet",
                ),
                "ui-outcomes-table.png": (
                    f"{artifact}/{_artifact(api, fetch_run, 'ocrflow-fetch-outcomes')}",
                    "application-form.png",
                ),
                "ui-summary.png": (
                    f"{artifact}/{_artifact(api, fetch_run, 'ocrflow-fetch-summary')}",
                    "Stored",
                ),
            }
            OUT.mkdir(parents=True, exist_ok=True)
            for name, (url, shows) in shots.items():
                _screenshot(chromium, url, OUT / name, shows)
                print(f"{OUT / name}  {url}")
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def ocrflow(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and command
        [sys.executable, "-m", "ocrflow.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if ok and done.returncode != 0:
        raise RuntimeError(f"ocrflow {args[0]} failed: {done.stderr[-2000:]}")


def _flow_run(api: str, flow_name: str, with_tasks: str) -> str:
    """The latest run of ``flow_name`` that has a task run named ``with_tasks…``."""
    runs = _post(api, "/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})
    for run in sorted(runs, key=lambda r: r["created"], reverse=True):
        if _task_runs(api, run["id"], with_tasks):
            return str(run["id"])
    raise RuntimeError(f"no {flow_name} run with a {with_tasks} task run")


def _artifact(api: str, flow_run: str, key: str) -> str:
    body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run]}}}
    return str(_post(api, "/artifacts/filter", body)[0]["id"])


def _task_run(api: str, flow_run: str, prefix: str) -> str:
    """The task run of that name that ran most often (a status check that polled most)."""
    runs = _task_runs(api, flow_run, prefix)
    return str(max(runs, key=lambda run: run["run_count"])["id"])


def _task_runs(api: str, flow_run: str, prefix: str) -> list[dict[str, Any]]:
    body = {
        "flow_runs": {"id": {"any_": [flow_run]}},
        "task_runs": {"name": {"like_": prefix}},
    }
    return [r for r in _post(api, "/task_runs/filter", body) if r["name"].startswith(prefix)]


def _post(api: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = httpx.post(f"{api}{path}", json=body, timeout=30)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()
    return found


def _screenshot(chromium: str, url: str, path: Path, shows: str) -> None:
    """A 1440x1000 shot of ``url`` once its text includes ``shows`` (the page's data loaded);
    taken anyway after 30 s, with a warning and what the page said."""
    profile = Path(tempfile.mkdtemp(prefix="ocrflow-chromium-"))
    browser = subprocess.Popen(  # noqa: S603 - Debian's chromium, headless, 127.0.0.1 pages
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = _devtools_port(profile)
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(page for page in pages if page["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            cdp = _Cdp(socket)
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                width=1440,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            cdp.call("Page.navigate", url=url.split("?tab=", maxsplit=1)[0])
            tab = url.split("?tab=")[1] if "?tab=" in url else None
            text = ""
            for _ in range(150):  # up to 30 s for the page to fetch and show its data
                if tab is not None:  # the UI opens on its first tab: click the one wanted
                    cdp.call("Runtime.evaluate", expression=_CLICK_TAB % json.dumps(tab))
                found = cdp.call("Runtime.evaluate", expression="document.body.innerText")
                text = str(found.get("result", {}).get("value", ""))
                if shows in text:
                    break
                time.sleep(0.2)
            else:
                print(f"warning: {url} never showed {shows!r}; it showed: {text[:600]!r}")
            time.sleep(1.0)  # transitions end
            shot = cdp.call("Page.captureScreenshot", format="png")
            path.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


_CLICK_TAB = """
for (const el of document.querySelectorAll('[role=tab], button, a, li')) {
  if (el.textContent.trim() === %s && el.children.length <= 1) { el.click(); break; }
}
"""


def _devtools_port(profile: Path) -> int:
    for _ in range(150):
        try:
            return int((profile / "DevToolsActivePort").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


class _Cdp:
    """Calls over the Chrome DevTools Protocol, one at a time (events are skipped)."""

    def __init__(self, socket: Connection) -> None:
        self.socket, self.next_id = socket, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result


if __name__ == "__main__":
    main()
