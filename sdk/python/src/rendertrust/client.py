"""The RenderTrust creator API client (:class:`RenderTrustClient`).

Standard library only: ``http.client`` with one kept-alive connection per
thread, JSON in and out, tokens refreshed for the caller.
"""

import hashlib
import http.client
import json
import os
import tempfile
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Mapping, Optional, Union
from urllib.parse import quote, urlencode, urlsplit

from .errors import (
    AuthenticationError,
    ChecksumMismatchError,
    InsufficientCreditsError,
    NoHealthyNodesError,
    NotFoundError,
    RateLimitedError,
    RenderTrustError,
)

__all__ = ["RenderTrustClient", "JSON"]

JSON = Any
"""A decoded JSON value."""

# Limits of the client.
TIMEOUT_SECONDS_DEFAULT = 30.0
"""Default timeout of one HTTP request, in seconds."""
TOKEN_EXPIRY_SKEW_SECONDS = 30.0
"""An access token is refreshed this long before it expires (at most a tenth of its lifetime)."""
RESPONSE_BYTES_MAX = 8 << 20
"""Largest JSON answer read."""
RETRIES_MAX = 3
"""Attempts at a request that is safe to repeat (GET, or POST with an idempotency key)."""
RETRY_BACKOFF_SECONDS = 0.5
"""First pause between attempts; doubled each time."""
DOWNLOAD_CHUNK_BYTES = 1 << 16
"""Read size while streaming a result to disk."""
WAIT_POLL_SECONDS = 1.0
"""Pause between two looks at a job in :meth:`RenderTrustClient.wait_for_job`."""
PAGE_LIMIT = 100
"""Page size when following pages of jobs or transactions."""
USER_AGENT = "rendertrust-python/1.0.0a1"

ENDED_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
"""Job statuses after which a job never changes."""

_ERRORS_BY_STATUS = {
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    429: RateLimitedError,
}
# Statuses worth another attempt of a request that is safe to repeat.
_RETRYABLE_STATUSES = frozenset({502, 503, 504})


class RenderTrustClient:
    """A client of the RenderTrust creator API, as the creator guide uses it::

        client = RenderTrustClient(base_url="https://api.rendertrust.com")
        client.login("you@example.com", "your-password")
        result = client.submit_job(job_type="render", payload={"ref": "s3://your-bucket/scene.blend"})

    The client keeps the session and refreshes the access token before it
    expires and once after a 401. Refresh tokens rotate and presenting a
    used one again revokes the session, so refreshes are serialised: among
    threads sharing the client one refresh is in flight at a time, and the
    others use its result. The client is safe to share between threads and
    is a context manager (``with RenderTrustClient(...) as client:``) that
    closes its connections.

    Every error answer raises a :class:`~rendertrust.RenderTrustError`
    subclass. Only requests that are safe to repeat are retried (GET, and
    POST with an idempotency key, which the client adds to job submissions,
    checkouts and cancels).
    """

    def __init__(self, base_url: str, timeout: float = TIMEOUT_SECONDS_DEFAULT, *,
                 access_token: Optional[str] = None, refresh_token: Optional[str] = None) -> None:
        """Make a client of the API at ``base_url`` (``http://`` or ``https://``).

        ``timeout`` bounds each HTTP request in seconds. A saved session can
        be resumed with ``access_token`` and ``refresh_token``. Raises
        ``ValueError`` for a base URL that is not an absolute http(s) URL.
        """
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {base_url!r}: want http(s)://host")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._parts = parts
        self._local = threading.local()
        self._conns: List[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the tokens
        self._refresh_lock = threading.Lock()  # one refresh in flight
        self._access_token = access_token
        self._refresh_token = refresh_token
        self._expires_at = 0.0 if access_token is None else float("inf")

    # --- session ---

    def __enter__(self) -> "RenderTrustClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's kept-alive connections. The client stays usable."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()
        self._local = threading.local()

    @property
    def access_token(self) -> Optional[str]:
        """The current access token, or None when logged out."""
        with self._lock:
            return self._access_token

    @property
    def refresh_token(self) -> Optional[str]:
        """The current refresh token (it changes at every refresh), or None."""
        with self._lock:
            return self._refresh_token

    def register(self, email: str, password: str, name: str) -> Dict[str, Any]:
        """Create a creator account (password of at least 8 characters) and log in as it.

        Returns the user (``id``, ``email``, ``name``, ``role``). Raises
        RenderTrustError with code ``invalid`` for a bad field, ``conflict``
        for an email already taken.
        """
        return self._start_session("/api/v1/auth/register", {"email": email, "name": name, "password": password})

    def login(self, email: str, password: str) -> Dict[str, Any]:
        """Log in; returns the user. Raises AuthenticationError for a wrong
        email or password, RateLimitedError after too many attempts."""
        return self._start_session("/api/v1/auth/login", {"email": email, "password": password})

    def logout(self) -> None:
        """Revoke the session's refresh token and forget the session (also when
        the server cannot be told: the error is raised then)."""
        with self._lock:
            refresh, self._access_token, self._refresh_token = self._refresh_token, None, None
        if refresh is None:
            return
        try:
            self._request("POST", "/api/v1/auth/logout", body={"refresh_token": refresh})
        except AuthenticationError:
            pass  # already revoked

    def me(self) -> Dict[str, Any]:
        """The logged-in user. Raises AuthenticationError without a session."""
        return self._request("GET", "/api/v1/me", auth=True)

    def _start_session(self, path: str, body: Mapping[str, str]) -> Dict[str, Any]:
        answer = self._request("POST", path, body=body)
        self._set_tokens(answer)
        return answer.get("user") or {}

    def _set_tokens(self, answer: Mapping[str, Any]) -> None:
        with self._lock:
            self._access_token = answer["access_token"]
            self._refresh_token = answer["refresh_token"]
            lifetime = float(answer.get("expires_in") or 0)  # 0: not said; refreshed after a 401 only
            self._expires_at = (time.monotonic() + lifetime - min(TOKEN_EXPIRY_SKEW_SECONDS, lifetime / 10)
                                if lifetime > 0 else float("inf"))

    def _token(self) -> Optional[str]:
        """The access token to send, refreshed first when it is (nearly) expired."""
        with self._lock:
            token, refresh = self._access_token, self._refresh_token
            expired = time.monotonic() >= self._expires_at
        if refresh is not None and (token is None or expired):
            return self._refresh(token)
        return token

    def _refresh(self, stale: Optional[str]) -> Optional[str]:
        """Exchange the refresh token for new tokens, unless another thread
        already replaced ``stale``; returns the access token to use."""
        with self._refresh_lock:
            with self._lock:
                if self._access_token != stale:
                    return self._access_token  # refreshed meanwhile
                refresh = self._refresh_token
            if refresh is None:
                raise AuthenticationError("not logged in", status=401, code="unauthorized")
            try:
                answer = self._request("POST", "/api/v1/auth/refresh", body={"refresh_token": refresh})
            except AuthenticationError:
                with self._lock:
                    self._access_token = self._refresh_token = None
                raise
            self._set_tokens(answer)
            return answer["access_token"]

    # --- jobs ---

    def submit_job(self, job_type: str, payload: JSON = None, priority: Optional[str] = None,
                   gpu_required: bool = False, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Submit a job; its price is held now and charged only if it completes.

        ``payload`` is ``{"ref": "s3://…"}``, a URI string (``s3://``,
        ``ipfs://``, ``https://``), or any JSON. ``priority`` is ``"low"``,
        ``"normal"`` or ``"high"``. The submission carries an idempotency
        key (``idempotency_key`` or a new one), so it is retried safely and
        never runs twice. Returns ``{"job_id", "node_id", "status", "cost"}``.
        Raises InsufficientCreditsError (402), NoHealthyNodesError (503,
        nothing held), RenderTrustError ``invalid`` for a bad field.
        """
        body: Dict[str, Any] = {"job_type": job_type, "gpu_required": gpu_required}
        if isinstance(payload, str) and "://" in payload:
            body["payload_ref"] = payload
        elif payload is not None:
            body["payload"] = payload
        if priority is not None:
            body["priority"] = priority.lower()
        key = idempotency_key or str(uuid.uuid4())
        return self._request("POST", "/api/v1/jobs/dispatch", body=body, auth=True, idempotency_key=key)

    def get_job(self, job_id: str) -> Dict[str, Any]:
        """The job (``id``, ``status``, ``job_type``, ``cost``, ``result_sha256`` …).
        Raises NotFoundError."""
        return self._request("GET", f"/api/v1/jobs/{_segment(job_id)}", auth=True)

    def list_jobs(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """All the caller's jobs, newest first, following every page;
        ``status`` (e.g. ``"RUNNING"``) keeps those in that status."""
        query: Dict[str, str] = {}
        if status is not None:
            query["status"] = status.upper()
        return self._all_pages("/api/v1/jobs", "jobs", query)

    def cancel_job(self, job_id: str) -> Dict[str, Any]:
        """Cancel a QUEUED or DISPATCHED job; its hold is released. Sent with
        an idempotency key, so it is retried safely. Raises NotFoundError,
        RenderTrustError ``conflict`` when it can no longer be cancelled."""
        return self._request("POST", f"/api/v1/jobs/{_segment(job_id)}/cancel", auth=True,
                             idempotency_key=str(uuid.uuid4())) or {}

    def result_link(self, job_id: str) -> Dict[str, Any]:
        """A COMPLETED job's ``{"download_url", "expires_in", "result_sha256", …}``;
        the link works without a token until it expires."""
        return self._request("GET", f"/api/v1/jobs/{_segment(job_id)}/result", auth=True)

    def download_result(self, job_id: str, output_path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
        """Download a COMPLETED job's result to ``output_path`` and return the path.

        The bytes are streamed to a temporary file beside it and must hash
        to the SHA-256 the job's completion recorded; only then is the file
        renamed into place, so ``output_path`` holds the whole verified
        result or is left untouched. Without ``output_path`` the file is
        ``<job_id>.result`` in the working directory. Raises
        ChecksumMismatchError, NotFoundError, RenderTrustError ``conflict``
        for a job that is not COMPLETED.
        """
        link = self.result_link(job_id)
        path = os.fspath(output_path) if output_path is not None else f"{job_id}.result"
        if os.path.isdir(path):
            path = os.path.join(path, f"{job_id}.result")
        url = urlsplit(link["download_url"])
        conn = _connection(url.scheme, url.netloc, self.timeout)
        try:
            target = url.path + (f"?{url.query}" if url.query else "")
            conn.request("GET", target, headers={"User-Agent": USER_AGENT})
            resp = conn.getresponse()
            if resp.status != 200:
                raise _error(resp.status, resp.read(RESPONSE_BYTES_MAX), resp.getheader)
            return _write_verified(resp, path, link["result_sha256"])
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, RenderTrustError):
                raise
            raise RenderTrustError(f"download of job {job_id}'s result: {e}") from e
        finally:
            conn.close()

    def wait_for_job(self, job_id: str, timeout: float = 300.0) -> Dict[str, Any]:
        """Poll the job until it is COMPLETED, FAILED or CANCELLED and return it.
        Raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in ENDED_STATUSES:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    # --- credits ---

    def balance(self) -> Dict[str, Any]:
        """``{"balance", "held", "available"}`` in credits."""
        return self._request("GET", "/api/v1/credits/balance", auth=True)

    def transactions(self) -> List[Dict[str, Any]]:
        """Every credit movement (purchase, hold, deduction, release, refund,
        grant), newest first, following every page; each has an ``entry_id``
        to prove with :meth:`proof` and :meth:`verify`."""
        return self._all_pages("/api/v1/credits/transactions", "transactions", {})

    def usage(self, days: int = 7, tz: Optional[str] = None) -> Dict[str, Any]:
        """Credits consumed per local day: ``{"time_zone", "days": [{"date",
        "credits"}], "total"}``, the guide's 7-day chart by default; ``tz`` is
        an IANA zone such as ``"Europe/Paris"``."""
        query: Dict[str, str] = {"days": str(days)}
        if tz is not None:
            query["tz"] = tz
        return self._request("GET", "/api/v1/credits/usage", query=query, auth=True)

    def packages(self) -> List[Dict[str, Any]]:
        """The credit packages for sale (``id``, ``credits``, ``price_cents`` …)."""
        return self._request("GET", "/api/v1/credits/packages")["packages"]

    def checkout(self, package_id: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Start buying a package: ``{"checkout_url", "session_id", "purchase_id",
        "dev"}``; open ``checkout_url`` to pay (under the dev provider the
        credits are already there). Sent with an idempotency key (yours or a
        new one), so a retry never starts a second purchase."""
        return self._request("POST", "/api/v1/credits/checkout", body={"package_id": package_id}, auth=True,
                             idempotency_key=idempotency_key or str(uuid.uuid4()))

    # --- ledger ---

    def proof(self, entry_id: str) -> Dict[str, Any]:
        """The inclusion proof of a ledger entry, to check offline with
        :func:`rendertrust.verify.verify_proof`. Raises RenderTrustError with
        code ``not_anchored`` (and ``retry_after``) before its anchor."""
        return self._request("GET", f"/api/v1/ledger/{_segment(entry_id)}/proof", auth=True)

    def verify(self, entry_id: str) -> Dict[str, Any]:
        """The server's own verification: ``{"verified": True, "checks": {…}}``."""
        return self._request("GET", f"/api/v1/ledger/{_segment(entry_id)}/verify", auth=True)

    def consistency(self, first: int, second: int) -> Dict[str, Any]:
        """The consistency proof between two anchored tree sizes: the log at
        ``second`` extends the log at ``first`` (check it with
        :func:`rendertrust.verify.verify_proof`)."""
        return self._request("GET", "/api/v1/ledger/consistency", query={"from": str(first), "to": str(second)}, auth=True)

    # --- transport ---

    def _all_pages(self, path: str, key: str, query: Dict[str, str]) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        query = dict(query, limit=str(PAGE_LIMIT))
        while True:
            page = self._request("GET", path, query=query, auth=True)
            items.extend(page.get(key) or [])
            cursor = page.get("next_cursor")
            if not cursor or not page.get(key):
                return items
            query["cursor"] = cursor

    def _request(self, method: str, path: str, *, body: Optional[JSON] = None, query: Optional[Mapping[str, str]] = None,
                 auth: bool = False, idempotency_key: Optional[str] = None) -> Any:
        """Send one API call and return its decoded JSON (None for no body).
        An authenticated call refused with 401 is sent once more after a
        refresh; a call safe to repeat is retried on connection errors and
        502/503/504 (not on 503 no_healthy_nodes, an answer)."""
        target = path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        repeatable = method == "GET" or idempotency_key is not None
        token = self._token() if auth else None
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            try:
                status, raw, header = self._round_trip(method, target, data, headers)
            except (OSError, http.client.HTTPException) as e:
                if repeatable and attempt < RETRIES_MAX:
                    time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
                    continue
                raise RenderTrustError(f"{method} {path}: {e}") from e
            if status == 401 and token is not None and not refreshed and self.refresh_token is not None:
                refreshed = True
                token = self._refresh(token)
                continue
            if 200 <= status <= 299:
                return json.loads(raw) if raw else None
            err = _error(status, raw, header)
            if repeatable and attempt < RETRIES_MAX and status in _RETRYABLE_STATUSES and err.code != "no_healthy_nodes":
                time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            raise err

    def _round_trip(self, method: str, target: str, data: Optional[bytes], headers: Dict[str, str]) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connection(self._parts.scheme, self._parts.netloc, self.timeout)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        try:
            conn.request(method, self._parts.path + target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(RESPONSE_BYTES_MAX)
            return resp.status, raw, resp.getheader
        except Exception:
            conn.close()  # a broken connection is reopened by the next request
            raise


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout)
    return http.client.HTTPConnection(netloc, timeout=timeout)


def _segment(value: str) -> str:
    """One path segment, escaped; an empty id is refused before any request."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _error(status: int, raw: bytes, header: Any) -> RenderTrustError:
    """The exception for an error answer (``{"error": {"code", "message"}}``)."""
    code, message, retry_after = "", raw.decode("utf-8", "replace")[:200] or http.client.responses.get(status, ""), None
    try:
        detail = json.loads(raw)["error"]
        code, message = detail.get("code", ""), detail.get("message", message)
        if detail.get("retry_after_seconds"):
            retry_after = float(detail["retry_after_seconds"])
    except (ValueError, KeyError, TypeError):
        pass
    header_retry = _retry_after(header("Retry-After"))
    if header_retry is not None:
        retry_after = header_retry
    cls = _ERRORS_BY_STATUS.get(status, RenderTrustError)
    if status == 503 and code == "no_healthy_nodes":
        cls = NoHealthyNodesError
    return cls(message, status=status, code=code, request_id=header("X-Request-Id"), retry_after=retry_after)


def _retry_after(value: Optional[str]) -> Optional[float]:
    """A Retry-After header's delay in seconds (delay or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _write_verified(resp: http.client.HTTPResponse, path: str, want_sha256: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = resp.read(DOWNLOAD_CHUNK_BYTES)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != want_sha256.lower():
            raise ChecksumMismatchError(
                f"the result's SHA-256 is {got}, the job recorded {want_sha256}: not written to {path}",
                expected=want_sha256, actual=got)
        os.replace(tmp, path)
        return path
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
