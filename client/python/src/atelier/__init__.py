"""Python client for Atelier: generated stubs (atelier.v1), AtelierClient, a thin typed
wrapper with one method per RPC, and atelier.aio.AsyncAtelierClient, the same for
asyncio."""

from atelier.aio import AsyncAtelierClient
from atelier.client import (
    AtelierClient,
    AtelierError,
    Detection,
    GeneratedImage,
    PlaintextError,
    Prediction,
    stream_options,
    to_image,
)

__all__ = ["AsyncAtelierClient", "AtelierClient", "AtelierError", "Detection", "GeneratedImage",
           "PlaintextError", "Prediction", "stream_options", "to_image"]
