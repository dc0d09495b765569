"""BudgetTracker: each limit stops at the right point; wall clock via a fake clock; resume."""

from __future__ import annotations

import pytest

from orchestrator.budget import Budget, BudgetTracker, Usage
from orchestrator.errors import BudgetExhausted, ConfigError


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def run_until_exhausted(tracker: BudgetTracker, step: dict, clock: FakeClock, dt: float = 0.0):
    """Charge `step` per iteration until a limit is reached; return (iterations run, reason)."""
    done = 0
    while (reason := tracker.exhausted()) is None:
        tracker.charge(**step)
        clock.now += dt
        done += 1
        if done > 10_000:
            raise AssertionError("budget never ran out")
    return done, reason


@pytest.mark.parametrize(
    ("budget", "step", "dt", "expected_runs", "reason"),
    [
        (Budget(iterations=30), {"iterations": 1}, 0.0, 30, "iterations: 30 of 30"),
        (Budget(tokens=1000), {"iterations": 1, "tokens": 300}, 0.0, 4, "tokens: 1200 of 1000"),
        (Budget(usd=1.0), {"iterations": 1, "usd": 0.25}, 0.0, 4, "usd: 1 of 1"),
        (Budget(gpu_s=100.0), {"iterations": 1, "gpu_s": 33.0}, 0.0, 4, "gpu_s: 132 of 100"),
        (Budget(wall_s=60.0), {"iterations": 1}, 7.0, 9, "wall_s: 63 of 60"),
    ],
)
def test_each_limit_stops_at_the_right_point(budget, step, dt, expected_runs, reason) -> None:
    clock = FakeClock()
    tracker = BudgetTracker(budget, clock=clock)
    assert run_until_exhausted(tracker, step, clock, dt) == (expected_runs, reason)


def test_first_limit_reached_is_reported_in_a_fixed_order() -> None:
    clock = FakeClock()
    tracker = BudgetTracker(Budget(iterations=2, usd=0.5), clock=clock)
    tracker.charge(iterations=1, usd=0.6)
    assert tracker.exhausted() == "usd: 0.6 of 0.5"
    tracker.charge(iterations=1)
    assert tracker.exhausted() == "iterations: 2 of 2"
    with pytest.raises(BudgetExhausted, match=r"iterations: 2 of 2"):
        tracker.check()


def test_unlimited_budget_never_runs_out_and_reports_none_remaining() -> None:
    clock = FakeClock()
    tracker = BudgetTracker(Budget(), clock=clock)
    tracker.charge(iterations=10**6, tokens=10**9, usd=1e6, gpu_s=1e6)
    clock.now += 1e9
    assert tracker.exhausted() is None
    tracker.check()
    assert set(tracker.remaining().values()) == {None}


def test_remaining_counts_down_and_never_goes_negative() -> None:
    clock = FakeClock()
    tracker = BudgetTracker(Budget(iterations=10, wall_s=100.0, usd=2.0), clock=clock)
    tracker.charge(iterations=3, usd=2.5)
    clock.now += 40.0
    assert tracker.remaining() == {
        "iterations": 7,
        "wall_s": 60.0,
        "tokens": None,
        "usd": 0,
        "gpu_s": None,
    }


def test_resumed_usage_continues_counts_and_wall_time() -> None:
    clock = FakeClock(start=5.0)  # a new process: the monotonic clock starts anywhere
    before = Usage(iterations=28, wall_s=3500.0, tokens=900, usd=1.5, gpu_s=10.0)
    tracker = BudgetTracker(Budget(iterations=30, wall_s=3600.0), used=before, clock=clock)
    assert tracker.usage() == before
    tracker.charge(iterations=1, tokens=50)
    clock.now += 30.0
    assert tracker.usage() == Usage(iterations=29, wall_s=3530.0, tokens=950, usd=1.5, gpu_s=10.0)
    assert tracker.exhausted() is None
    clock.now += 80.0
    assert tracker.exhausted() == "wall_s: 3610 of 3600"
    # the usage passed in is not mutated by the tracker
    assert before.iterations == 28


def test_usage_is_a_snapshot() -> None:
    tracker = BudgetTracker(Budget(), clock=FakeClock())
    snapshot = tracker.usage()
    tracker.charge(iterations=1)
    assert snapshot.iterations == 0 and tracker.usage().iterations == 1


def test_invalid_budgets_and_charges_are_rejected() -> None:
    with pytest.raises(ConfigError, match="usd=-1"):
        Budget(usd=-1.0)
    with pytest.raises(ConfigError, match="wall_s=inf"):
        Budget(wall_s=float("inf"))
    with pytest.raises(ConfigError, match="iterations='3'"):
        Budget(iterations="3")  # type: ignore[arg-type]
    tracker = BudgetTracker(Budget(), clock=FakeClock())
    with pytest.raises(ValueError, match="tokens=-5"):
        tracker.charge(tokens=-5)
    assert tracker.usage().tokens == 0


def test_zero_budget_is_exhausted_before_the_first_iteration() -> None:
    tracker = BudgetTracker(Budget(iterations=0), clock=FakeClock())
    assert tracker.exhausted() == "iterations: 0 of 0"
