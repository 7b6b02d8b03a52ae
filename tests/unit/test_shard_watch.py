"""The sharded sweep's watch: which shard runs it presumes dead, what it starts in their place,
and how it ends. Its calls to Prefect (start a run, set a state) are recorded, not made."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prefect.client.schemas.objects import State, StateType

from ocrflow.clock import Clock
from ocrflow.flows.sharded_sweep import Shard, ShardWatch
from ocrflow.leases import claim_for_run
from ocrflow.ledger import Lease
from ocrflow.tasks.leases import LeaseSurvey

LEASE_S = 60.0


class HandClock(Clock):
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.at = 1000.0
        self.wall = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.at - 1000.0)

    def monotonic(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += max(seconds, 0.0)


class RecordingWatch(ShardWatch):
    """A watch whose Prefect calls are recorded: runs it starts, states it sets."""

    def __init__(self, max_takeovers: int = 4) -> None:
        self.fake = HandClock()
        super().__init__(
            "fetch-results/shard", LEASE_S, max_takeovers, logging.getLogger("t"), self.fake
        )
        self.started: list[tuple[str, int]] = []
        self.states_set: dict[str, State[Any]] = {}

    async def start(self, name: str, limit: int) -> Shard:
        self.started.append((name, limit))
        shard = Shard(
            name, limit, uuid4(), state=StateType.SCHEDULED, started_at=self.clock.monotonic()
        )
        self.shards.append(shard)
        return shard

    async def _read_states(self) -> None:
        return  # the states the test sets are the server's

    async def _set_state(self, shard: Shard, state: State[Any]) -> None:
        self.states_set[shard.name] = state
        shard.state, shard.message = state.type, state.message or ""


def running(watch: RecordingWatch, name: str) -> Shard:
    shard = Shard(name, 100, uuid4(), state=StateType.RUNNING)
    watch.shards.append(shard)
    return shard


def lease(watch: RecordingWatch, run_id: UUID, jobs: int, in_s: float) -> Lease:
    """A lease that runs out ``in_s`` after the watch's present time."""
    return Lease(claim_for_run(str(run_id)), jobs, watch.fake.now() + timedelta(seconds=in_s))


async def test_a_shard_renewing_its_lease_is_left_alone() -> None:
    watch = RecordingWatch()
    shard = running(watch, "shard-1-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(watch, shard.run_id, 40, in_s=30)]))
    assert watch.states_set == {}
    assert watch.started == []
    assert shard.state is StateType.RUNNING


async def test_an_expired_lease_crashes_the_shard_and_starts_a_takeover_for_its_jobs() -> None:
    watch = RecordingWatch(max_takeovers=1)
    alive, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    survey = LeaseSurvey(
        37, [lease(watch, alive.run_id, 50, in_s=30), lease(watch, dead.run_id, 37, in_s=-1)]
    )
    await watch.find_dead(survey)
    assert list(watch.states_set) == ["shard-2-of-2"]
    crashed = watch.states_set["shard-2-of-2"]
    assert crashed.type is StateType.CRASHED
    assert "lease on 37 job(s) expired" in (crashed.message or "")
    assert watch.started == [("shard-2-of-2-takeover", 37)]
    assert dead.taken_over_by == "shard-2-of-2-takeover"
    assert watch.takeovers_left == 0


async def test_a_running_shard_without_a_lease_is_given_a_grace_period() -> None:
    watch = RecordingWatch()
    running(watch, "shard-1-of-1")
    await watch.find_dead(LeaseSurvey(5, []))  # before its claim, or after its release
    assert watch.states_set == {}
    watch.fake.at += watch.grace_s + 1  # no lease for too long
    await watch.find_dead(LeaseSurvey(5, []))
    assert watch.states_set["shard-1-of-1"].type is StateType.CRASHED
    assert watch.started == [("shard-1-of-1-takeover", 5)]  # what is free to lease now


async def test_without_takeovers_left_the_dead_shard_fails_the_sweep() -> None:
    watch = RecordingWatch(max_takeovers=0)
    done, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(watch, dead.run_id, 10, in_s=-1)]))
    assert watch.started == []
    done.state = StateType.COMPLETED
    final = watch.outcome(200)
    assert final.type is StateType.FAILED
    assert (final.message or "").startswith("200 job(s) in 2 shard run(s): 1 completed, 0 taken")
    assert "shard-2-of-2: its lease on 10 job(s) expired" in (final.message or "")


async def test_a_dead_shard_taken_over_by_a_completed_run_leaves_the_sweep_completed() -> None:
    watch = RecordingWatch()
    done, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(watch, dead.run_id, 10, in_s=-1)]))
    done.state = StateType.COMPLETED
    watch.shards[-1].state = StateType.COMPLETED  # the takeover
    final = watch.outcome(200)
    assert final.type is StateType.COMPLETED
    assert final.message == "200 job(s) in 3 shard run(s): 2 completed, 1 taken over, 0 failed"


async def test_a_shard_no_worker_starts_is_cancelled_on_the_watchs_own_clock() -> None:
    watch = RecordingWatch()
    shard = await watch.start("shard-1-of-1", 20)  # stays Scheduled: no worker takes it
    await watch.until_all_end(start_timeout_s=10)  # returns once it is cancelled
    assert watch.states_set["shard-1-of-1"].type is StateType.CANCELLED
    assert shard.ended
    # waited on the watch's clock only: past the timeout, then one more check to see it end
    assert 10 < watch.fake.at - 1000.0 <= 10 + 2 * watch.state_check_s
