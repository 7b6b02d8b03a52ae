"""Which unfinished flow runs can no longer end by themselves (ocrflow/cli/orphans.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from uuid import uuid4

from ocrflow.cli.orphans import UnfinishedRun, orphan_reason, pid_alive, this_process

HOST = "ocr-box"


def run(
    process: str | None = None, *, deployment: bool = False, parent_ended: bool = False
) -> UnfinishedRun:
    return UnfinishedRun(
        uuid4(), "brave-otter", process, uuid4() if deployment else None, parent_ended
    )


def alive_only(*pids: int) -> Callable[[int], bool]:
    return lambda pid: pid in pids


def test_a_run_whose_process_on_this_host_is_gone_is_an_orphan() -> None:
    tagged = run(this_process(HOST, 4242))
    why = orphan_reason(tagged, host=HOST, alive=alive_only(), worker_gone=False)
    assert why == "the process that ran it (ocr-box, pid 4242) is gone"


def test_a_run_whose_process_lives_or_runs_elsewhere_is_left_alone() -> None:
    mine = run(this_process(HOST, 4242))
    theirs = run(this_process("other-box", 4242))
    assert orphan_reason(mine, host=HOST, alive=alive_only(4242), worker_gone=False) is None
    assert orphan_reason(theirs, host=HOST, alive=alive_only(), worker_gone=True) is None


def test_a_host_name_with_colons_is_read_whole() -> None:
    tagged = run(this_process("fe80::1", 17))
    why = orphan_reason(tagged, host="fe80::1", alive=alive_only(), worker_gone=False)
    assert why is not None
    assert "pid 17" in why


def test_a_deployments_run_is_an_orphan_only_when_the_stacks_worker_is_gone() -> None:
    handed_over = run(deployment=True)
    assert orphan_reason(handed_over, host=HOST, alive=alive_only(), worker_gone=False) is None
    why = orphan_reason(handed_over, host=HOST, alive=alive_only(), worker_gone=True)
    assert why == "the stack's worker stopped before the run ended"


def test_a_subflow_run_whose_parent_ended_is_an_orphan() -> None:
    why = orphan_reason(run(parent_ended=True), host=HOST, alive=alive_only(), worker_gone=False)
    assert why == "the run it belongs to has ended"


def test_a_run_of_nobody_known_is_left_alone() -> None:
    assert orphan_reason(run(), host=HOST, alive=alive_only(), worker_gone=True) is None
    assert orphan_reason(run("garbage"), host=HOST, alive=alive_only(), worker_gone=True) is None


def test_this_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert not pid_alive(int(child.stdout))
