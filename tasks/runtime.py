"""The per-flow-run runtime the tasks share: settings, one HTTP client, the ledger, counters.

A flow opens it once (``async with open_runtime(settings)``); tasks awaited inside find it with
:func:`current_runtime`. Tasks never receive a live client or a secret as an argument, so
nothing secret reaches Prefect's parameters, and every poll of a run shares one connection
pool and one cached token.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from ocrflow.adaptive import AdaptivePollPolicy, DurationModel, job_class
from ocrflow.client import OcrClient
from ocrflow.clock import Clock
from ocrflow.ledger import Fence, Ledger
from ocrflow.settings import OcrflowSettings


@dataclass
class Runtime:
    """What the tasks of one flow run share."""

    settings: OcrflowSettings
    client: OcrClient
    ledger: Ledger
    results_dir: Path
    polls: Counter[str] = field(default_factory=Counter)
    # Wall-clock times of each job's polls and whether the job was done: its processing time
    # is estimated from them when it is stored, and teaches the learned polling policy.
    poll_log: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    model: DurationModel = field(default_factory=DurationModel)
    policy: AdaptivePollPolicy = field(default_factory=AdaptivePollPolicy)
    # The run's fencing tokens once it leased its jobs: every write under the lease checks it.
    fence: Fence | None = None
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)  # another run took over
    settled: int = 0  # jobs this run has finished with (any outcome)
    clock: Clock = field(default_factory=Clock)  # the run's time: read and waited on here only


_CURRENT: ContextVar[Runtime | None] = ContextVar("ocrflow_runtime", default=None)


@asynccontextmanager
async def open_runtime(settings: OcrflowSettings) -> AsyncIterator[Runtime]:
    """Open the client and the ledger for a flow run, and close them after it."""
    ledger = await Ledger.open(settings.ledger_url)
    try:
        async with OcrClient(settings) as client:
            runtime = Runtime(
                settings,
                client,
                ledger,
                Path(settings.results_dir),
                policy=settings.learned_poll_policy(),
            )
            for image_bytes, regions, seconds in reversed(await ledger.processing_times()):
                runtime.model.observe(job_class(image_bytes or 0, regions), seconds)
            token = _CURRENT.set(runtime)
            try:
                yield runtime
            finally:
                _CURRENT.reset(token)
    finally:
        await ledger.close()


def current_runtime() -> Runtime:
    """The runtime of the flow run that awaits this task."""
    runtime = _CURRENT.get()
    if runtime is None:
        raise RuntimeError(
            "no ocrflow runtime: await this task inside `async with open_runtime(settings)`"
        )
    return runtime
