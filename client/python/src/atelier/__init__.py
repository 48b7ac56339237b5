"""Python client for Atelier: generated stubs (atelier.v1) and a thin AtelierClient."""

from atelier.client import AtelierClient, AtelierError

__all__ = ["AtelierClient", "AtelierError"]
