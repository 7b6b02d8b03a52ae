"""Emulator settings (prefix ``OCRFLOW_EMULATOR_``) and its fault modes, changeable at run time."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Share = Annotated[float, Field(ge=0.0, le=1.0)]

DEMO_CLIENT_ID = "ocrflow-demo"
DEMO_CLIENT_SECRET = "ocrflow-demo-secret"  # noqa: S105 - the emulator's public demo credential


class ProcessingTime(BaseModel):
    """How long a job takes: fixed, or log-normal with a median and a sigma (of its log)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fixed", "lognormal"] = "fixed"
    seconds: float = Field(0.5, ge=0, description="the fixed time, or the log-normal median")
    sigma: float = Field(0.0, ge=0, le=5)


HostileResult = Literal[
    "truncated_pdf", "billion_laughs", "xxe", "oversize", "unknown_type", "unknown_status"
]


class Faults(BaseModel):
    """What can go wrong, as shares of requests or jobs; all off by default."""

    model_config = ConfigDict(extra="forbid")

    rate_429: Share = 0.0
    retry_after_s: float = Field(1.0, ge=0)
    rate_5xx: Share = 0.0
    latency_s: float = Field(0.0, ge=0, le=120)
    rate_slow: Share = 0.0
    slow_s: float = Field(5.0, ge=0, le=600, description="how late a slow answer comes")
    rate_drop: Share = 0.0
    rate_token_expired: Share = 0.0
    rate_malformed_json: Share = 0.0
    rate_corrupt_base64: Share = 0.0
    rate_not_exist: Share = 0.0
    rate_job_error: Share = 0.0
    rate_hostile: Share = 0.0
    hostile: HostileResult = Field(
        "billion_laughs", description="what replaces the first result entry of a hostile answer"
    )
    xxe_url: str = Field(
        "http://127.0.0.1:9/xxe", description="the external entity a hostile XXE answer names"
    )
    oversize_bytes: int = Field(
        80 * 1024 * 1024, gt=0, le=512 * 1024 * 1024, description="decoded size, oversize fault"
    )
    token_reject_rate: Share = 0.0
    token_429_rate: Share = 0.0
    rate_limit_rps: float | None = Field(None, gt=0, description="429 beyond this many req/s")


class EmulatorSettings(BaseSettings):
    """Everything the emulator is started with; ``create_app(settings)`` takes it."""

    model_config = SettingsConfigDict(
        env_prefix="OCRFLOW_EMULATOR_", env_nested_delimiter="__", extra="ignore"
    )

    client_id: str = DEMO_CLIENT_ID
    client_secret: SecretStr = SecretStr(DEMO_CLIENT_SECRET)
    token_lifetime_s: float = Field(3600.0, gt=0)
    token_ban_after: int = Field(5, ge=0, description="failed token requests before a ban")
    token_ban_s: float = Field(600.0, ge=0)
    retention_s: float = Field(24 * 3600.0, gt=0)
    processing: ProcessingTime = ProcessingTime()
    workers: int = Field(2, ge=1, le=64, description="OCR threads (Tesseract releases the GIL)")
    simulate: bool = Field(False, description="no OCR: generated text of known content")
    max_image_bytes: int = Field(32 * 1024 * 1024, gt=0)
    seed: int | None = Field(None, description="seed of the fault and timing draws")
    faults: Faults = Faults()
