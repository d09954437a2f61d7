"""AuthLimiterActor: counts failed authentications per client IP.

Sessions ask it before checking a password; after too many failures in the window
the IP is refused until the window passes, which makes brute force slow.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import pykka

from mailactors.actors.messages import AuthAllowed, AuthFailed, AuthSucceeded, Ping

# Failed attempts allowed per IP (or per /64 for IPv6) within the window.
MAX_AUTH_FAILURES = 10
AUTH_FAILURE_WINDOW = 300.0
# Bound on the number of tracked IPs, so a scan cannot grow memory without limit.
MAX_TRACKED_IPS = 65536


def _key(ip: str) -> str:
    if ":" in ip:
        # IPv6: one host usually has a whole /64.
        import ipaddress

        net = ipaddress.IPv6Network(f"{ip}/64", strict=False)
        return str(net)
    return ip


class AuthLimiterActor(pykka.ThreadingActor):
    def __init__(self, max_failures: int = MAX_AUTH_FAILURES, window: float = AUTH_FAILURE_WINDOW) -> None:
        super().__init__()
        self.max_failures = max_failures
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self.failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self.failures[key]
        return q

    def on_receive(self, message: Any) -> Any:
        now = time.monotonic()
        if isinstance(message, AuthAllowed):
            return len(self._recent(_key(message.ip), now)) < self.max_failures
        if isinstance(message, AuthFailed):
            key = _key(message.ip)
            self._recent(key, now)
            if key not in self.failures and len(self.failures) >= MAX_TRACKED_IPS:
                self.failures.pop(next(iter(self.failures)))
            self.failures.setdefault(key, deque()).append(now)
            return None
        if isinstance(message, AuthSucceeded):
            return None
        if isinstance(message, Ping):
            return True
        raise TypeError(f"AuthLimiterActor: unexpected message {type(message).__name__}")
