"""Run budgets: limits on iterations, wall-clock seconds, LLM tokens, dollars and GPU-seconds,
and the tracker the loop charges as work finishes.

    tracker = BudgetTracker(Budget(iterations=30, usd=2.0))
    while (reason := tracker.exhausted()) is None:
        ...  # run one iteration
        tracker.charge(iterations=1, tokens=usage.total_tokens, usd=cost)

A limit is reached when usage >= limit (so `iterations=30` allows exactly 30). On resume,
pass the usage recorded before the stop as `used`: counts continue and wall time before the
resume is added to the time measured by `clock` since the tracker was created.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from orchestrator.errors import BudgetExhausted, ConfigError

#: The order in which limits are checked (and reported by `exhausted`).
LIMITS: tuple[str, ...] = ("iterations", "wall_s", "tokens", "usd", "gpu_s")


@dataclass(frozen=True)
class Budget:
    """Limits for one run; None means unlimited."""

    iterations: int | None = None
    wall_s: float | None = None
    tokens: int | None = None
    usd: float | None = None
    gpu_s: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            limit = getattr(self, f.name)
            if limit is None:
                continue
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                raise ConfigError(f"budget {f.name}={limit!r} must be a number or None")
            if not math.isfinite(limit) or limit < 0:
                raise ConfigError(
                    f"budget {f.name}={limit!r} must be finite and >= 0 (None for no limit)"
                )


@dataclass
class Usage:
    """What a run has spent so far."""

    iterations: int = 0
    wall_s: float = 0.0
    tokens: int = 0
    usd: float = 0.0
    gpu_s: float = 0.0


def _fmt(value: float) -> str:
    """A compact human number: integers without decimals, others to 4 significant digits."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


class BudgetTracker:
    """Counts usage against a Budget; `clock` is injectable (seconds, monotonic)."""

    def __init__(
        self,
        budget: Budget,
        used: Usage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        prior = used or Usage()
        self._counts = Usage(
            iterations=prior.iterations,
            wall_s=prior.wall_s,
            tokens=prior.tokens,
            usd=prior.usd,
            gpu_s=prior.gpu_s,
        )
        self._clock = clock
        self._started = clock()

    def charge(
        self, *, iterations: int = 0, tokens: int = 0, usd: float = 0.0, gpu_s: float = 0.0
    ) -> None:
        """Add spent resources; negative or non-finite amounts are a caller bug (ValueError)."""
        for name, amount in (
            ("iterations", iterations),
            ("tokens", tokens),
            ("usd", usd),
            ("gpu_s", gpu_s),
        ):
            if not math.isfinite(amount) or amount < 0:
                raise ValueError(
                    f"cannot charge {name}={amount!r}: amounts must be finite and >= 0"
                )
        self._counts.iterations += iterations
        self._counts.tokens += tokens
        self._counts.usd += usd
        self._counts.gpu_s += gpu_s

    def usage(self) -> Usage:
        """A snapshot; wall_s includes the time spent before a resume."""
        return Usage(
            iterations=self._counts.iterations,
            wall_s=self._counts.wall_s + max(0.0, self._clock() - self._started),
            tokens=self._counts.tokens,
            usd=self._counts.usd,
            gpu_s=self._counts.gpu_s,
        )

    def exhausted(self) -> str | None:
        """The first limit reached, as a reason like "iterations: 30 of 30"; None if none is."""
        used = self.usage()
        for name in LIMITS:
            limit = getattr(self.budget, name)
            spent = getattr(used, name)
            if limit is not None and spent >= limit:
                return f"{name}: {_fmt(spent)} of {_fmt(limit)}"
        return None

    def check(self) -> None:
        """Raise BudgetExhausted (with the reason) when a limit is reached."""
        reason = self.exhausted()
        if reason is not None:
            raise BudgetExhausted(f"run budget spent ({reason}): raise the limit to go on")

    def remaining(self) -> dict[str, float | None]:
        """What is left of each limit (never below 0); None for unlimited ones."""
        used = self.usage()
        out: dict[str, float | None] = {}
        for name in LIMITS:
            limit = getattr(self.budget, name)
            out[name] = None if limit is None else max(0, limit - getattr(used, name))
        return out
