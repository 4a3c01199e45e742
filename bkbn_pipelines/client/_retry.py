"""The one retry policy of the client: which failures retry and how long to wait.

Every decision the client takes about retrying goes through :meth:`RetryPolicy.decide`
and is logged at DEBUG on ``bkbn_pipelines.client``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

logger = logging.getLogger("bkbn_pipelines.client")

#: Statuses that may succeed when sent again.  Everything else in 4xx is final.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``retry-after``.

    ``retry-after`` may be a number of seconds or an HTTP date.  Unparseable or
    negative values count as absent.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        value = when.timestamp() - now()
        # a date already past says nothing of when to come back: use the backoff
        return value if value > 0 else None
    return value if value >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded, that honours the server's wishes.

    ``decide(attempt, status=..., headers=...)`` returns the seconds to wait before
    the next attempt, or ``None`` when the failure is final.  ``attempt`` counts the
    retries already made (0 before the first retry).
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    now: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """``base * 2**attempt`` capped at ``max_delay``, minus up to 25 % jitter."""
        delay = min(self.base_delay * (2**attempt), self.max_delay)
        return delay * (1 - 0.25 * self.jitter())

    def decide(
        self,
        attempt: int,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        connection_error: bool = False,
        what: str = "request",
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` not to retry."""
        reason = f"status {status}" if status is not None else "connection error"
        if attempt >= self.max_retries:
            logger.debug("%s: %s, no retry left (%d made)", what, reason, attempt)
            return None
        if status is not None and status not in RETRYABLE_STATUSES and status < 500:
            logger.debug("%s: %s is final, not retried", what, reason)
            return None
        if status is None and not connection_error:
            return None
        if headers is not None:
            asked = parse_retry_after(headers, now=self.now)
            if asked is not None:
                if asked <= self.max_retry_after:
                    logger.debug(
                        "%s: %s, retry %d in %.2fs as the server asked",
                        what,
                        reason,
                        attempt + 1,
                        asked,
                    )
                    return asked
                logger.debug(
                    "%s: %s, server asked %.0fs, over the %.0fs cap: backoff instead",
                    what,
                    reason,
                    asked,
                    self.max_retry_after,
                )
        delay = self.backoff(attempt)
        logger.debug("%s: %s, retry %d in %.2fs (backoff)", what, reason, attempt + 1, delay)
        return delay
