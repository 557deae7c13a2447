"""Domain errors. Errors raised at a boundary carry their HTTP status; one handler renders them."""

from __future__ import annotations


class TouchpointError(Exception):
    """Base class of every error Touchpoint raises on purpose."""


class ConfigError(TouchpointError):
    """A setting or the environment is wrong; the CLI prints it as one line, not a traceback."""


class RequestError(TouchpointError):
    """Bad input from a client: becomes a JSON response with ``status`` and ``error``."""

    status = 400

    def __init__(
        self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.headers = headers or {}


class FieldError(RequestError):
    """Bad input in one field of a request body; ``field`` names it (its path in the body) and
    ``message`` says what is wrong, for the server API's problem bodies. ``detail`` is the whole
    sentence when ``field: message`` would not read well."""

    status = 422

    def __init__(
        self, field: str, message: str, *, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(detail or f"{field}: {message}", status=status)
        self.field = field
        self.message = message


class StorageUnavailable(RequestError):
    """What a request sent could not be stored: the disk is full, the database file cannot be
    written. Nothing of it was kept; the client should send it again later (``Retry-After``)."""

    status = 503
    RETRY_AFTER = 30  # seconds

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"storage unavailable ({reason}): nothing was stored; send it again later",
            headers={"Retry-After": str(self.RETRY_AFTER)},
        )
        self.reason = reason


class PayloadTooLarge(RequestError):
    status = 413


class RateLimited(RequestError):
    """Too many requests; ``retry_after`` whole seconds until the next one is let through
    (the ``Retry-After`` header, RFC 9110 10.2.3)."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
