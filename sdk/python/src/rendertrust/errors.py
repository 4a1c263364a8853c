"""The exceptions of the RenderTrust SDK.

Every error answer of the API becomes a :class:`RenderTrustError`, or the
subclass for its status, carrying the API's stable error code.
"""

from typing import Optional

__all__ = [
    "RenderTrustError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "NotFoundError",
    "RateLimitedError",
    "NoHealthyNodesError",
    "ChecksumMismatchError",
]


class RenderTrustError(Exception):
    """An error answer of the API, or a failure to reach it.

    Attributes:
        status: the HTTP status (0 when no answer was received).
        code: the API's stable error code, e.g. ``"insufficient_credits"``.
        message: what went wrong, in words.
        request_id: the server's id of the request (``X-Request-Id``), for support.
        retry_after: seconds the server asks to wait before trying again
            (``Retry-After``: 429, and 409 ``not_anchored`` for a proof), or None.
    """

    def __init__(self, message: str, *, status: int = 0, code: str = "", request_id: Optional[str] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        if self.status:
            return f"{self.status} {self.code}: {self.message}{where}"
        return self.message


class AuthenticationError(RenderTrustError):
    """401: wrong email or password, or the session ended (log in again)."""


class InsufficientCreditsError(RenderTrustError):
    """402: the account's available credits do not cover the job's price."""


class NotFoundError(RenderTrustError):
    """404: no such job or entry for this account (another user's is not found either)."""


class RateLimitedError(RenderTrustError):
    """429: too many attempts. ``retry_after`` is the number of seconds to wait (or None)."""


class NoHealthyNodesError(RenderTrustError):
    """503 ``no_healthy_nodes``: no compute node runs this job type now; nothing was charged."""


class ChecksumMismatchError(RenderTrustError):
    """A downloaded result's SHA-256 is not the one the job recorded; nothing was written.

    Attributes:
        expected: the SHA-256 (hex) the job's completion recorded.
        actual: the SHA-256 (hex) of the bytes received.
    """

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message, code="checksum_mismatch")
        self.expected = expected
        self.actual = actual
