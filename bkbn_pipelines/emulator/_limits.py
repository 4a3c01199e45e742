"""Rate limits per organization: requests and tokens in fixed windows.

Each organization has one window per counter.  A window opens with the first request
after the previous one closed and lasts ``rate_limit_window_s`` (60 s by default);
``bkbn-ratelimit-*-reset`` is the moment it closes.  A request that would pass a limit
is refused with 429 and ``retry-after`` set to the whole seconds until that moment.
Tokens are charged when a run is admitted, at the cost the run will report in
``usage.tokens``.  A single run costing more than the whole tier is admitted into an
empty window, so no request is refused forever.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ._config import TierConfig

__all__ = ["RateLimiter", "Window"]


@dataclass
class Window:
    limit: int
    used: int = 0
    opened: float = 0.0
    length: float = 60.0

    def roll(self, now: float) -> None:
        if now >= self.opened + self.length:
            self.opened = now
            self.used = 0

    @property
    def reset_at(self) -> float:
        return self.opened + self.length

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


@dataclass
class _OrgWindows:
    requests: Window
    tokens: Window


def _rfc3339(ts: float) -> str:
    """``ts`` rounded *up* to the whole second: a reset is never announced before it
    happens (truncating it would let a pacing client send into a window still full)."""
    return (
        datetime.fromtimestamp(math.ceil(ts), UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


@dataclass
class RateLimiter:
    """Per-organization windows; all methods are thread-safe."""

    window_s: float = 60.0
    _orgs: dict[str, _OrgWindows] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _windows(self, org: str, tier: TierConfig, now: float) -> _OrgWindows:
        windows = self._orgs.get(org)
        if windows is None:
            windows = _OrgWindows(
                Window(tier.requests_per_minute, length=self.window_s, opened=now),
                Window(tier.tokens_per_minute, length=self.window_s, opened=now),
            )
            self._orgs[org] = windows
        windows.requests.limit = tier.requests_per_minute
        windows.tokens.limit = tier.tokens_per_minute
        windows.requests.roll(now)
        windows.tokens.roll(now)
        return windows

    def take_request(self, org: str, tier: TierConfig) -> int | None:
        """Count one request; ``None`` if admitted, else the seconds to wait."""
        now = time.time()
        with self._lock:
            window = self._windows(org, tier, now).requests
            if window.used >= window.limit:
                return window.retry_after(now)
            window.used += 1
            return None

    def take_tokens(self, org: str, tier: TierConfig, tokens: int) -> int | None:
        """Charge ``tokens``; ``None`` if admitted, else the seconds to wait."""
        now = time.time()
        with self._lock:
            window = self._windows(org, tier, now).tokens
            if window.used and window.used + tokens > window.limit:
                return window.retry_after(now)
            window.used += tokens
            return None

    def headers(self, org: str, tier: TierConfig) -> dict[str, str]:
        """The six ``bkbn-ratelimit-*`` headers as they stand now."""
        now = time.time()
        with self._lock:
            windows = self._windows(org, tier, now)
            result = {}
            for name, window in (("requests", windows.requests), ("tokens", windows.tokens)):
                result[f"bkbn-ratelimit-{name}-limit"] = str(window.limit)
                result[f"bkbn-ratelimit-{name}-remaining"] = str(max(0, window.limit - window.used))
                result[f"bkbn-ratelimit-{name}-reset"] = _rfc3339(window.reset_at)
            return result

    def reset(self) -> None:
        with self._lock:
            self._orgs.clear()
