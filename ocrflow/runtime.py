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
from ocrflow.models import TaskStatus
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
        # The jobs whose class and submission time are known (epoch seconds): while they run,
        # each poll that finds them unfinished tells the model how long they have run at least.
        self._followed: dict[str, tuple[str, float]] = {}
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

    def follow(self, job_id: str, key: str, submitted_at: float) -> None:
        """Count the job among its class's (``key``) running ones until it ends (see
        :meth:`note_poll`), from the polls it already had."""
        self._followed[job_id] = (key, submitted_at)
        unfinished = [at for at, done in self.poll_log.get(job_id, ()) if not done]
        if unfinished:
            self.model.running(key, job_id, max(unfinished) - submitted_at)

    def unfollow(self, job_id: str) -> None:
        """The job's settling ended (stored, failed, timed out): it no longer counts as running."""
        followed = self._followed.pop(job_id, None)
        if followed is not None:
            self.model.stopped(followed[0], job_id)

    def note_poll(self, job_id: str, status: TaskStatus) -> None:
        """One GET of the job and the status it answered: counted, timed, and, while a followed
        job runs, a lower bound of its class's processing times."""
        at = self.clock.now().timestamp()
        self.polls[job_id] += 1
        self.poll_log.setdefault(job_id, []).append((at, status is TaskStatus.COMPLETED))
        followed = self._followed.get(job_id)
        if followed is None:
            return
        key, submitted_at = followed
        if status.is_terminal:
            self.model.stopped(key, job_id)
        else:
            self.model.running(key, job_id, at - submitted_at)

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
