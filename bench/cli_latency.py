"""Time to a result for one image from a terminal: ocrflow's commands beside the vendor SDK.

Every side is a fresh process, as a person at a terminal starts it, against the same emulator
(Tesseract, its default 0.5 s per job) and the same image (samples/id-card.png, 5 regions):

- the SDK: the vendor's `aspose-ocr-cloud` client (token, POST, a GET every 0.1 s);
- ocrflow, cold (new Prefect home): nothing of ours ever ran (its database is created);
- ocrflow, cold: nothing of ours running, the Prefect home of an earlier day kept;
- ocrflow, warm: the next image, with the local Prefect server the first command kept;
- before: the same commands each starting a temporary Prefect server (as before the kept one).

The ocrflow sides time `ocrflow submit` + `ocrflow fetch JOB` and `ocrflow recognize` (one
command that submits and waits in one flow run). Prints a table (medians of 3); writes
bench/results/cli_latency.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ocrflow.emulator.server import free_port
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "id-card.regions.json"
RESULTS = ROOT / "bench" / "results" / "cli_latency.json"
REPEATS = 3

SDK_ROUND_TRIP = r"""
import base64, json, sys, time
import httpx
import aspose_ocr_cloud as sdk
base, sample = sys.argv[1], sys.argv[2]
token = httpx.post(f"{base}/connect/token", data={"grant_type": "client_credentials",
    "client_id": "ocrflow-demo", "client_secret": "ocrflow-demo-secret"}).json()["access_token"]
api = sdk.RecognizeRegionsApi(sdk.ApiClient(sdk.Configuration(host=base, access_token=token)))
document = json.loads(open(sample).read())
regions = [sdk.OCRRegion(order=r["order"], rect=sdk.OCRRect(top_left_x=r["rect"]["topLeftX"],
    top_left_y=r["rect"]["topLeftY"], bottom_right_x=r["rect"]["bottomRightX"],
    bottom_right_y=r["rect"]["bottomRightY"])) for r in document["regions"]]
image = base64.b64encode(open(sample.replace(".regions.json", ".png"), "rb").read()).decode()
body = sdk.OCRRecognizeRegionsBody(image=image, settings=sdk.OCRSettingsRecognizeRegions(
    language=sdk.Language.ENGLISH, result_type=sdk.ResultType.TEXT, regions=regions,
    make_skew_correct=True))
job = api.post_recognize_regions(body)
for _ in range(600):
    answer = api.get_recognize_regions(job)
    if answer.task_status in (sdk.OCRTaskStatus.COMPLETED, sdk.OCRTaskStatus.ERROR):
        break
    time.sleep(0.1)
assert answer.task_status == sdk.OCRTaskStatus.COMPLETED, answer.task_status
print(base64.b64decode(str(answer.results[0].data)).decode())
"""


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Seconds the command took, and what it printed; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and commands
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed: {done.stderr[-2000:]}")
    return took, done.stdout


def ocrflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "ocrflow.cli", *args]


def round_trip(env: dict[str, str], cwd: Path, one_command: bool) -> float:
    """`submit` then `fetch JOB`, or `recognize`: the seconds to the stored result."""
    if one_command:
        took, _ = timed(ocrflow("recognize", str(SAMPLE)), env, cwd)
        return took
    submit_s, out = timed(ocrflow("submit", str(SAMPLE)), env, cwd)
    fetch_s, _ = timed(ocrflow("fetch", out.strip().splitlines()[-1]), env, cwd)
    return submit_s + fetch_s


def side_env(clean: dict[str, str], base: str, home: Path) -> dict[str, str]:
    """A user's environment: the emulator, and a Prefect home and ledger of the side's own."""
    return {
        **clean,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "OCRFLOW_BASE_URL": base,
        "OCRFLOW_CLIENT_ID": DEMO_CLIENT_ID,
        "OCRFLOW_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "OCRFLOW_LEDGER_URL": f"sqlite+aiosqlite:///{home / 'ledger.db'}",
        "OCRFLOW_RESULTS_DIR": str(home / "results"),
    }


def stop(env: dict[str, str], home: Path) -> None:
    """`ocrflow stop`: the local Prefect server the commands kept."""
    subprocess.run(ocrflow("stop"), env=env, cwd=home, capture_output=True, check=False)  # noqa: S603


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ocrflow-latency-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OCRFLOW_", "PREFECT_"))}
    emulator = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "ocrflow.emulator", "--port", str(port)],
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    rows: list[dict[str, object]] = []
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/_emulator/faults", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        sdk = [
            timed([sys.executable, "-c", SDK_ROUND_TRIP, base, str(SAMPLE)], clean, ROOT)[0]
            for _ in range(REPEATS)
        ]
        sdk_s = statistics.median(sdk)
        rows.append({"side": "vendor SDK (fresh process)", "seconds": sdk_s})
        for one_command in (False, True):
            name = "recognize" if one_command else "submit + fetch"
            for attempt in range(REPEATS):
                home = work / f"home-{name.split(maxsplit=1)[0]}-{attempt}"
                home.mkdir(parents=True)
                env = side_env(clean, base, home)
                try:
                    fresh = round_trip(env, home, one_command)  # a Prefect home never used
                    warm = round_trip(env, home, one_command)
                    stop(env, home)
                    kept = round_trip(env, home, one_command)  # the home from yesterday
                finally:
                    stop(env, home)
                rows.append({"side": f"ocrflow {name}, cold (new Prefect home)", "seconds": fresh})
                rows.append({"side": f"ocrflow {name}, cold", "seconds": kept})
                rows.append({"side": f"ocrflow {name}, warm", "seconds": warm})
        for attempt in range(REPEATS):  # before: a temporary Prefect server per command
            home = work / f"home-before-{attempt}"
            home.mkdir(parents=True)
            env = {**side_env(clean, base, home), "OCRFLOW_LOCAL_SERVER": "0"}
            round_trip(env, home, one_command=False)  # the Prefect home made once
            before = round_trip(env, home, one_command=False)
            rows.append({"side": "before: submit + fetch, temporary servers", "seconds": before})
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    table = summarise(rows, sdk_s)
    RESULTS.write_text(json.dumps({"runs": rows, "table": table}, indent=2) + "\n")
    print(f"{'side':50} {'median s':>9} {'x SDK':>7}")
    for line in table:
        print(f"{line['side']:50} {line['median_s']:9.2f} {line['x_sdk']:7.1f}")


def summarise(rows: list[dict[str, object]], sdk_s: float) -> list[dict[str, object]]:
    by_side: dict[str, list[float]] = {}
    for row in rows:
        by_side.setdefault(str(row["side"]), []).append(float(str(row["seconds"])))
    return [
        {
            "side": side,
            "median_s": statistics.median(seconds),
            "x_sdk": statistics.median(seconds) / sdk_s,
        }
        for side, seconds in by_side.items()
    ]


if __name__ == "__main__":
    main()
