"""A function's warm execution environments, as Lambda keeps them between requests.

A request takes an idle environment (the most recently used: a warm invocation) or, when every
one is busy, starts a new one (a cold start with its own init): concurrent requests get
environments of their own, never share one. An environment that timed out or ended is dropped,
as Lambda drops its sandbox. ``max_environments`` bounds the machine's processes: past it a request
waits for an environment to come free, as a throttled caller would retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.emulator.execution_environment import (
    EnvironmentEndedError,
    Invocation,
    WarmEnvironment,
)

DEFAULT_MAX_ENVIRONMENTS = 8


@dataclass
class PoolStats:
    """How the pool's invocations were served."""

    environments_started: int = 0
    invocations: int = 0
    cold_invocations: int = 0
    """Invocations that were an environment's first (its init ran before them)."""
    most_busy: int = 0
    """The most environments that ran an invocation at once."""


class EnvironmentPool:
    """Warm environments of one function."""

    def __init__(
        self,
        start: Callable[[], WarmEnvironment],
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
    ) -> None:
        self._start = start
        self._max = max_environments
        self._idle: list[WarmEnvironment] = []
        self._count = 0
        self._busy = 0
        self._closed = False
        self._changed = threading.Condition()
        self.stats = PoolStats()

    def invoke(self, event: Any) -> Invocation:  # noqa: ANN401 - any JSON event
        """Run ``event`` in an environment of its own; a new one if the one it got had ended."""
        for _attempt in range(2):
            environment = self._acquire()
            try:
                invocation = environment.invoke(event)
            except EnvironmentEndedError:
                self._release(environment, keep=False)
                continue
            with self._changed:
                self.stats.invocations += 1
                self.stats.cold_invocations += environment.invocations == 1
            self._release(environment, keep=environment.alive)
            return invocation
        raise EnvironmentEndedError("two environments in a row ended before taking the event")

    def _acquire(self) -> WarmEnvironment:
        with self._changed:
            while True:
                if self._closed:
                    raise EnvironmentEndedError("the pool is closed")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        self._mark_busy()
                        return environment
                    self._count -= 1
                    environment.close()
                if self._count < self._max:
                    self._count += 1
                    self.stats.environments_started += 1
                    self._mark_busy()
                    break
                self._changed.wait()
        try:
            return self._start()  # outside the lock: other requests go on meanwhile
        except BaseException:
            with self._changed:
                self._count -= 1
                self._busy -= 1
                self._changed.notify()
            raise

    def _mark_busy(self) -> None:
        self._busy += 1
        self.stats.most_busy = max(self.stats.most_busy, self._busy)

    def _release(self, environment: WarmEnvironment, *, keep: bool) -> None:
        with self._changed:
            self._busy -= 1
            keep = keep and not self._closed
            if keep:
                self._idle.append(environment)
            else:
                self._count -= 1
            self._changed.notify()
        if not keep:
            environment.close()  # outside the lock: ending a process takes a moment

    def close(self) -> None:
        """End every idle environment; busy ones end when their invocation does."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._changed.notify_all()
        for environment in idle:
            environment.close()
