"""Retries for teacher transports: exponential backoff with full jitter, Retry-After honoured, one error type out."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from vidroute.errors import TeacherError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """How a backend classifies one failure: retry it or not, and how long the server asked us to wait."""

    retry: bool
    retry_after: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` extra tries after the first; waits are uniform in [0, min(max_delay, base_delay * 2**n)]
    ("full jitter"), or the server's Retry-After (capped at `max_retry_after`) when it sends one."""

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, retry_index: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry_index` (0-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        cap = min(self.max_delay, self.base_delay * (2**retry_index))
        return (rng or random).uniform(0.0, cap)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: either a number of seconds or an HTTP date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def call_with_retries(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], Verdict],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `fn`; on a failure that `classify` calls retryable, wait and try again up to `policy.max_retries` times.

    Non-retryable failures raise `TeacherError` at once; so does running out of retries. `TeacherError`s raised
    by `fn` itself pass through untouched (they are already classified).
    """
    attempt = 0
    while True:
        try:
            return fn()
        except TeacherError:
            raise
        except Exception as exc:
            verdict = classify(exc)
            reason = verdict.reason or f"{type(exc).__name__}: {exc}"
            if not verdict.retry:
                raise TeacherError(f"{what} failed (not retryable): {reason}") from exc
            if attempt >= policy.max_retries:
                raise TeacherError(f"{what} failed after {attempt + 1} tries: {reason}") from exc
            wait = policy.delay(attempt, verdict.retry_after, rng)
            log.warning("%s: %s; retry %d/%d in %.2fs", what, reason, attempt + 1, policy.max_retries, wait)
            sleep(wait)
            attempt += 1
