"""Signals that end a run well: the work cancelled, its cleanup run, the signal named."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from ocrflow.interrupt import Interrupted, cancel_on_signals


async def test_a_signal_cancels_the_work_and_says_which_after_its_cleanup() -> None:
    cleaned: list[str] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await asyncio.sleep(0)  # a cleanup that awaits still runs (leases given back)
            cleaned.append("leases given back")

    async def interrupted_run() -> None:
        async with cancel_on_signals():
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
            await work()

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        await interrupted_run()
    assert caught.value.exit_code == 143
    assert cleaned == ["leases given back"]
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
