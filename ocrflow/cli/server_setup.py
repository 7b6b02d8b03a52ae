"""Server-side set-up: failure alerts (a webhook block and an automation), sweep schedule.

Idempotent: running it again replaces the block's URL, the automation (found by name) and the
schedule. Runs against the Prefect API that PREFECT_API_URL names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.schedules import SCHEDULE_TYPES, IntervalSchedule
from prefect.exceptions import ObjectNotFound

BLOCK_NAME = "ocrflow-alerts"
OLD_AUTOMATION_NAME = "ocrflow: fetch or pipeline run failed"  # replaced: removed on setup
RUN_FAILED = "ocrflow.run.failed"  # as flows/alerts.py emits them
SERVICE_UNREACHABLE = "ocrflow.service.unreachable"
WATCHED_FLOWS: list[str] = ["fetch-results", "ocr-pipeline", "sharded-sweep"]
SWEEP = "fetch-results/sweep"
SHARDED_SWEEP = "sharded-sweep/sharded-sweep"
SUBJECT = "ocrflow: {{ flow.name }} run {{ flow_run.name }} {{ flow_run.state.name }}"
CRASH_BODY = (
    "Flow run {{ flow_run.name }} ({{ flow_run.id }}) of {{ flow.name }} ended "
    "{{ flow_run.state.name }}: {{ flow_run.state.message }}\nrun: {{ flow_run|ui_url }}"
)


async def set_sweep_interval(
    seconds: int, *, sharded: bool | None = None, shards: int | None = None
) -> str:
    """Give the sweep one interval schedule; returns the deployment that sweeps.

    ``sharded``: True schedules the sharded sweep (several workers) and pauses the plain one,
    False the reverse; None keeps whichever is scheduled now (the plain one if neither is).
    ``shards``: how many shard runs the sharded sweep starts (its default parameter).
    """
    async with get_client() as client:
        if sharded is None:
            found = await client.read_deployment_by_name(SHARDED_SWEEP)
            schedules = await client.read_deployment_schedules(found.id)
            sharded = any(schedule.active for schedule in schedules)
        chosen, other = (SHARDED_SWEEP, SWEEP) if sharded else (SWEEP, SHARDED_SWEEP)
        paused = await client.read_deployment_by_name(other)
        for schedule in await client.read_deployment_schedules(paused.id):
            await client.update_deployment_schedule(paused.id, schedule.id, active=False)
        found = await client.read_deployment_by_name(chosen)
        for schedule in await client.read_deployment_schedules(found.id):
            await client.delete_deployment_schedule(found.id, schedule.id)
        new: list[tuple[SCHEDULE_TYPES, bool]] = [
            (IntervalSchedule(interval=timedelta(seconds=seconds)), True)
        ]
        await client.create_deployment_schedules(found.id, new)
        if shards is not None:
            sharded_sweep = await client.read_deployment_by_name(SHARDED_SWEEP)
            parameters = {**sharded_sweep.parameters, "shards": shards}
            await client.update_deployment(
                sharded_sweep.id, DeploymentUpdate(parameters=parameters)
            )
    return chosen


@dataclass(frozen=True)
class SweepSchedules:
    """The sweeps' schedules as a server has them: per deployment, (interval s, active)."""

    schedules: dict[str, list[tuple[int, bool]]]
    paused: dict[str, bool]

    def interval_s(self) -> int | None:
        """The interval of the active sweep schedule, if one is active."""
        for found in self.schedules.values():
            for seconds, active in found:
                if active:
                    return seconds
        return None


async def read_sweep_schedules(api_url: str) -> SweepSchedules | None:
    """The sweeps' schedules on the server at ``api_url``; None before the first deploy."""
    schedules: dict[str, list[tuple[int, bool]]] = {}
    paused: dict[str, bool] = {}
    async with PrefectClient(api_url) as client:
        for name in (SWEEP, SHARDED_SWEEP):
            try:
                found = await client.read_deployment_by_name(name)
            except ObjectNotFound:
                return None
            paused[name] = bool(found.paused)
            schedules[name] = [
                (int(schedule.schedule.interval.total_seconds()), bool(schedule.active))
                for schedule in await client.read_deployment_schedules(found.id)
                if isinstance(schedule.schedule, IntervalSchedule)
            ]
    return SweepSchedules(schedules, paused)


async def restore_sweep_schedules(api_url: str, kept: SweepSchedules) -> None:
    """Give the sweeps back the schedules (and paused state) ``kept`` holds: a re-deploy
    puts prefect.yaml's back, which would undo `ocrflow sweep-interval`."""
    if await read_sweep_schedules(api_url) == kept:
        return
    async with PrefectClient(api_url) as client:
        for name, wanted in kept.schedules.items():
            found = await client.read_deployment_by_name(name)
            for schedule in await client.read_deployment_schedules(found.id):
                await client.delete_deployment_schedule(found.id, schedule.id)
            new: list[tuple[SCHEDULE_TYPES, bool]] = [
                (IntervalSchedule(interval=timedelta(seconds=seconds)), active)
                for seconds, active in wanted
            ]
            if new:
                await client.create_deployment_schedules(found.id, new)
            if bool(found.paused) != kept.paused[name]:
                if kept.paused[name]:
                    await client.pause_deployment(found.id)
                else:
                    await client.resume_deployment(found.id)


async def setup_alerts(webhook_url: str) -> list[str]:
    """Create or update the webhook block and the automations; returns their ids.

    - a top-level run that failed (``ocrflow.run.failed``, emitted by the run itself: one per
      pipeline, not one per subflow; its text lists each failed job's reason and the link);
    - a run that crashed (Prefect's own event: no code of the run was left to say more);
    - the service unreachable for ``OCRFLOW_ALERT_UNREACHABLE_S`` while a run keeps retrying.
    """
    block = CustomWebhookNotificationBlock(
        name="ocrflow",
        url=webhook_url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )
    await block.save(BLOCK_NAME, overwrite=True)
    block_id = block._block_document_id
    if block_id is None:
        raise RuntimeError("the notification block was saved without an id")
    async with get_client() as client:
        for name in (*AUTOMATIONS, OLD_AUTOMATION_NAME):
            for existing in await client.read_automations_by_name(name):
                await client.delete_automation(existing.id)
    created = []
    for name, (description, trigger, subject, body) in AUTOMATIONS.items():
        automation = Automation(
            name=name,
            description=description,
            trigger=trigger,
            actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
        )
        created.append(str((await automation.acreate()).id))
    return created


def _on(events: set[str], related: dict[str, str | list[str]] | None = None) -> EventTrigger:
    return EventTrigger(
        expect=events,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=related or {},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


AUTOMATIONS: dict[str, tuple[str, EventTrigger, str, str]] = {
    "ocrflow: run failed": (
        "Alert once per failed fetch, pipeline or sweep run: each job's reason and the link.",
        _on({RUN_FAILED}),
        "ocrflow: run {{ event.resource.name }} failed",
        "{{ event.payload.text }}",
    ),
    "ocrflow: run crashed": (
        "Alert when a fetch, pipeline or sweep run crashed (its process died).",
        _on(
            {"prefect.flow-run.Crashed"},
            {"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS},
        ),
        SUBJECT,
        CRASH_BODY,
    ),
    "ocrflow: service unreachable": (
        "Alert when a run has found the OCR service unreachable for OCRFLOW_ALERT_UNREACHABLE_S.",
        _on({SERVICE_UNREACHABLE}),
        "ocrflow: the OCR service is unreachable",
        "{{ event.payload.text }}",
    ),
}
