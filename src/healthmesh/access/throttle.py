"""Failed client authentications per caller address, so the token endpoint cannot be used to
guess secrets or to burn the server's CPU (each failed ``client_secret_basic`` check costs one
scrypt, by design).

A sliding window per address: after ``limit`` failures within ``window_s`` seconds, further
token requests from that address are refused (HTTP 429 with ``Retry-After``) *before* any
secret or signature is checked, until the oldest failure leaves the window. Successful
requests are not counted. Keyed by address only, never by client id: an attacker must not be
able to lock a legitimate client out by failing in its name. State is per process (a hub or
node with several workers multiplies the limit by their number) and bounded in size.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    """Sliding-window failure counter per key.

    Example:
        >>> now = [0.0]
        >>> t = FailureThrottle(limit=2, window_s=60, clock=lambda: now[0])
        >>> t.failed("10.0.0.1"); t.failed("10.0.0.1")
        >>> t.retry_after("10.0.0.1"), t.retry_after("10.0.0.2")
        (60, None)
        >>> now[0] = 60.5
        >>> t.retry_after("10.0.0.1") is None
        True
    """

    def __init__(
        self,
        limit: int = 20,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again; None when it is not blocked."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window_s - now))

    def failed(self, key: str) -> None:
        """Count one failed authentication from ``key``."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now) or deque()
            times.append(now)
            while len(times) > self.limit:
                times.popleft()
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
