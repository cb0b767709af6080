"""Retrying the requests a server refuses for now (429, 5xx, a dropped connection), with backoff.

A model server under load answers 429 or 503 and often says when to come back (``Retry-After``);
batch jobs that keep many requests in flight meet this routinely, so every ChatModel call goes through
:func:`call_with_retries`. The delay is the server's ``Retry-After`` when it sends one (capped), else
exponential backoff with jitter. Errors that say the request itself is wrong (400, 401, 404, a schema
the server rejects) are never retried: they would fail the same way again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from recai.errors import RecaiError

log = logging.getLogger("recai.llm")
T = TypeVar("T")

#: HTTP statuses that mean "not now" rather than "never".
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Exception class names (from openai and httpx) for a request that never got an answer.
_CONNECTION_ERRORS = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "ReadError",
        "RemoteProtocolError",
        "PoolTimeout",
    }
)


class TransientModelError(RuntimeError, RecaiError):
    """Raised by a backend for a failure worth retrying, so the retry loop need not guess from the type.

    Args:
        message: What failed.
        retry_after: The server's hint in seconds, if it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a refused request is tried again.

    Attributes:
        max_retries: Retries after the first try (0: none).
        base_delay_s: The first backoff; each retry doubles it (with jitter).
        max_delay_s: The longest backoff.
        max_retry_after_s: The longest ``Retry-After`` believed; a server asking for more gets this much.
    """

    max_retries: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("retry delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return backoff * (0.5 + random.random() / 2)  # jitter: clients refused together come back apart


class RetryCounter:
    """Thread-safe count of retries in this process (the batch progress bar shows the new ones).

    Attributes:
        retries: Retries so far.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0

    def add(self) -> None:
        with self._lock:
            self.retries += 1


retries = RetryCounter()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (openai's ``APIStatusError`` and httpx's errors do)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retry_after_of(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date; also ``retry-after-ms``), if it sent one."""
    if isinstance(exc, TransientModelError):
        return exc.retry_after
    headers: Any = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again later can succeed."""
    if isinstance(exc, TransientModelError):
        return True
    status = status_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUSES
    return type(exc).__name__ in _CONNECTION_ERRORS or isinstance(exc, ConnectionError | TimeoutError)


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "request",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried again after each transient failure until ``policy.max_retries`` are spent."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            if attempt > policy.max_retries or not is_transient(exc):
                raise
            wait = policy.delay(attempt, retry_after_of(exc))
            status = status_of(exc)
            log.warning(
                "%s failed (%s%s); retry %d of %d in %.1f s",
                what,
                f"HTTP {status}: " if status else "",
                type(exc).__name__,
                attempt,
                policy.max_retries,
                wait,
            )
            retries.add()
            sleep(wait)
