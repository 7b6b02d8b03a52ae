"""Settings of the core: one pydantic-settings class, prefix ``OCRFLOW_``, built at the edge."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ocrflow.adaptive import AdaptivePollPolicy
from ocrflow.completeness import RefetchPolicy
from ocrflow.polling import RETENTION_S, PollPolicy

VENDOR_BASE_URL = "https://api.aspose.cloud"


class ClientSettings(BaseSettings):
    """How to reach the service: address, credentials, timeouts, retries and limits.

    Built once where the program starts (``ClientSettings()`` reads ``OCRFLOW_*`` from the
    environment and ``.env``) and passed down; never an import-time singleton.
    """

    model_config = SettingsConfigDict(
        env_prefix="OCRFLOW_", env_file=".env", extra="ignore", validate_default=True
    )

    base_url: str = Field(VENDOR_BASE_URL, description="API root; the emulator's for offline use")
    token_url: str | None = Field(None, description="defaults to {base_url}/connect/token")
    client_id: str = Field("", description="OAuth client id (Aspose Cloud dashboard)")
    client_secret: SecretStr = Field(SecretStr(""), description="OAuth client secret")

    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    write_timeout_s: float = Field(60.0, gt=0)
    pool_timeout_s: float = Field(30.0, gt=0)

    concurrency: int = Field(8, ge=1, le=256, description="HTTP calls in flight at once")
    rate_limit_rps: float | None = Field(
        None, gt=0, description="at most this many requests a second (shared by a whole run)"
    )
    max_attempts: int = Field(5, ge=1, le=20, description="tries per HTTP call, first included")
    backoff_base_s: float = Field(0.5, gt=0, description="first transient-retry delay cap")
    backoff_cap_s: float = Field(20.0, gt=0, description="largest transient-retry delay")
    max_retry_after_s: float = Field(
        120.0, ge=0, description="longest server-requested wait honoured in place"
    )
    token_renew_margin_s: float = Field(300.0, ge=0, description="renew this long before expiry")
    token_rejected_cooldown_s: float = Field(
        60.0, ge=0, description="no new token request this long after a rejected credential"
    )

    max_result_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="largest decoded result entry accepted"
    )
    max_image_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="largest image accepted for submission"
    )
    max_response_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="largest answer read from the service (all entries, base64): memory bound",
    )

    @model_validator(mode="after")
    def _strip_trailing_slash(self) -> ClientSettings:
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def resolved_token_url(self) -> str:
        """The token endpoint: the explicit setting, else ``{base_url}/connect/token``."""
        return self.token_url or f"{self.base_url}/connect/token"


class OcrflowSettings(ClientSettings):
    """The whole product's settings: the client's, plus the ledger, results and polling.

    Same ``OCRFLOW_`` prefix; built once where a flow or a command starts.
    """

    ledger_url: str = Field(
        "sqlite+aiosqlite:///var/ocrflow.db",
        description="SQLAlchemy async URL of the ledger; postgresql+asyncpg://… to scale out",
    )
    results_dir: str = Field("var/results", description="where PDFs and raw results are written")
    window: int = Field(200, ge=1, le=5000, description="jobs handled at once by a fetch run")
    batch: int = Field(
        50, ge=1, le=1000, description="jobs a fetch run looks at, decodes and stores per task run"
    )
    claim_lease_s: float = Field(
        300.0, gt=0, description="a sweep's lease on its jobs; renewed while it runs"
    )
    max_resubmissions: int = Field(
        2, ge=0, le=10, description="new jobs sent for one job that ended NotExist or Error"
    )
    poll_first_delay_s: float = Field(1.0, gt=0, description="first wait between two polls")
    poll_growth: float = Field(1.6, ge=1, description="each wait is this much longer")
    poll_max_delay_s: float = Field(30.0, gt=0, description="the longest wait between polls")
    poll_jitter: float = Field(0.1, ge=0, lt=1, description="± share of each wait, at random")
    poll_learn_after: int = Field(
        20, ge=1, description="completed jobs of a class before its learned polling is used"
    )
    poll_lag_floor_s: float = Field(
        2.0, gt=0, description="learned polling: the shortest lag budget between two looks"
    )
    poll_lag_share: float = Field(
        0.38, gt=0, le=1, description="learned polling: lag budget as a share of the median time"
    )
    poll_deadline_s: float = Field(
        6 * 3600.0,
        gt=0,
        lt=RETENTION_S,
        description="give a job up as timed out this long after its submission",
    )
    ledger_retry_s: float = Field(
        60.0, ge=0, description="how long a ledger write is retried through a database outage"
    )
    alert_unreachable_s: float = Field(
        600.0,
        gt=0,
        description="a run alerts once the service has been unreachable (or refusing the "
        "credentials) this long, while it keeps retrying",
    )
    submission_stale_s: float = Field(
        900.0,
        gt=0,
        description="a submission still 'sending' after this was cut off: a sweep reports it",
    )
    incomplete_refetches: int = Field(
        3, ge=0, le=20, description="GETs again of a Completed answer that is incomplete"
    )
    refetch_base_s: float = Field(2.0, ge=0, description="first wait before such a GET")
    refetch_cap_s: float = Field(30.0, ge=0, description="longest wait before such a GET")

    def poll_policy(self) -> PollPolicy:
        """The polling policy these settings describe."""
        return PollPolicy(
            first_delay_s=self.poll_first_delay_s,
            growth=self.poll_growth,
            max_delay_s=max(self.poll_max_delay_s, self.poll_first_delay_s),
            jitter=self.poll_jitter,
            deadline_s=self.poll_deadline_s,
        )

    def refetch_policy(self) -> RefetchPolicy:
        """How incomplete answers are fetched again."""
        return RefetchPolicy(
            max_refetches=self.incomplete_refetches,
            base_s=self.refetch_base_s,
            cap_s=max(self.refetch_cap_s, self.refetch_base_s),
        )

    def learned_poll_policy(self) -> AdaptivePollPolicy:
        """The learned polling policy, falling back on :meth:`poll_policy` until warmed up."""
        return AdaptivePollPolicy(
            lag_floor_s=self.poll_lag_floor_s,
            lag_share=self.poll_lag_share,
            warmup=self.poll_learn_after,
            fallback=self.poll_policy(),
        )
