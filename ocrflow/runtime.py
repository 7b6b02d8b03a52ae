"""What the steps of one run share: settings, one HTTP client, the ledger, poll bookkeeping.

A flow opens one (``async with open_runtime(settings)``) and hands it to each task it awaits,
as a parameter: every poll of a run shares one connection pool and one cached token, and the
polls counted here are written with each job's outcome. A task called without one opens its
own from the settings (:func:`ocrflow.tasks.credentials.load_settings`: the environment and the
credentials block) for the length of the call.

A plain class, not a dataclass: Prefect walks dataclass parameters field by field (to find
futures in them), and a run's poll log grows with its jobs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ocrflow.adaptive import AdaptivePollPolicy, DurationModel, job_class
from ocrflow.client import OcrClient
from ocrflow.clock import Clock
from ocrflow.ledger import Fence, Ledger
from ocrflow.redact import mask_credentials
from ocrflow.settings import OcrflowSettings


class Runtime:
    """The live objects and the bookkeeping one run's tasks share."""

    def __init__(
        self,
        settings: OcrflowSettings,
        client: OcrClient,
        ledger: Ledger | None,
        *,
        policy: AdaptivePollPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings, self.client, self._ledger = settings, client, ledger
        self.results_dir = Path(settings.results_dir)
        self.polls: Counter[str] = Counter()
        # Wall-clock times of each job's polls and whether the job was done: its processing
        # time is estimated from them when it is stored, and teaches the learned policy.
        self.poll_log: dict[str, list[tuple[float, bool]]] = {}
        self.model = DurationModel()
        self.policy = policy or AdaptivePollPolicy()
        # The run's fencing tokens once it leased its jobs: every write under the lease checks it.
        self.fence: Fence | None = None
        self.lease_lost = asyncio.Event()  # another run took over
        self.settled = 0  # jobs this run has finished with (any outcome)
        self.clock = clock or Clock()  # the run's time: read and waited on here only

    @property
    def ledger(self) -> Ledger:
        """The run's ledger (a runtime opened for polling alone has none)."""
        if self._ledger is None:
            raise RuntimeError("this runtime was opened without a ledger (open_runtime(ledger=…))")
        return self._ledger

    def __repr__(self) -> str:  # never the settings (they hold the secret), nor the poll log
        return f"<Runtime for {mask_credentials(self.settings.base_url)}>"

    async def learn_from_ledger(self) -> None:
        """Teach the duration model the processing times of the jobs stored before."""
        for image_bytes, regions, seconds in reversed(await self.ledger.processing_times()):
            self.model.observe(job_class(image_bytes or 0, regions), seconds)


@asynccontextmanager
async def open_runtime(settings: OcrflowSettings, *, ledger: bool = True) -> AsyncIterator[Runtime]:
    """Open the client and the ledger (unless ``ledger=False``: polling alone) for a run, and
    close them after it."""
    opened = await Ledger.open(settings.ledger_url) if ledger else None
    try:
        async with OcrClient(settings) as client:
            runtime = Runtime(settings, client, opened, policy=settings.learned_poll_policy())
            if opened is not None:
                await runtime.learn_from_ledger()
            yield runtime
    finally:
        if opened is not None:
            await opened.close()
