"""Backpressure: how many token calls the background refresh keeps in flight per provider.

A fixed concurrency is wrong both ways: below what the provider takes it wastes time, above
it the provider queues (latency climbs until calls hit their timeout, and a timed-out call
the provider did process has rotated the refresh token away: the grant is lost) or refuses
(429, 503). So the limit adapts per provider, the way TCP's congestion window does (AIMD):

- it starts at INITIAL calls in flight and, until the provider first shows strain, every
  answer in normal time adds one (the limit doubles each round of calls: TCP's slow start),
  so a provider that cannot take the full concurrency is never sent all of it at once;
- after that, every answer in normal time raises the limit by 1/limit (about one more call
  in flight per round of calls), up to the configured concurrency;
- a call that was refused (429, 5xx), timed out or got no answer halves it, down to one;
  so does a queue building up at the provider: the recent answer time (a moving average)
  above LATENCY_FACTOR times the provider's normal latency plus LATENCY_SLACK, which notices
  the queue before the provider starts refusing; calls already in flight when it was halved
  do not halve it again, since they were sent under the old limit;
- the ``Retry-After`` of a refusal pauses every call to that provider until it has passed (at
  most MAX_PAUSE); a refusal without one pauses it for PAUSE_WITHOUT_RETRY_AFTER; and for
  CEILING_SECONDS the limit stays below the one that was refused, instead of growing back
  into the next refusal and its pause.

The provider's normal latency is the NORMAL_PERCENTILE of its last SAMPLES answer times: low
enough that a queue building up is noticed, not the very fastest, so that a provider whose
answers simply vary (the internet) is not mistaken for a congested one, and recent, so that
a provider that really became slower is its new normal. One Throttle serves all threads of a
process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from integrations.providers.transport import Call

INITIAL = 2
LATENCY_FACTOR = 2.0
LATENCY_SLACK = 0.02  # seconds: jitter on a fast provider is no congestion
RECENT_WEIGHT = 0.25  # of the newest answer in the recent latency (a moving average)
DECREASE = 0.5
MAX_PAUSE = 300.0
CEILING_SECONDS = 60.0
PAUSE_WITHOUT_RETRY_AFTER = 1.0
SAMPLES = 200
NORMAL_PERCENTILE = 0.1


@dataclass
class _Provider:
    limit: float
    slow_start: bool = True
    in_flight: int = 0
    paused_until: float = 0.0
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    ceiling: float = 0.0  # below the limit at the last refusal, until ceiling_until
    ceiling_until: float = 0.0
    answers: int = 0
    normal: float | None = None  # seconds
    recent: float | None = None  # seconds, a moving average of the latest answers
    decreased_at: float = field(default=float("-inf"))
    peak_in_flight: int = 0


class Throttle:
    """Per-provider adaptive limit on token calls in flight (thread-safe)."""

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self._clock = clock
        self._providers: dict[str, _Provider] = {}
        self._changed = threading.Condition()

    def acquire(self, provider: str) -> float:
        """Wait until a call to `provider` may start; return its start time (for release)."""
        started = self._acquire(provider, wait_out_pause=True)
        assert started is not None  # noqa: S101 (waits out any pause)
        return started

    def acquire_unless_paused(self, provider: str) -> float | None:
        """`acquire`, but None at once, instead of waiting, while `provider` is paused (a
        caller holding row locks must not hold them for minutes)."""
        return self._acquire(provider, wait_out_pause=False)

    def _acquire(self, provider: str, *, wait_out_pause: bool) -> float | None:
        with self._changed:
            state = self._state(provider)
            while True:
                now = self._clock()
                if now < state.paused_until:
                    if not wait_out_pause:
                        return None
                    self._changed.wait(state.paused_until - now)
                elif state.in_flight < int(state.limit):
                    state.in_flight += 1
                    state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
                    return now
                else:
                    self._changed.wait()

    def release(self, provider: str, started: float, calls: Iterable[Call]) -> None:
        """A call that started at `started` is over; learn from what the provider answered."""
        with self._changed:
            state = self._state(provider)
            state.in_flight -= 1
            now = self._clock()
            for call in calls:
                self._learn(state, call, started, now)
            self._changed.notify_all()

    def limit(self, provider: str) -> float:
        with self._changed:
            return self._state(provider).limit

    def peak(self, provider: str) -> int:
        """The most calls to `provider` that were in flight at once."""
        with self._changed:
            return self._state(provider).peak_in_flight

    def _state(self, provider: str) -> _Provider:
        state = self._providers.get(provider)
        if state is None:
            state = self._providers[provider] = _Provider(
                limit=float(max(self.minimum, min(INITIAL, self.maximum)))
            )
        return state

    def _learn(self, state: _Provider, call: Call, started: float, now: float) -> None:
        if call.overloaded:
            pause = call.retry_after if call.retry_after is not None else PAUSE_WITHOUT_RETRY_AFTER
            state.paused_until = max(state.paused_until, now + min(pause, MAX_PAUSE))
            if call.status in (429, 503) and started >= state.decreased_at:
                # Refused at this many: stay below it for a while rather than grow back
                # into the next refusal (and its pause) every second.
                state.ceiling = max(float(self.minimum), float(int(state.limit) - 1))
                state.ceiling_until = now + CEILING_SECONDS
            self._decrease(state, started, now)
            return
        state.samples.append(call.seconds)
        state.answers += 1
        normal = state.normal
        if state.answers < 16 or state.answers % 16 == 0:  # sorting 200 floats: not each time
            ordered = sorted(state.samples)
            state.normal = ordered[int(len(ordered) * NORMAL_PERCENTILE)]
        recent = state.recent
        state.recent = call.seconds if recent is None else (
            recent + (call.seconds - recent) * RECENT_WEIGHT
        )
        if normal is not None and state.recent > normal * LATENCY_FACTOR + LATENCY_SLACK:
            self._decrease(state, started, now)
        else:
            step = 1.0 if state.slow_start else 1.0 / state.limit
            top = state.ceiling if now < state.ceiling_until else float(self.maximum)
            state.limit = min(top, max(state.limit, state.limit + step))

    def _decrease(self, state: _Provider, started: float, now: float) -> None:
        if started < state.decreased_at:
            return  # sent under the previous limit: that was already answered
        state.limit = max(float(self.minimum), state.limit * DECREASE)
        state.decreased_at = now
        state.slow_start = False
        state.recent = None  # judged again on answers to calls sent under the new limit
