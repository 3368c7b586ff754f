"""Timers for a connection's deadlines (sign-in, token expiry), behind a seam a test can drive without a loop."""

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["Scheduler", "Cancellable", "LoopScheduler"]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Calls `callback` once, `delay_s` seconds from now, unless the returned handle is cancelled first."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopScheduler:
    """The running asyncio loop's timers (Tornado's IOLoop runs on it)."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(max(0.0, delay_s), callback)
