"""Unit tests never wait for real: a sleep of any length fails the test that made it."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

_real_async_sleep = asyncio.sleep
_real_sleep = time.sleep


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """``asyncio.sleep(0)`` (a yield) is allowed; anything longer, and ``time.sleep``, are not:
    time is a fake clock's here (tests.unit.fakes). The standard library's subprocess module
    polls a child with short sleeps: those stay (a test that starts an interpreter)."""

    async def async_sleep(delay: float, result: object = None) -> object:
        if delay > 0:
            raise AssertionError(f"a real sleep of {delay} s in a unit test: use a fake clock")
        return await _real_async_sleep(0, result)

    def sync_sleep(delay: float) -> None:
        if sys._getframe(1).f_globals.get("__name__") == "subprocess":
            _real_sleep(delay)
            return
        raise AssertionError(f"a real sleep of {delay} s in a unit test: use a fake clock")

    monkeypatch.setattr(asyncio, "sleep", async_sleep)
    monkeypatch.setattr(time, "sleep", sync_sleep)
