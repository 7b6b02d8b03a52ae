"""Settings of the core: one pydantic-settings class, prefix ``OCRFLOW_``, built at the edge."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VENDOR_BASE_URL = "https://api.aspose.cloud"
RETENTION_S = 24 * 3600.0  # the service keeps results for 24 h after submission


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

    @model_validator(mode="after")
    def _strip_trailing_slash(self) -> ClientSettings:
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def resolved_token_url(self) -> str:
        """The token endpoint: the explicit setting, else ``{base_url}/connect/token``."""
        return self.token_url or f"{self.base_url}/connect/token"
