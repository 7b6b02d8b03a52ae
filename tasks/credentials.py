"""Credentials for the real service from a Prefect block, with the environment as fallback.

``OcrflowCredentials`` holds the client id, the client secret (encrypted by the server, shown
masked in the UI) and the base URL; ``get_client()`` builds a client with them. Flows build
their settings with :func:`load_settings`: the environment (``OCRFLOW_*``) first, then the
block named by ``OCRFLOW_CREDENTIALS_BLOCK`` (default ``ocrflow``) when it exists. A task
called without a runtime opens its own from them (:func:`given_or_own`). The secret never
enters a parameter, a Variable, a log line or an artifact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from prefect.blocks.core import Block
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.logging import get_run_logger
from pydantic import Field, SecretStr

from ocrflow.client import OcrClient
from ocrflow.runtime import Runtime, open_runtime
from ocrflow.settings import OcrflowSettings

DEFAULT_BLOCK_NAME = "ocrflow"


class OcrflowCredentials(Block):
    """Aspose Cloud client credentials for ocrflow (dashboard.aspose.cloud → Applications)."""

    _block_type_name = "ocrflow credentials"
    _block_type_slug = "ocrflow-credentials"
    _description = "Client credentials and API address of Aspose.OCR Cloud (or the emulator)."

    client_id: str = Field(description="OAuth client id")
    client_secret: SecretStr = Field(description="OAuth client secret")
    base_url: str | None = Field(None, description="API root; empty means the vendor's")

    def applied_to(self, settings: OcrflowSettings) -> OcrflowSettings:
        """``settings`` with this block's credentials and address laid over them (a copy)."""
        changes: dict[str, object] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.base_url:
            changes["base_url"] = self.base_url.rstrip("/")
        return settings.model_copy(update=changes)

    def get_client(self, settings: OcrflowSettings | None = None) -> OcrClient:
        """A client of the service with these credentials; the other settings from
        ``settings`` (default: the environment). Use as ``async with block.get_client() as c``.
        """
        return OcrClient(self.applied_to(settings or OcrflowSettings()))


async def load_settings() -> OcrflowSettings:
    """Settings from the environment, with the credentials block laid over when it exists."""
    settings = OcrflowSettings()
    name = os.environ.get("OCRFLOW_CREDENTIALS_BLOCK", DEFAULT_BLOCK_NAME)
    try:
        block = cast(OcrflowCredentials, await OcrflowCredentials.aload(name))
    except (ValueError, ObjectNotFound):
        _logger().debug("no %r credentials block: using the environment", name)
        return settings
    settings = block.applied_to(settings)
    _logger().info("credentials from block %r (client id %s…)", name, block.client_id[:4])
    return settings


@asynccontextmanager
async def given_or_own(runtime: Runtime | None, *, ledger: bool = True) -> AsyncIterator[Runtime]:
    """The runtime a task was given, or one of its own from :func:`load_settings` (its client,
    and its ledger unless ``ledger=False``, opened for the call and closed after it): what lets
    a user's flow call the tasks without opening anything first."""
    if runtime is not None:
        yield runtime
        return
    async with open_runtime(await load_settings(), ledger=ledger) as own:
        yield own


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside a flow or task run; this module's outside (the command line)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
