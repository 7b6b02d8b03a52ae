"""Jobs: accepted at once, recognised on worker threads, read back by time and outcome.

A job is Pending until a worker picks it up and for the first fifth of its processing time,
then Processing until both the OCR is done and its processing time (drawn from the configured
distribution) has passed; then Completed or Error. After the retention it reads NotExist and
is forgotten; a DELETE forgets it at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ocrflow.emulator.engine import (
    NATIVE_DOCUMENTS,
    Engine,
    LanguageUnavailableError,
    Recognition,
    recognition_of_text,
)
from ocrflow.emulator.imaging import (
    ImageError,
    binarize,
    crop_region,
    deskew,
    load_image,
    rotate,
    upsample,
)
from ocrflow.emulator.render import FORMATS, PDF_DPI, render_region
from ocrflow.emulator.schemas import RecognizeBodyIn
from ocrflow.emulator.settings import EmulatorSettings

log = logging.getLogger(__name__)
PENDING_SHARE = 0.2

# The forms .NET's Guid.Parse reads, in any letter case: 8-4-4-4-12 (D), D in braces (B) or
# parentheses (P), 32 digits (N). The service keeps a Guid, so each form names the same job.
_D_FORM = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_GUID_FORMS = re.compile(rf"({_D_FORM})|\{{({_D_FORM})\}}|\(({_D_FORM})\)|([0-9a-f]{{32}})")


def canonical_job_id(job_id: str) -> str:
    """The lower-case 8-4-4-4-12 form a job is kept under, from any form .NET's Guid.Parse
    reads; anything else comes back as given (it names no job: NotExist)."""
    match = _GUID_FORMS.fullmatch(job_id.strip().lower())
    if match is None:
        return job_id
    return str(uuid.UUID(next(group for group in match.groups() if group)))


@dataclass(slots=True)
class Job:
    """One submitted job and everything the emulator knows of it."""

    id: str
    created: float
    duration_s: float
    expires_at: float
    image_sha256: str = ""  # what was sent: lets a test match the service's jobs to a ledger
    phantom: bool = False  # fault: reads NotExist from the start
    forced_error: bool = False  # fault: ends in Error
    started: bool = False
    finished: bool = False
    failed: bool = False
    results: list[dict[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gets: int = 0
    ready_at: float | None = None
    first_get_at: float | None = None
    seen_done_at: float | None = None


@dataclass(frozen=True, slots=True)
class JobTiming:
    """A job's timeline on the emulator's clock, and how many GETs it took."""

    job_id: str
    created: float
    duration_s: float
    ready_at: float | None
    first_get_at: float | None
    seen_done_at: float | None
    gets: int


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as one GET sees it."""

    status: str
    results: list[dict[str, str]] | None
    messages: list[str]
    warnings: list[str]


NOT_EXIST = JobView("NotExist", None, [], [])


class JobStore:
    """The emulator's jobs, in memory; OCR runs on a thread pool, off the event loop."""

    def __init__(
        self,
        settings: EmulatorSettings,
        engine: Engine | None,  # None in simulation mode: no image is read
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._futures: set[Future[None]] = set()
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ocr")
        self.submitted = 0

    def submit(self, body: RecognizeBodyIn, image: bytes, *, regions_required: bool) -> str:
        """Accept a job and queue its work; return its id at once."""
        faults = self.settings.faults
        with self._lock:
            now = self.clock()
            job = Job(
                id=str(uuid.uuid4()),
                created=now,
                duration_s=self._draw_duration(),
                expires_at=now + self.settings.retention_s,
                image_sha256=hashlib.sha256(image).hexdigest(),
                phantom=self.rng.random() < faults.rate_not_exist,
                forced_error=self.rng.random() < faults.rate_job_error,
            )
            self._jobs[job.id] = job
            self.submitted += 1
            self._purge_expired(now)
        future = self._executor.submit(self._run, job, body, image, regions_required)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)
        return job.id

    def received(self) -> list[dict[str, str]]:
        """Every job the service holds: its id and its image's SHA-256, oldest first."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.created)
            return [{"id": job.id, "image_sha256": job.image_sha256} for job in jobs]

    def view(self, job_id: str, *, with_results: bool) -> JobView:
        """What a GET of the job answers now; counts the GET for the statistics."""
        with self._lock:
            job = self._jobs.get(canonical_job_id(job_id))
            now = self.clock()
            if job is None:
                return NOT_EXIST
            if now >= job.expires_at:
                del self._jobs[job.id]
                return NOT_EXIST
            job.gets += 1
            if job.first_get_at is None:
                job.first_get_at = now
            if job.phantom:
                return NOT_EXIST
            elapsed = now - job.created
            if not job.started or elapsed < job.duration_s * PENDING_SHARE:
                return JobView("Pending", None, [], [])
            if not job.finished or elapsed < job.duration_s:
                return JobView("Processing", None, [], [])
            if job.seen_done_at is None:
                job.seen_done_at = now
            if job.failed:
                return JobView("Error", None, list(job.messages), list(job.warnings))
            results = list(job.results) if with_results else None
            return JobView("Completed", results, [], list(job.warnings))

    def release(self, job_id: str) -> None:
        """End the job's processing time now (it completes once its OCR is done): a test holds
        a job with a long processing time and releases it on an event, not after a margin."""
        with self._lock:
            job = self._jobs.get(canonical_job_id(job_id))
            if job is not None:
                job.duration_s = min(job.duration_s, self.clock() - job.created)

    def cancel(self, job_id: str) -> None:
        """Forget the job: later GETs read NotExist, a running OCR is dropped when it ends."""
        with self._lock:
            self._jobs.pop(canonical_job_id(job_id), None)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued job has been worked on; True when none is left."""
        with self._lock:
            pending = set(self._futures)
        _done, not_done = wait(pending, timeout=timeout_s)
        return not not_done

    def stats(self) -> dict[str, object]:
        """Counts for benchmarks: jobs by status, GETs per job, detection lag."""
        with self._lock:
            jobs = list(self._jobs.values())
        lags = [j.seen_done_at - j.ready_at for j in jobs if j.seen_done_at and j.ready_at]
        return {
            "jobs": len(jobs),
            "submitted": self.submitted,
            "gets": sum(j.gets for j in jobs),
            # How many jobs were asked for how many times: {"1": 1000} is each once.
            "jobs_by_gets": {
                str(gets): n for gets, n in sorted(Counter(j.gets for j in jobs).items())
            },
            "finished": sum(j.finished for j in jobs),
            "seen_done": sum(j.seen_done_at is not None for j in jobs),
            "mean_detection_lag_s": sum(lags) / len(lags) if lags else None,
        }

    def timings(self, job_ids: list[str]) -> list[JobTiming]:
        """Each known job's timeline, for benchmarks that compare polling policies."""
        with self._lock:
            jobs = [self._jobs[job_id] for job_id in job_ids if job_id in self._jobs]
        return [
            JobTiming(
                j.id, j.created, j.duration_s, j.ready_at, j.first_get_at, j.seen_done_at, j.gets
            )
            for j in jobs
        ]

    def close(self) -> None:
        """Stop the workers; queued jobs are abandoned."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _forget_future(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _draw_duration(self) -> float:
        timing = self.settings.processing
        if timing.kind == "fixed" or timing.sigma == 0 or timing.seconds == 0:
            return timing.seconds
        return self.rng.lognormvariate(math.log(timing.seconds), timing.sigma)

    def _purge_expired(self, now: float) -> None:
        if self.submitted % 1000 == 0:
            for job_id in [j.id for j in self._jobs.values() if now >= j.expires_at]:
                del self._jobs[job_id]

    def _run(self, job: Job, body: RecognizeBodyIn, image: bytes, regions_required: bool) -> None:
        with self._lock:
            job.started = True
        results: list[dict[str, str]] = []
        messages: list[str] = []
        warnings: list[str] = []
        try:
            if job.forced_error:
                messages.append("recognition failed (injected fault)")
            elif self.settings.simulate or self.engine is None:
                results = simulate(job.id, body)
            else:
                results, warnings = recognise(self.engine, body, image)
        except (ImageError, LanguageUnavailableError) as exc:
            messages.append(str(exc))
        except Exception as exc:  # a job must end, never hang: report and move on
            log.exception("job %s failed inside the emulator", job.id)
            messages.append(f"internal error while recognising: {type(exc).__name__}")
        with self._lock:
            job.results, job.messages, job.warnings = results, messages, warnings
            job.failed = bool(messages)
            job.finished = True
            job.ready_at = max(self.clock(), job.created + job.duration_s)


def simulate(job_id: str, body: RecognizeBodyIn) -> list[dict[str, str]]:
    """Results of known content, without OCR: see :func:`simulated_text`."""
    regions = sorted(body.settings.regions or [], key=lambda r: r.order)
    results: list[dict[str, str]] = []
    if not regions:
        box = (0, 0, 100, 20)
        text = simulated_text(job_id, 0)
        return render_region(
            body.settings.result_type,
            recognition=recognition_of_text(text, box),
            order=0,
            rect=box,
            image=None,
            engine_name="simulated",
        )
    for region in regions:
        r = region.rect
        box = (r.top_left_x, r.top_left_y, r.bottom_right_x, r.bottom_right_y)
        results += render_region(
            body.settings.result_type,
            recognition=recognition_of_text(simulated_text(job_id, region.order), box),
            order=region.order,
            rect=box,
            image=None,
            engine_name="simulated",
        )
    return results


def simulated_text(job_id: str, order: int) -> str:
    """The text a simulated region reads as: known in advance from its job id and order."""
    return f"REGION {order} OF {job_id[:8].upper()}"


def recognise(
    engine: Engine, body: RecognizeBodyIn, image_bytes: bytes
) -> tuple[list[dict[str, str]], list[str]]:
    """Real OCR of every region, in ascending ``order``; returns results and warnings."""
    settings = body.settings
    page = load_image(image_bytes)
    regions = sorted(settings.regions or [], key=lambda r: r.order)
    whole_page = not regions
    boxes = (
        [(0, 0, page.width, page.height)]
        if whole_page
        else [
            (r.rect.top_left_x, r.rect.top_left_y, r.rect.bottom_right_x, r.rect.bottom_right_y)
            for r in regions
        ]
    )
    orders = [0] if whole_page else [r.order for r in regions]
    documents = frozenset(FORMATS[settings.result_type]) & NATIVE_DOCUMENTS
    results: list[dict[str, str]] = []
    warnings: list[str] = []
    for index, (box, order) in enumerate(zip(boxes, orders, strict=True)):
        crop = crop_region(page, box, index)
        warnings += crop.warnings
        work = rotate(crop.image, settings.rotate)
        if settings.make_binarization:
            # Before deskewing: specks are still sharp (turning smears them into blots the
            # size of a full stop), and the white it fills the turned corners with is the
            # background's own.
            work = binarize(work)
        if settings.make_skew_correct:
            work, _angle = deskew(work)
        work, factor = upsample(work)
        recognition: Recognition = engine.recognize(
            work,
            language=settings.language,
            whole_page=whole_page,
            documents=documents,
            dpi=PDF_DPI * factor,  # an upsampled crop's PDF page keeps the region's size
        ).placed(scale=factor, dx=crop.origin[0], dy=crop.origin[1])
        results += render_region(
            settings.result_type,
            recognition=recognition,
            order=order,
            rect=crop.rect,
            image=page.crop(crop.rect),
            engine_name=engine.name,
        )
    return results, warnings
