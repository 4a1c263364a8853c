"""RenderTrust: the Python SDK of the creator API, and an auditor's verifier.

>>> from rendertrust import RenderTrustClient
>>> client = RenderTrustClient(base_url="https://api.rendertrust.com")  # doctest: +SKIP
>>> client.login("you@example.com", "your-password")                    # doctest: +SKIP

:mod:`rendertrust.verify` checks ledger proofs offline against the chain
(``python -m rendertrust.verify proof.json --rpc URL --contract ADDR --chain-id N``).
Standard library only.
"""

from .client import RenderTrustClient
from .errors import (
    AuthenticationError,
    ChecksumMismatchError,
    InsufficientCreditsError,
    NoHealthyNodesError,
    NotFoundError,
    RateLimitedError,
    RenderTrustError,
)

__all__ = [
    "RenderTrustClient",
    "RenderTrustError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "NotFoundError",
    "RateLimitedError",
    "NoHealthyNodesError",
    "ChecksumMismatchError",
]

__version__ = "1.0.0a1"
