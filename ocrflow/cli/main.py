"""``ocrflow``: run the emulator, submit images, fetch and export results, or the whole demo."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ocrflow.cli.errors import UserError, check_credentials, check_reachable
from ocrflow.cli.localserver import LocalServer, use_local_server
from ocrflow.cli.orphans import crash_orphans_quietly, labelled
from ocrflow.cli.shutdown import leave
from ocrflow.cli.stackfile import join_running_stack
from ocrflow.errors import InvalidJobIdError
from ocrflow.ids import validate_job_id
from ocrflow.interrupt import stop_signal
from ocrflow.jobspec import JobSpec, load_regions_file, parse_region_arg
from ocrflow.jobstate import JobState
from ocrflow.models import Language, ResultType
from ocrflow.redact import mask_credentials, printable
from ocrflow.settings import OcrflowSettings

if TYPE_CHECKING:
    from ocrflow.cli.runner import Runner
    from ocrflow.ledger import JobRecord

app = typer.Typer(
    name="ocrflow",
    help="Get Aspose.OCR Cloud RecognizeRegions results reliably, as Prefect workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _show_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version  # noqa: PLC0415

        console.print(f"ocrflow {version('ocrflow')}")
        raise typer.Exit


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="print the version, exit"
        ),
    ] = False,
) -> None:
    """Get Aspose.OCR Cloud RecognizeRegions results reliably, as Prefect workflows."""


class ExportFormat(StrEnum):
    """How ``results`` prints."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def main() -> None:
    """Entry point: run the app; a user error is one line on stderr and exit code 2. At the
    end, Prefect's queued events and logs get a bounded wait (``ocrflow.cli.shutdown``)."""
    try:
        app()
        code = 0
    except SystemExit as exc:  # typer ends every command this way
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except UserError as exc:
        print_error(str(exc))
        code = 2
    except KeyboardInterrupt:  # before or after a run (a run itself ends on its own terms)
        print_error("interrupted")
        code = 130
    except Exception as exc:
        if os.environ.get("OCRFLOW_DEBUG") or "--verbose" in sys.argv:
            raise
        print_error(explain(exc))
        code = 1
        if isinstance(exc, httpx.TransportError):  # said already: the API is gone
            leave(code, None)
    leave(code, print_error)


def explain(exc: Exception) -> str:
    """One actionable line for a failure nobody caught on purpose."""
    if isinstance(exc, httpx.TransportError):  # ours are wrapped: a raw one is Prefect's API
        api = os.environ.get("PREFECT_API_URL", "the Prefect API")
        return (
            f"the Prefect API ({api}) stopped answering ({type(exc).__name__}): what the run "
            "settled is in the ledger (`ocrflow results`); run the command again once it is back"
        )
    return f"{type(exc).__name__}: {exc} (--verbose shows the traceback)"


@contextmanager
def _said_on_interrupt(message: str) -> Iterator[None]:
    """Ctrl-C inside: ``message`` (what was done, what is left) on one line, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        errors.print(Text(message), highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def print_error(message: str, to: Console | None = None) -> None:
    """One line on stderr (or ``to``): URL passwords masked, control characters escaped, no
    markup read."""
    line = printable(mask_credentials(message), keep_newlines=False)
    shown = Text.assemble(("error:", "bold red"), " ", line)
    (to or errors).print(shown, highlight=False, soft_wrap=True)


def _settings() -> OcrflowSettings:
    """The settings from the environment and ``.env``; a bad value is one line that names its
    variable and what it must be (the value itself is shown unless it is a secret). With the
    stack of `ocrflow serve` up, its Prefect server, ledger and results folder are used."""
    join_running_stack()
    try:
        return OcrflowSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = f"OCRFLOW_{field.upper()}" if field else "an OCRFLOW_* setting"
            shown = "" if "secret" in field else f" (got {str(error.get('input'))[:40]!r})"
            problems.append(f"{name}: {error['msg']}{shown}")
        raise UserError("bad setting " + "; ".join(problems)) from None


def _prepare_run(verbose: bool) -> OcrflowSettings:
    """Everything a command that runs flows checks or starts first: the settings, the Prefect
    server (a local one starts now and boots while the rest is checked), the ledger, Prefect's
    quieting, the service's credentials and reachability. Any problem is one line."""
    settings = _settings()
    server = _prefect_server()
    _require_ledger(settings)
    quiet_prefect(verbose)  # before Prefect loads: it reads its settings once
    _ready(server)
    return _service_settings(settings)


def _named_server(refusal: str) -> str:
    """For commands that change a long-lived server's settings: PREFECT_API_URL's server, else
    the running stack's; ``refusal`` (one line, exit 2) when there is neither."""
    api = os.environ.get("PREFECT_API_URL") or join_running_stack()
    if not api:
        raise UserError(refusal)
    return api


def _prefect_server() -> LocalServer | None:
    """The Prefect server the command's runs go to: the stack's when it runs, PREFECT_API_URL's
    when set, else the local one kept in the background (started now when it is not up)."""
    join_running_stack()
    return use_local_server()


def _ready(server: LocalServer | None) -> None:
    """Wait for a local server this command started (saying so), or check one kept."""
    if server is None:
        return
    if server.process is not None:
        errors.print(
            Text(
                f"starting a local Prefect server for ocrflow's commands ({server.api_url}); "
                "it stays up for the next ones: `ocrflow status` shows it, `ocrflow stop` "
                "stops it, `make ui` shows the runs"
            ),
            highlight=False,
            soft_wrap=True,
        )
    server.ready()


def _service_settings(settings: OcrflowSettings) -> OcrflowSettings:
    """The settings a run will use: with a Prefect server in use, its credentials block (the
    address and credentials the stack saved) over the environment; checked here, before any
    run starts: credentials present, the service answering, the credentials accepted."""
    if os.environ.get("PREFECT_API_URL"):
        from ocrflow.tasks.credentials import load_settings  # noqa: PLC0415 - loads Prefect

        settings = asyncio.run(load_settings())
    _require_credentials(settings)
    check_reachable(settings.base_url)
    check_credentials(settings)
    return settings


def _require_credentials(settings: OcrflowSettings) -> None:
    """The credentials are named (environment or block): else one line now, not an error
    inside a run after Prefect started."""
    missing = [
        name
        for name, value in (
            ("OCRFLOW_CLIENT_ID", settings.client_id),
            ("OCRFLOW_CLIENT_SECRET", settings.client_secret.get_secret_value()),
        )
        if not value.strip()
    ]
    if missing:
        raise UserError(
            f"no credentials: set {' and '.join(missing)} (the Aspose Cloud dashboard's; the "
            "local emulator's are ocrflow-demo / ocrflow-demo-secret)"
        )


def _require_ledger(settings: OcrflowSettings) -> None:
    """The ledger opens (a bad URL, a database down): else one line now, before Prefect."""
    from ocrflow.ledger import Ledger, LedgerUnavailableError  # noqa: PLC0415

    async def open_and_close() -> None:
        async with Ledger.connect(settings.ledger_url):
            pass

    try:
        asyncio.run(open_and_close())
    except LedgerUnavailableError as exc:
        raise UserError(str(exc)) from None


def quiet_prefect(verbose: bool) -> None:
    """Prefect logs every run at INFO to the console; the CLI shows its own summary instead."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without PREFECT_API_URL, Prefect starts a local temporary server; its first start
    # migrates a new database, which takes longer than the default 20 s on a small machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # A Prefect API that stops answering costs each of the run's calls to it this many
    # retries: 2 (a few seconds each) ride out a restart, where Prefect's 5 took over a minute
    # a call and kept a finished command waiting for minutes (measured: 180 s against 34 s).
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")
    if not verbose:
        # The terminal gets the command's own lines; Prefect's (INFO and up: the polls, the
        # runs' summaries, task failures with their tracebacks) still reach the run's logs on
        # the server, so the UI reads as it does for a deployed run, and --verbose shows them.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        # Its background services too (an event it could not send, once per event), and the
        # half-lines its log shipper writes when the API is gone (it honours this switch).
        os.environ.setdefault("PREFECT_INTERNAL_LOGGING_LEVEL", "CRITICAL")
        logging.raiseExceptions = False


# The options `submit` and `recognize` share.
PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="regions files (*.json), folders of *.regions.json, or images with --region"
    ),
]
RegionOpt = Annotated[
    list[str] | None, typer.Option("--region", "-r", help="x,y,width,height; repeatable")
]
RegionsOpt = Annotated[list[Path] | None, typer.Option(help="a regions file (JSON); repeatable")]
ResultTypeOpt = Annotated[
    str | None,
    typer.Option(help="Text, JSON, Hocr, Pdf, TextAndPdf…; default: the file's, else Text"),
]
LanguageOpt = Annotated[
    str | None, typer.Option(help="recognition language; default: the file's, else English")
]
VerboseOpt = Annotated[bool, typer.Option(help="show Prefect's logs")]


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    simulate: Annotated[bool, typer.Option(help="no OCR: generated known text")] = False,
    processing_s: Annotated[float | None, typer.Option(help="processing time per job")] = None,
) -> None:
    """Serve the local Aspose.OCR Cloud emulator (real OCR, offline)."""
    from ocrflow.emulator.__main__ import main as serve  # noqa: PLC0415 - only this command needs it

    arguments = ["--host", host, "--port", str(port)]
    if simulate:
        arguments.append("--simulate")
    if processing_s is not None:
        arguments += ["--processing-s", str(processing_s)]
    serve(arguments)


@app.command()
def submit(
    paths: PathsArg = None,
    region: RegionOpt = None,
    regions: RegionsOpt = None,
    result_type: ResultTypeOpt = None,
    language: LanguageOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Submit images with their regions; prints each new job's id.

    A regions file's settings are sent as written; --result-type and --language replace them
    only when given. Each image is checked (it decodes, its regions lie inside it) before
    anything is sent.
    """
    specs = _job_specs(paths or [], region or [], regions or [], result_type, language)
    _prepare_run(verbose)
    from ocrflow.flows.pipeline import summary_of  # noqa: PLC0415 - Prefect loads only when needed
    from ocrflow.flows.submit_regions import SubmitSummary, submit_regions  # noqa: PLC0415

    async def run() -> SubmitSummary:
        await crash_orphans_quietly()
        state = await labelled(submit_regions)(specs, return_state=True)
        return await summary_of(state, SubmitSummary)

    with console.status(f"submitting {len(specs)} image(s)…"):
        summary = asyncio.run(run())
    stopped_by = stop_signal()
    failed = 0
    for item in summary.submissions:
        if item.job_id:
            console.print(item.job_id if len(specs) == 1 else f"{item.job_id}  {item.image}")
            continue
        failed += 1
        if stopped_by is None or item.unrecorded_job_id:  # a stop's "not sent" is summed up
            print_error(f"{item.image}: {item.error}")
    if stopped_by is not None:  # one line: what was sent, what was not, how to go on
        name = signal.Signals(stopped_by).name
        errors.print(
            Text(
                f"interrupted by {name}: {len(summary.job_ids)} of {len(specs)} image(s) "
                f"submitted and recorded (ids above); {failed} not sent: submit them again"
            ),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(128 + stopped_by)
    if failed:
        errors.print(summary.headline(), highlight=False)
        raise typer.Exit(1)


@app.command()
def recognize(
    paths: PathsArg = None,
    region: RegionOpt = None,
    regions: RegionsOpt = None,
    result_type: ResultTypeOpt = None,
    language: LanguageOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Submit images and wait for their results, in one run: prints each region's text.

    The same input as `submit`; the jobs are settled as `fetch` settles them (resubmitted when
    they fail, their results stored in the ledger). Exit 1 when a job did not end stored.
    """
    # Someone waits at the terminal: the first poll comes sooner than a sweep's (1 s), and
    # once a class has history the learned polls are at most 0.25 s late instead of 2 s
    # (a sweep's floor, which made a warm `recognize` 1-2 s slower), unless a setting says so.
    os.environ.setdefault("OCRFLOW_POLL_FIRST_DELAY_S", "0.25")
    os.environ.setdefault("OCRFLOW_POLL_LAG_FLOOR_S", "0.25")
    specs = _job_specs(paths or [], region or [], regions or [], result_type, language)
    runner = None if verbose else _background_runner()
    if runner is not None:  # the run goes on in a process that has Prefect loaded already
        left = (
            "interrupted: the run goes on in ocrflow's background runner; `ocrflow results` "
            "shows its jobs once stored"
        )
        with _said_on_interrupt(left), console.status(f"recognizing {len(specs)} image(s)…"):
            answer = runner.recognize(specs, console.width, console.is_terminal)
        sys.stdout.write(str(answer.get("stdout", "")))
        sys.stderr.write(str(answer.get("stderr", "")))
        raise typer.Exit(int(answer.get("exit_code", 1)))
    settings = _prepare_run(verbose)
    left = "interrupted: the jobs sent so far are in the ledger; `ocrflow fetch` settles them"
    with _said_on_interrupt(left), console.status(f"recognizing {len(specs)} image(s)…"):
        code = asyncio.run(recognize_here(specs, settings, console, errors))
    raise typer.Exit(code)


async def recognize_here(
    specs: list[JobSpec], settings: OcrflowSettings, out: Console, err: Console
) -> int:
    """`recognize`'s run and what it prints, in this process (the command's own, or the
    background runner's); its exit code: 1 when a job did not end stored."""
    from ocrflow.cli.output import results_table  # noqa: PLC0415
    from ocrflow.flows.pipeline import PipelineSummary, ocr_pipeline, summary_of  # noqa: PLC0415

    await crash_orphans_quietly()
    state = await labelled(ocr_pipeline)(specs, return_state=True)
    summary = await summary_of(state, PipelineSummary)
    stored = [r.final_job_id or r.job_id for r in summary.fetched.reports if r.outcome == "stored"]
    if stored:
        found, _ = await _read_results(settings, stored)
        out.print(results_table(found))
    for submission in summary.submitted.submissions:
        if submission.error:
            print_error(f"{submission.image}: {submission.error}", err)
    for report in summary.fetched.reports:
        if report.outcome != "stored":
            print_error(f"job {report.job_id} {report.outcome}: {report.message}", err)
    if not state.is_completed():
        err.print(Text(printable(summary.headline())), highlight=False, soft_wrap=True)
        return 1
    return 0


def checked_settings() -> OcrflowSettings:
    """The settings of a run about to start, checked (the ledger, the credentials, the
    service), for the background runner: what `_prepare_run` checks, the server aside."""
    settings = _settings()
    _require_ledger(settings)
    return _service_settings(settings)


def _background_runner() -> Runner | None:
    """The background runner for `recognize` when it would use the local server (started
    now, with the server, when none is kept); None with the stack's or a named server."""
    _settings()  # a bad setting is one line here, not an answer from the runner
    server = _prefect_server()
    if server is None:
        return None
    from ocrflow.cli.localserver import HOME  # noqa: PLC0415
    from ocrflow.cli.runner import use_runner  # noqa: PLC0415

    runner = use_runner(HOME)
    _ready(server)
    if runner.started and server.process is None:  # the server was kept: say why this is slow
        errors.print(
            Text(
                "starting a background runner for these settings (a changed setting or an "
                "updated ocrflow gets one of its own; `ocrflow status` lists them)"
            ),
            highlight=False,
            soft_wrap=True,
        )
    try:
        runner.ready()
    except UserError as exc:  # the run goes on here, as it would without a runner
        print_error(f"{exc}; running in this process instead")
        return None
    return runner


@app.command()
def fetch(
    job_ids: Annotated[
        list[str] | None, typer.Argument(help="job ids; none = every unfinished job")
    ] = None,
    window: Annotated[int | None, typer.Option(help="jobs handled at once")] = None,
    max_resubmissions: Annotated[int | None, typer.Option(help="per failed job")] = None,
    verbose: Annotated[bool, typer.Option(help="show Prefect's logs")] = False,
) -> None:
    """Fetch, decode, process and store the results of jobs (resubmitting failed ones)."""
    for job_id in job_ids or []:
        try:
            validate_job_id(job_id)
        except InvalidJobIdError as exc:
            raise UserError(str(exc)) from exc
    _prepare_run(verbose)
    from ocrflow.cli.output import fetch_table  # noqa: PLC0415
    from ocrflow.flows.fetch_results import fetch_results  # noqa: PLC0415
    from ocrflow.flows.pipeline import summary_of  # noqa: PLC0415
    from ocrflow.flows.reports import PROGRESS_LISTENER, FetchSummary  # noqa: PLC0415

    async def run() -> tuple[Any, FetchSummary | None]:
        await crash_orphans_quietly()
        state = await labelled(fetch_results)(
            job_ids=job_ids or None,
            window=window,
            max_resubmissions=max_resubmissions,
            return_state=True,
        )
        if state.is_cancelled():
            return state, None
        return state, await summary_of(state, FetchSummary)

    with _progress() as progress:
        bar = progress.add_task("settling jobs", total=len(job_ids) if job_ids else None)
        token = PROGRESS_LISTENER.set(lambda report: progress.advance(bar))
        try:
            state, summary = asyncio.run(run())
        finally:
            PROGRESS_LISTENER.reset(token)
    if summary is None:  # interrupted (SIGINT/SIGTERM): one line, the shell's exit code
        message = state.message or "interrupted"
        errors.print(Text(printable(message)), highlight=False, soft_wrap=True)
        raise typer.Exit(143 if "SIGTERM" in message else 130)
    console.print(fetch_table(summary))
    if state.is_failed():
        raise typer.Exit(1)


@app.command()
def results(
    job_id: Annotated[str | None, typer.Argument(help="one job; all when omitted")] = None,
    output_format: Annotated[
        ExportFormat, typer.Option("--format", help="output")
    ] = ExportFormat.TABLE,
    output: Annotated[Path | None, typer.Option(help="write to this file")] = None,
) -> None:
    """Show stored results as a table, or export them as JSON or CSV."""
    from ocrflow.cli.output import results_csv, results_json, results_table  # noqa: PLC0415

    settings = _settings()
    job_ids = None
    if job_id is not None:
        try:
            job_ids = [validate_job_id(job_id)]
        except InvalidJobIdError as exc:
            raise UserError(str(exc)) from exc
    with _said_on_interrupt("interrupted: nothing was changed (the ledger is only read)"):
        found, job = asyncio.run(_read_results(settings, job_ids))
    if job_ids and job is None:
        ledger = mask_credentials(settings.ledger_url)
        raise UserError(f"job {job_ids[0]} is not in the ledger ({ledger})")
    if job is not None and job.state.value != "stored":  # say why there is nothing
        follow = f" (resubmitted as {job.replaced_by})" if job.replaced_by else ""
        reason = f": {job.last_error}" if job.last_error else ""
        line = f"job {job.job_id} is {job.state.value}{follow}{reason}"
        errors.print(Text(printable(mask_credentials(line))), highlight=False, soft_wrap=True)
        if not found:
            raise typer.Exit(1)
    if output_format is ExportFormat.TABLE:
        if output is not None:
            raise UserError("a table is for the screen: use --format json or csv with --output")
        console.print(results_table(found))
        return
    text = results_json(found) if output_format is ExportFormat.JSON else results_csv(found)
    if output is None:
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
        return
    partial = output.with_name(f".{output.name}.partial")
    try:  # written whole or not at all: an interrupted export leaves no half file behind
        with _said_on_interrupt(f"interrupted: {output} was not written"):
            try:
                partial.write_text(text, encoding="utf-8")
                partial.replace(output)
            finally:
                partial.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from exc
    console.print(f"{len(found)} result entries written to {output}")


@app.command()
def jobs(
    state: Annotated[
        list[JobState] | None, typer.Option(help="only jobs in this state; repeatable")
    ] = None,
) -> None:
    """List the ledger's jobs, oldest first: image, state, age, polls and last error."""
    from ocrflow.cli.output import jobs_table  # noqa: PLC0415

    settings = _settings()
    _require_ledger(settings)
    with _said_on_interrupt("interrupted: nothing was changed (the ledger is only read)"):
        found = asyncio.run(_read_jobs(settings))
    wanted = set(state or [])
    shown = [job for job in found if not wanted or job.state in wanted]
    counts = Counter(job.state.value for job in shown)
    title = f"{len(shown)} job(s)" + (
        f": {', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}" if counts else ""
    )
    console.print(jobs_table(shown, datetime.now(UTC), title))


async def _read_jobs(settings: OcrflowSettings) -> list[JobRecord]:
    from ocrflow.ledger import Ledger  # noqa: PLC0415

    async with Ledger.connect(settings.ledger_url) as ledger:
        return await ledger.jobs()


@app.command()
def demo(
    samples: Annotated[Path, typer.Option(help="folder of *.regions.json")] = SAMPLES,
    processing_s: Annotated[float, typer.Option(help="the emulator's time per job")] = 1.0,
    verbose: Annotated[bool, typer.Option(help="show Prefect's logs")] = False,
) -> None:
    """The whole product offline: emulator + Prefect + SQLite on the shipped samples."""
    from ocrflow.cli.demo import run_demo  # noqa: PLC0415

    quiet_prefect(verbose)
    left = (
        "interrupted: the demo's jobs submitted so far are in the ledger; "
        "`ocrflow fetch` settles them (the emulator that ran them is gone: they fail)"
    )
    with _said_on_interrupt(left):
        matched = run_demo(samples, processing_s=processing_s, console=console)
    if not matched:
        raise typer.Exit(1)


@app.command("setup-credentials")
def setup_credentials(
    block: Annotated[str, typer.Option(help="block name")] = "ocrflow",
) -> None:
    """Save OCRFLOW_CLIENT_ID, OCRFLOW_CLIENT_SECRET and OCRFLOW_BASE_URL as a credentials block.

    The secret is read from the environment (or prompted for), never from the command line.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    settings = _settings()
    secret = settings.client_secret.get_secret_value() or typer.prompt(
        "client secret", hide_input=True
    )
    if not settings.client_id:
        raise UserError("set OCRFLOW_CLIENT_ID (and OCRFLOW_CLIENT_SECRET) first")
    from ocrflow.tasks.credentials import OcrflowCredentials  # noqa: PLC0415

    credentials = OcrflowCredentials(
        client_id=settings.client_id, client_secret=secret, base_url=settings.base_url
    )
    asyncio.run(_save_block(credentials, block))
    console.print(f"credentials of client id {settings.client_id[:4]}… saved as block {block!r}")


async def _save_block(block: Any, name: str) -> None:
    await block.save(name, overwrite=True)


@app.command("setup-alerts")
def setup_alerts(
    webhook_url: Annotated[str, typer.Option(help="where alerts are POSTed (JSON)")],
) -> None:
    """Create (or update) the webhook block and the alerts' automations.

    Three automations: a failed run, a crashed run, the service unreachable for a while."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not webhook_url.startswith(("http://", "https://")):
        raise UserError(f"not an http(s) URL: {webhook_url}")
    # A temporary server would keep the automations nowhere; the local server of the
    # commands runs without automation services (alerts are the stack's).
    _named_server(
        "no Prefect server for the alerts: start the stack with `ocrflow serve "
        "--webhook-url URL`, or set PREFECT_API_URL to a server of yours"
    )
    from ocrflow.cli.server_setup import setup_alerts as create  # noqa: PLC0415

    created = asyncio.run(create(webhook_url))
    console.print(f"alerts go to {mask_credentials(webhook_url)} ({len(created)} automations)")


@app.command("sweep-interval")
def sweep_interval(
    seconds: Annotated[int, typer.Argument(min=5, help="seconds")],
    sharded: Annotated[
        bool | None,
        typer.Option(
            "--sharded/--single",
            help="sweep with the sharded sweep (several workers) or the plain one; "
            "default: whichever is scheduled now",
        ),
    ] = None,
    shards: Annotated[
        int | None, typer.Option(min=1, help="shard runs per sharded sweep (shard workers)")
    ] = None,
) -> None:
    """Set how often the deployed sweep runs (replaces its schedule on the server)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A temporary server would hold no deployment: say where to point instead.
    api = _named_server(
        "no Prefect server to change: set PREFECT_API_URL to the stack's API "
        "(`ocrflow serve` prints it, e.g. http://127.0.0.1:4200/api)"
    )
    import httpx  # noqa: PLC0415
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415

    from ocrflow.cli.server_setup import set_sweep_interval  # noqa: PLC0415

    try:
        chosen = asyncio.run(set_sweep_interval(seconds, sharded=sharded, shards=shards))
    except ObjectNotFound as exc:
        raise UserError(
            f"the sweep is not deployed on the Prefect server at {mask_credentials(api)}: "
            "start the stack with `ocrflow serve` (it deploys prefect.yaml)"
        ) from exc
    except httpx.HTTPError as exc:
        raise UserError(
            f"cannot reach the Prefect server at {mask_credentials(api)} "
            f"({type(exc).__name__}): is the stack running? `ocrflow serve` starts it"
        ) from exc
    extra = f", {shards} shard runs each" if shards else ""
    console.print(f"{chosen} now runs every {seconds} s{extra}")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Prefect server port")] = 4200,
    emulator_port: Annotated[int, typer.Option(help="emulator port")] = 8080,
    sweep_interval_s: Annotated[
        int | None,
        typer.Option(
            min=5,
            help="seconds between sweeps; default: as the server has it (600 the first time)",
        ),
    ] = None,
    webhook_url: Annotated[str | None, typer.Option(help="alerts go here")] = None,
    home: Annotated[Path, typer.Option(help="logs, pids, ledger")] = Path("var/stack"),
    emulator: Annotated[
        bool, typer.Option(help="start the emulator; off: the service OCRFLOW_* names")
    ] = True,
    server_database_url: Annotated[
        str | None,
        typer.Option(
            help="the Prefect server's database, postgresql+asyncpg://… (created if missing); "
            "default: SQLite in --home",
            envvar="OCRFLOW_SERVER_DATABASE_URL",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis for the server's messaging (redis://…)", envvar="OCRFLOW_REDIS_URL"
        ),
    ] = None,
    shard_workers: Annotated[
        int, typer.Option(min=0, help="workers for the sharded sweep (scale-out)")
    ] = 0,
) -> None:
    """Start the whole stack: Prefect server, emulator, deployments, workers, alerts."""
    from ocrflow.cli.stack import start_stack  # noqa: PLC0415

    stopped = "interrupted: what had started of the stack was stopped; nothing is left running"
    with (
        _said_on_interrupt(stopped),
        console.status("starting the Prefect server, the emulator and the workers…"),
    ):
        stack = start_stack(
            home,
            server_port=port,
            emulator_port=emulator_port,
            sweep_interval_s=sweep_interval_s,
            webhook_url=webhook_url,
            with_emulator=emulator,
            server_database_url=server_database_url,
            redis_url=redis_url,
            shard_workers=shard_workers,
        )
    workers = ", ".join(name for name in stack.pids if "worker" in name)
    if stack.crashed:
        console.print(
            f"marked crashed (left unfinished by the stopped worker): {', '.join(stack.crashed)}"
        )
    console.print(
        f"Prefect UI and API: {stack.api_url.removesuffix('/api')}\n"
        f"emulator:           {stack.emulator_url}\n"
        f"workers:            {workers}\n"
        f"ledger:             {mask_credentials(stack.env['OCRFLOW_LEDGER_URL'])}\n"
        f"results:            {stack.env['OCRFLOW_RESULTS_DIR']}\n"
        f"logs:               {stack.logs}\n"
        "stop with `make stop` (or `ocrflow stop`)"
    )


@app.command()
def stop(
    home: Annotated[Path, typer.Option(help="the stack's folder")] = Path("var/stack"),
) -> None:
    """Stop the stack started by `serve`, and the local Prefect server (and runners) kept."""
    from ocrflow.cli import localserver  # noqa: PLC0415
    from ocrflow.cli.stack import stop_stack  # noqa: PLC0415

    stopped = stop_stack(home=home)
    stopped += [f"local {name}" for name in stop_stack(home=localserver.HOME)]
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(
    home: Annotated[Path, typer.Option(help="the stack's folder")] = Path("var/stack"),
) -> None:
    """What runs in the background: the stack, the local Prefect server and its runners."""
    from ocrflow.cli import localserver  # noqa: PLC0415
    from ocrflow.cli.stackfile import alive_pids, read_stack_file  # noqa: PLC0415

    found = False
    for title, folder in (
        ("stack", home),
        ("local Prefect server (and runners)", localserver.HOME),
    ):
        alive = alive_pids(folder)
        if not alive:
            continue
        found = True
        record = read_stack_file(folder)
        console.print(f"[bold]{title}[/bold] ({folder})")
        for name, pid in alive.items():
            console.print(f"  {name:<20} pid {pid}")
        if "api_url" in record:
            console.print(f"  {'API':<20} {record['api_url']}")
        for key, label in (("OCRFLOW_LEDGER_URL", "ledger"), ("OCRFLOW_RESULTS_DIR", "results")):
            if key in record:
                console.print(f"  {label:<20} {mask_credentials(record[key])}", highlight=False)
    if not found:
        console.print("nothing of ocrflow's runs in the background")


def _job_specs(
    paths: list[Path],
    region_args: list[str],
    regions_files: list[Path],
    result_type: str | None,
    language: str | None,
) -> list[JobSpec]:
    """Every image to submit, each checked before anything starts (exit 2 on bad input)."""
    chosen: dict[str, Any] = {}
    try:
        if result_type is not None:
            chosen["result_type"] = ResultType(result_type)
        if language is not None:
            chosen["language"] = Language(language)
    except ValueError as exc:
        raise UserError(f"unknown result type or language: {result_type!r}, {language!r}") from exc
    files, images = _sort_paths(paths)
    files = [*regions_files, *files]
    if images and not region_args:
        raise UserError("give --region x,y,width,height for an image, or a regions file")
    if not files and not images:
        raise UserError("give regions files, a folder of them, or an image and --region x,y,w,h")
    try:
        specs = [load_regions_file(file) for file in files]
        extra = [parse_region_arg(text, order) for order, text in enumerate(region_args)]
        if files and region_args and not images:  # regions added to each file's own
            specs = [
                spec.model_copy(
                    update={
                        "regions": [
                            *spec.regions,
                            *(
                                r.model_copy(update={"order": len(spec.regions) + r.order})
                                for r in extra
                            ),
                        ]
                    }
                )
                for spec in specs
            ]
        specs += [JobSpec(image=image, regions=extra) for image in images]
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    specs = [
        spec.model_copy(update={"settings": spec.settings.model_copy(update=chosen)})
        for spec in specs
    ]
    for spec in specs:
        _preflight(spec)
    return specs


def _sort_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(regions files, images) among the paths given; a folder gives its *.regions.json."""
    files: list[Path] = []
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.regions.json"))
            if not found:
                raise UserError(f"no *.regions.json in {path}")
            files += found
        elif path.suffix.casefold() == ".json":
            files.append(path)
        else:
            images.append(path)
    return files, images


def _preflight(spec: JobSpec) -> None:
    """The image exists, decodes, and holds every region: else one line, exit 2, nothing sent."""
    from ocrflow.preflight import InputError, check_submission  # noqa: PLC0415

    if not spec.image.is_file():
        raise UserError(f"image not found: {spec.image}")
    try:
        check_submission(spec.image.read_bytes(), spec.wire_regions(), name=str(spec.image))
    except (InputError, OSError) as exc:
        raise UserError(str(exc)) from exc


async def _read_results(
    settings: OcrflowSettings, job_ids: list[str] | None
) -> tuple[list[Any], JobRecord | None]:
    """The stored results (of one job, or all), and that job's record when one was asked."""
    from ocrflow.ledger import Ledger  # noqa: PLC0415 - SQLAlchemy loads only when needed

    try:
        ledger = await Ledger.open(settings.ledger_url)
    except Exception as exc:  # a bad URL or an unreachable database: one line, password masked
        raise UserError(str(exc)) from None
    try:
        found = await ledger.results(job_ids)
        return found, await ledger.get_job(job_ids[0]) if job_ids else None
    finally:
        await ledger.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
