"""The whole suite as two pytest processes side by side: the stack-level tests (their time is
mostly spent waiting on processes, leases and schedules) beside the rest, each half's output
kept in ``var/test-logs/`` and shown when it ends. Given test paths, it runs them as pytest would.

Run: ``make test`` (``PYTEST_ARGS`` go to both halves); ``OCRFLOW_TEST_SERIAL=1`` runs one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "var" / "test-logs"
# Measured (suite durations, 2026-12-01, one process: 1,074 s): the stack restart and the
# reliability tests were 560 s of it, mostly waiting; run beside the rest they took 684 s and
# the rest 458 s, so the deployed-stack tests (about 105 s) run with the rest.
STACK_LEVEL = ["tests/e2e/test_stack_restart.py", "tests/reliability"]


def halves(args: list[str]) -> dict[str, list[str]]:
    rest = [f"--ignore={folder}" for folder in STACK_LEVEL]
    return {"stack-level": [*args, *STACK_LEVEL], "rest": [*args, *rest, "tests"]}


def names_tests(args: list[str]) -> bool:
    """Whether the arguments choose tests themselves (a path, ``-k``, ``--lf``…)."""
    choosing = ("-k", "-m", "--lf", "--last-failed", "--ff", "--deselect", "--pyargs")
    paths = [arg for arg in args if not arg.startswith("-")]  # or an option's value
    return any((ROOT / path.split("::")[0]).exists() for path in paths) or any(
        arg.split("=")[0] in choosing for arg in args
    )


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if os.environ.get("OCRFLOW_TEST_SERIAL") or names_tests(args):
        return subprocess.call([*pytest, *args], cwd=ROOT)
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, half in halves(args).items():
        log = LOGS / f"{name}.log"
        with log.open("wb") as out:  # the child keeps its own descriptor
            running[name] = (
                subprocess.Popen([*pytest, *half], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT),
                log,
            )
    print(f"two halves side by side, logs in {LOGS.relative_to(ROOT)}/: {', '.join(running)}")
    codes: dict[str, int] = {}
    try:
        for name, (process, log) in running.items():
            codes[name] = process.wait()
            print(f"\n===== {name} (exit {codes[name]}) =====", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
    except KeyboardInterrupt:
        for process, _ in running.values():
            process.terminate()
        for process, _ in running.values():
            process.wait(timeout=60)
        raise
    took = time.monotonic() - started
    failed = [name for name, code in codes.items() if code != 0]
    print(
        f"\nboth halves done in {took:.0f} s: "
        + (f"FAILED: {', '.join(failed)}" if failed else "passed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
