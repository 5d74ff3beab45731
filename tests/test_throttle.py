"""The background refresh's backpressure (AIMD per provider): starts small and doubles each
round up to the configured concurrency, halves on a refusal, a 5xx, a timeout or a latency
spike (once per round of calls), grows back by one call per round, and pauses a provider for
its Retry-After."""

from __future__ import annotations

import math
import random
import threading
import time

import pytest

from integrations.background.throttle import (
    CEILING_SECONDS,
    INITIAL,
    MAX_PAUSE,
    PAUSE_WITHOUT_RETRY_AFTER,
    Throttle,
)
from integrations.providers.transport import Call

OK = Call(200, 0.02)
REFUSED = Call(429, 0.001)
SERVER_ERROR = Call(500, 0.02)
TIMED_OUT = Call(None, 10.0, timed_out=True)
INVALID_GRANT = Call(400, 0.02)  # a definitive answer: no sign of overload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def one_call(throttle: Throttle, call: Call, provider: str = "demo") -> None:
    started = throttle.acquire(provider)
    throttle.release(provider, started, [call])


def test_starts_small_and_doubles_each_round_until_the_first_strain():
    clock = Clock()
    throttle = Throttle(64, clock=clock)
    assert throttle.limit("demo") == INITIAL == 2
    for expected in (4, 8, 16, 32, 64):
        for _ in range(int(throttle.limit("demo"))):  # one round
            one_call(throttle, OK)
        assert throttle.limit("demo") == expected
    one_call(throttle, REFUSED)  # the first strain ends the slow start
    assert throttle.limit("demo") == 32
    clock.now += 2  # after the pause a refusal imposes
    for _ in range(32):
        one_call(throttle, OK)
    assert 32.9 < throttle.limit("demo") < 33.1


def at_full_speed(throttle: Throttle, provider: str = "demo") -> Throttle:
    """Past the slow start: the limit at the maximum, the normal latency known."""
    for _ in range(200):
        one_call(throttle, OK, provider)
    return throttle


def test_caps_calls_in_flight():
    throttle = at_full_speed(Throttle(3))
    for _ in range(3):
        throttle.acquire("demo")
    blocked = threading.Event()
    released = threading.Event()

    def fourth() -> None:
        blocked.set()
        throttle.acquire("demo")
        released.set()

    threading.Thread(target=fourth, daemon=True).start()
    blocked.wait(5)
    assert not released.wait(0.2), "a fourth call waits while three are in flight"
    throttle.release("demo", 0.0, [OK])
    assert released.wait(5)
    assert throttle.peak("demo") == 3


@pytest.mark.parametrize(
    "signal", [REFUSED, SERVER_ERROR, TIMED_OUT], ids=["429", "5xx", "timeout"]
)
def test_overload_halves_the_limit(signal):
    throttle = at_full_speed(Throttle(16, clock=Clock()))
    one_call(throttle, signal)
    assert throttle.limit("demo") == 8


def test_calls_sent_before_a_decrease_do_not_decrease_it_again():
    clock = Clock()
    throttle = at_full_speed(Throttle(16, clock=clock))
    starts = [throttle.acquire("demo") for _ in range(10)]
    clock.now += 0.5
    for started in starts:  # ten refusals of one round: one halving, not ten
        throttle.release("demo", started, [REFUSED])
    assert throttle.limit("demo") == 8

    clock.now += 2  # after the pause, a new round that is refused again halves again
    one_call(throttle, REFUSED)
    assert throttle.limit("demo") == 4


def test_never_below_one_and_never_above_the_maximum():
    clock = Clock()
    throttle = Throttle(4, clock=clock)
    for _ in range(10):
        clock.now += 100
        one_call(throttle, SERVER_ERROR)
    assert throttle.limit("demo") == 1
    clock.now += 100
    for _ in range(200):
        one_call(throttle, OK)
    assert throttle.limit("demo") == 4


def test_grows_back_by_about_one_call_per_round():
    clock = Clock()
    throttle = at_full_speed(Throttle(32, clock=clock))
    one_call(throttle, REFUSED)  # 16
    clock.now += 10
    for _ in range(16):  # one round at 16 calls in flight
        one_call(throttle, OK)
    assert 16.9 < throttle.limit("demo") < 17.1


def test_a_definitive_error_answer_is_no_sign_of_overload():
    throttle = at_full_speed(Throttle(8, clock=Clock()))
    one_call(throttle, INVALID_GRANT)
    assert throttle.limit("demo") == 8


def test_a_latency_spike_is_congestion():
    clock = Clock()
    throttle = Throttle(16, clock=clock)
    for _ in range(20):
        one_call(throttle, Call(200, 0.020))
    assert throttle.limit("demo") == 16
    one_call(throttle, Call(200, 0.100))  # under 3 x normal + 50 ms: jitter
    assert throttle.limit("demo") == 16
    one_call(throttle, Call(200, 0.640))  # a queue at the provider
    assert throttle.limit("demo") == 8


def test_retry_after_pauses_every_call_to_that_provider_only():
    throttle = Throttle(8)
    one_call(throttle, Call(429, 0.001, retry_after=0.3))
    started = time.monotonic()
    throttle.acquire("other")
    assert time.monotonic() - started < 0.1, "another provider is not paused"
    throttle.acquire("demo")
    assert time.monotonic() - started >= 0.29


def test_a_refusal_without_retry_after_pauses_briefly_and_a_huge_one_is_capped():
    clock = Clock()
    throttle = Throttle(8, clock=clock)
    one_call(throttle, Call(503, 0.001))
    assert throttle._providers["demo"].paused_until == clock.now + PAUSE_WITHOUT_RETRY_AFTER
    clock.now += 10
    one_call(throttle, Call(429, 0.001, retry_after=86400))
    assert throttle._providers["demo"].paused_until == clock.now + MAX_PAUSE


def test_providers_are_throttled_apart():
    throttle = at_full_speed(at_full_speed(Throttle(8, clock=Clock())), "monzo")
    one_call(throttle, REFUSED, provider="monzo")
    assert throttle.limit("monzo") == 4
    assert throttle.limit("demo") == 8


def test_answers_that_merely_vary_are_no_congestion():
    """A provider whose answer times vary (log-normal around 100 ms, its 90th percentile
    twice its 10th) but do not grow with the load: the limit stays near the maximum."""
    sigma = 0.3
    rng = random.Random(15)
    clock = Clock()
    throttle = Throttle(32, clock=clock)
    limits = []
    for _ in range(4000):
        clock.now += 0.005
        one_call(throttle, Call(200, rng.lognormvariate(math.log(0.1), sigma)))
        limits.append(throttle.limit("demo"))
    assert sum(limits[1000:]) / 3000 > 24


def test_after_a_refusal_it_stays_below_the_refused_limit_for_a_while():
    clock = Clock()
    throttle = at_full_speed(Throttle(8, clock=clock))
    one_call(throttle, REFUSED)  # refused at 8: halved to 4, and at most 7 for a while
    clock.now += 2
    for _ in range(200):
        one_call(throttle, OK)
    assert throttle.limit("demo") == 7
    clock.now += CEILING_SECONDS
    for _ in range(20):
        one_call(throttle, OK)
    assert throttle.limit("demo") == 8


def test_acquire_unless_paused_does_not_wait_out_a_pause():
    clock = Clock()
    throttle = at_full_speed(Throttle(4, clock=clock))
    started = throttle.acquire("demo")
    throttle.release("demo", started, [Call(429, 0.001, retry_after=30.0)])

    assert throttle.acquire_unless_paused("demo") is None
    assert throttle.acquire_unless_paused("other") is not None  # another provider's own
    clock.now += 31
    assert throttle.acquire_unless_paused("demo") == clock.now
