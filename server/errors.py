"""Domain errors. Errors raised at a boundary carry their HTTP status; one handler renders them."""

from __future__ import annotations


class TouchpointError(Exception):
    """Base class of every error Touchpoint raises on purpose."""


class ConfigError(TouchpointError):
    """A setting or the environment is wrong; the CLI prints it as one line, not a traceback."""


class RequestError(TouchpointError):
    """Bad input from a client: becomes a JSON response with ``status`` and ``error``."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class PayloadTooLarge(RequestError):
    status = 413


class RateLimited(RequestError):
    status = 429
