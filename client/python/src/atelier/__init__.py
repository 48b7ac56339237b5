"""Python client for Atelier: generated stubs (atelier.v1) and a thin AtelierClient."""

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

__all__ = ["AtelierClient", "AtelierError", "Detection", "GeneratedImage", "PlaintextError",
           "Prediction", "stream_options", "to_image"]
