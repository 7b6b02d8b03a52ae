"""The sharded sweep: one sweep's unfinished jobs split over several workers.

The parent counts the unfinished jobs no live lease holds and starts one run of the shard
deployment (``fetch-results/shard``) per share, through ``run_deployment``; the workers of
the process pool execute them. Each shard run leases its share itself (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), so no two take the same job whatever order they start in. While they
run, the parent watches their leases: a shard whose lease expired (its worker died and stopped
renewing) is marked Crashed and a takeover run is started for the jobs it held, which any live
worker picks up. The parent ends Failed when a shard failed and was not taken over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from prefect import flow, states
from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, StateType
from prefect.deployments.flow_runs import arun_deployment
from prefect.logging import get_run_logger

from ocrflow.clock import Clock
from ocrflow.flows.alerts import alert_failed_run
from ocrflow.flows.reports import NOTHING_TO_DO
from ocrflow.leases import run_of_claim
from ocrflow.ledger import Lease
from ocrflow.tasks.credentials import load_settings
from ocrflow.tasks.leases import LeaseSurvey, survey_leases

SHARD_DEPLOYMENT = "fetch-results/shard"


class LoggerLike(Protocol):
    """The run logger, or any logger (tests)."""

    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...


_TERMINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


@dataclass
class Shard:
    """One shard run the parent started, and what it knows of it."""

    name: str
    limit: int
    run_id: UUID
    state: StateType | None = None
    message: str = ""
    started_at: float = 0.0  # monotonic, when the parent created the run
    leaseless_since: float | None = None  # monotonic: running and holding no live lease
    taken_over_by: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in _TERMINAL


@flow(name="sharded-sweep", log_prints=False)
async def sharded_sweep(
    shards: int = 2,
    min_shard_jobs: int = 50,
    max_takeovers: int = 4,
    start_timeout_s: float = 900.0,
    shard_deployment: str = SHARD_DEPLOYMENT,
) -> State[Any]:
    """Split the unfinished jobs into up to ``shards`` shard runs and see them all settled.

    ``min_shard_jobs``: no shard smaller than this (fewer jobs, fewer shards).
    ``max_takeovers``: how many shards whose worker died are started again.
    ``start_timeout_s``: a shard no worker started by then is cancelled (no worker polls).
    """
    if shards < 1 or min_shard_jobs < 1 or max_takeovers < 0:
        raise ValueError("shards and min_shard_jobs must be 1 or more, max_takeovers 0 or more")
    logger = get_run_logger()
    survey = await survey_leases()
    if survey.claimable == 0:
        message = f"no unfinished job free to lease ({len(survey.leases)} lease(s) held)"
        logger.info(message)
        return states.Completed(message=message, name=NOTHING_TO_DO)
    count = max(1, min(shards, survey.claimable // min_shard_jobs))
    size = math.ceil(survey.claimable / count)
    lease_s = (await load_settings()).claim_lease_s
    watch = ShardWatch(shard_deployment, lease_s, max_takeovers, logger)
    for number in range(1, count + 1):
        await watch.start(f"shard-{number}-of-{count}", size)
    logger.info("%d unfinished job(s) in %d shard(s) of up to %d", survey.claimable, count, size)
    await watch.until_all_end(start_timeout_s)
    return await watch.report(survey.claimable)


class ShardWatch:
    """The shard runs of one sharded sweep: started, watched, taken over when their worker dies."""

    def __init__(
        self,
        deployment: str,
        lease_s: float,
        max_takeovers: int,
        logger: LoggerLike,
        clock: Clock | None = None,
    ) -> None:
        self.deployment, self.lease_s, self.takeovers_left = deployment, lease_s, max_takeovers
        self.logger = logger
        self.clock = clock or Clock()  # the sweep's time: read and waited on here only
        self.shards: list[Shard] = []
        # The shards' states are read every couple of seconds (one cheap API read each), so
        # the sweep ends soon after its last shard; their leases a few times per lease, so a
        # dead shard is noticed soon after its lease runs out without keeping the ledger busy.
        self.state_check_s = 2.0
        self.lease_check_s = min(30.0, max(1.0, lease_s / 4))
        # A running shard may hold no lease for a moment (before its claim, after its release);
        # longer than this, its worker is presumed gone.
        self.grace_s = max(lease_s, 30.0)

    async def start(self, name: str, limit: int) -> Shard:
        run = await arun_deployment(
            self.deployment,
            parameters={"limit": limit},
            flow_run_name=name,
            timeout=0,  # started, not awaited: the parent watches all of them at once
            tags=["ocrflow", "shard"],
        )
        shard = Shard(name, limit, run.id, started_at=self.clock.monotonic())
        self.shards.append(shard)
        return shard

    async def until_all_end(self, start_timeout_s: float) -> None:
        leases_read_at = self.clock.monotonic()
        while True:
            await self._read_states()
            active = [s for s in self.shards if not s.ended]
            if not active:
                return
            now = self.clock.monotonic()
            for shard in active:
                if shard.state in (StateType.SCHEDULED, StateType.PENDING) and (
                    now - shard.started_at > start_timeout_s
                ):
                    why = f"no worker started it within {start_timeout_s:.0f} s"
                    self.logger.error("%s: %s", shard.name, why)
                    await self._set_state(shard, states.Cancelled(message=why))
            running = any(s.state is StateType.RUNNING for s in active)
            if running and now - leases_read_at >= self.lease_check_s:
                leases_read_at = now
                await self.find_dead(await survey_leases())
            await self.clock.sleep(self.state_check_s)

    async def find_dead(self, survey: LeaseSurvey) -> None:
        """Mark shards whose worker died Crashed, and start takeovers for their jobs."""
        leases: dict[str, Lease] = {run_of_claim(lease.claim): lease for lease in survey.leases}
        now, clock = self.clock.now(), self.clock.monotonic()
        for shard in self.shards:
            if shard.state is not StateType.RUNNING:
                continue
            lease = leases.get(str(shard.run_id))
            if lease is not None and not lease.expired(now):
                shard.leaseless_since = None
                continue
            if lease is not None:
                why = (
                    f"its lease on {lease.jobs} job(s) expired at {lease.expires_at:%H:%M:%S} UTC"
                    " unrenewed: its worker stopped"
                )
            else:
                shard.leaseless_since = shard.leaseless_since or clock
                if clock - shard.leaseless_since < self.grace_s:
                    continue
                why = f"running {self.grace_s:.0f} s without a lease: its worker is presumed gone"
            await self._take_over(shard, why, lease.jobs if lease else survey.claimable)

    async def _take_over(self, shard: Shard, why: str, jobs: int) -> None:
        logger = self.logger
        logger.warning("%s: %s", shard.name, why)
        await self._set_state(shard, states.Crashed(message=why))
        if jobs == 0:
            return
        if self.takeovers_left == 0:
            logger.error(
                "%s: no takeover left for its %d job(s); the next sweep has them", shard.name, jobs
            )
            return
        self.takeovers_left -= 1
        replacement = await self.start(f"{shard.name}-takeover", jobs)
        shard.taken_over_by = replacement.name
        logger.info("%s: %d job(s) taken over by %s", shard.name, jobs, replacement.name)

    async def _read_states(self) -> None:
        async with get_client() as client:
            for shard in self.shards:
                if shard.ended:
                    continue
                run = await client.read_flow_run(shard.run_id)
                if run.state is not None:
                    shard.state, shard.message = run.state.type, run.state.message or ""

    async def _set_state(self, shard: Shard, state: State[Any]) -> None:
        async with get_client() as client:
            await client.set_flow_run_state(shard.run_id, state, force=True)
        shard.state, shard.message = state.type, state.message or ""

    async def report(self, jobs: int) -> State[Any]:
        """A table of the shard runs, and the parent's final state."""
        await acreate_table_artifact(
            key="ocrflow-sharded-sweep",
            table=[
                {
                    "shard": s.name,
                    "flow run": str(s.run_id),
                    "jobs leased at most": s.limit,
                    "state": s.state.value if s.state else "unknown",
                    "message": s.message[:300],
                    "taken over by": s.taken_over_by or "",
                }
                for s in self.shards
            ],
            description="The shard runs of this sweep and how each ended",
        )
        final = self.outcome(jobs)
        self.logger.info("sharded sweep finished: %s", final.message)
        return final

    def outcome(self, jobs: int) -> State[Any]:
        """Failed when a shard ended other than Completed and was not taken over."""
        failed = [
            s for s in self.shards if s.state is not StateType.COMPLETED and not s.taken_over_by
        ]
        taken = sum(1 for s in self.shards if s.taken_over_by)
        headline = (
            f"{jobs} job(s) in {len(self.shards)} shard run(s): "
            f"{len(self.shards) - len(failed) - taken} completed, {taken} taken over, "
            f"{len(failed)} failed"
        )
        if failed:
            detail = "; ".join(f"{s.name}: {s.message}" for s in failed)
            alert_failed_run(headline, [f"shard run {s.name}: {s.message}" for s in failed])
            return states.Failed(message=f"{headline} ({detail})"[:1000])
        return states.Completed(message=headline)
