"""Credentials for the real service from a Prefect block, with the environment as fallback.

``OcrflowCredentials`` holds the client id, the client secret (encrypted by the server, shown
masked in the UI) and the base URL. Flows build their settings with :func:`load_settings`: the
environment (``OCRFLOW_*``) first, then the block named by ``OCRFLOW_CREDENTIALS_BLOCK``
(default ``ocrflow``) when it exists. The secret never enters a parameter, a Variable, a log
line or an artifact.
"""

from __future__ import annotations

import logging
import os
from typing import cast

from prefect.blocks.core import Block
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.logging import get_run_logger
from pydantic import Field, SecretStr

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


async def load_settings() -> OcrflowSettings:
    """Settings from the environment, with the credentials block laid over when it exists."""
    settings = OcrflowSettings()
    name = os.environ.get("OCRFLOW_CREDENTIALS_BLOCK", DEFAULT_BLOCK_NAME)
    try:
        block = cast(OcrflowCredentials, await OcrflowCredentials.aload(name))
    except (ValueError, ObjectNotFound):
        _logger().debug("no %r credentials block: using the environment", name)
        return settings
    settings.client_id = block.client_id
    settings.client_secret = block.client_secret
    if block.base_url:
        settings.base_url = block.base_url.rstrip("/")
    _logger().info("credentials from block %r (client id %s…)", name, block.client_id[:4])
    return settings


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside a flow or task run; this module's outside (the command line)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
