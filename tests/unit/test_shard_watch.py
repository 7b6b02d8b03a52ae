"""The sharded sweep's watch: which shard runs it presumes dead, what it starts in their place,
and how it ends. Its calls to Prefect (start a run, set a state) are recorded, not made."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prefect.client.schemas.objects import State, StateType

from flows.fetch_results import claim_for_run
from flows.scale_out import Shard, ShardWatch
from ocrflow.ledger import Lease
from tasks.leases import LeaseSurvey

LEASE_S = 60.0


class RecordingWatch(ShardWatch):
    """A watch whose Prefect calls are recorded: runs it starts, states it sets."""

    def __init__(self, max_takeovers: int = 4) -> None:
        super().__init__("fetch-results/shard", LEASE_S, max_takeovers, logging.getLogger("t"))
        self.started: list[tuple[str, int]] = []
        self.states_set: dict[str, State[Any]] = {}

    async def start(self, name: str, limit: int) -> Shard:
        self.started.append((name, limit))
        shard = Shard(name, limit, uuid4(), state=StateType.SCHEDULED)
        self.shards.append(shard)
        return shard

    async def _set_state(self, shard: Shard, state: State[Any]) -> None:
        self.states_set[shard.name] = state
        shard.state, shard.message = state.type, state.message or ""


def running(watch: RecordingWatch, name: str) -> Shard:
    shard = Shard(name, 100, uuid4(), state=StateType.RUNNING)
    watch.shards.append(shard)
    return shard


def lease(run_id: UUID, jobs: int, in_s: float) -> Lease:
    return Lease(claim_for_run(str(run_id)), jobs, datetime.now(UTC) + timedelta(seconds=in_s))


async def test_a_shard_renewing_its_lease_is_left_alone() -> None:
    watch = RecordingWatch()
    shard = running(watch, "shard-1-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(shard.run_id, 40, in_s=30)]))
    assert watch.states_set == {}
    assert watch.started == []
    assert shard.state is StateType.RUNNING


async def test_an_expired_lease_crashes_the_shard_and_starts_a_takeover_for_its_jobs() -> None:
    watch = RecordingWatch(max_takeovers=1)
    alive, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    survey = LeaseSurvey(37, [lease(alive.run_id, 50, in_s=30), lease(dead.run_id, 37, in_s=-1)])
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
    shard = running(watch, "shard-1-of-1")
    await watch.find_dead(LeaseSurvey(5, []))  # before its claim, or after its release
    assert watch.states_set == {}
    shard.leaseless_since = time.monotonic() - watch.grace_s - 1  # no lease for too long
    await watch.find_dead(LeaseSurvey(5, []))
    assert watch.states_set["shard-1-of-1"].type is StateType.CRASHED
    assert watch.started == [("shard-1-of-1-takeover", 5)]  # what is free to lease now


async def test_without_takeovers_left_the_dead_shard_fails_the_sweep() -> None:
    watch = RecordingWatch(max_takeovers=0)
    done, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(dead.run_id, 10, in_s=-1)]))
    assert watch.started == []
    done.state = StateType.COMPLETED
    final = watch.outcome(200)
    assert final.type is StateType.FAILED
    assert (final.message or "").startswith("200 job(s) in 2 shard run(s): 1 completed, 0 taken")
    assert "shard-2-of-2: its lease on 10 job(s) expired" in (final.message or "")


async def test_a_dead_shard_taken_over_by_a_completed_run_leaves_the_sweep_completed() -> None:
    watch = RecordingWatch()
    done, dead = running(watch, "shard-1-of-2"), running(watch, "shard-2-of-2")
    await watch.find_dead(LeaseSurvey(0, [lease(dead.run_id, 10, in_s=-1)]))
    done.state = StateType.COMPLETED
    watch.shards[-1].state = StateType.COMPLETED  # the takeover
    final = watch.outcome(200)
    assert final.type is StateType.COMPLETED
    assert final.message == "200 job(s) in 3 shard run(s): 2 completed, 1 taken over, 0 failed"
