"""What every parent sampler shares: the member and selection records and the `Sampler` protocol.

A sampler sees finished candidates through `add()` and proposes the next parent (plus a few
inspirations) through `select()`.

Replay contract. On resume the loop rebuilds a sampler by calling `add()` for every finished
candidate in iteration order, then re-creates the rng from (run seed, iteration). So every
sampler here keeps *only* state derived from the `add()` sequence: `select()` reads that state
and the rng and changes nothing (visit counts, for instance, are the children added with a
given `parent_id`, not the times a node was selected). Two samplers fed the same `add()`
sequence and handed equal rngs return equal selections.

Failed candidates (`score is None`) stay in the population (they count as visits, fill
`len()`), but are never chosen as parent or inspiration while any scored member exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from orchestrator.errors import ConfigError, EvoforgeError

if TYPE_CHECKING:
    from collections.abc import Iterable

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")


class SamplingError(EvoforgeError):
    """A sampler cannot answer: empty population, duplicate member, member on a missing island."""


@dataclass(frozen=True)
class Member:
    """A finished candidate (child or seed) as the samplers see it."""

    id: str
    score: float | None  # None = failed (error/timeout/invalid...)
    island: int = 0
    parent_id: str | None = None
    iteration: int = 0
    features: dict[str, float] = field(default_factory=dict)  # metric values for MAP-Elites

    @property
    def failed(self) -> bool:
        """True when the candidate has no usable score (None, NaN or infinite)."""
        return self.score is None or not math.isfinite(self.score)


@dataclass(frozen=True)
class Selection:
    """The parent for the next child, its inspirations, and the island the child joins."""

    parent_id: str
    inspiration_ids: tuple[str, ...]
    island: int


@runtime_checkable
class Sampler(Protocol):
    """A parent-selection policy; see the module docstring for the replay contract."""

    name: str

    def add(self, member: Member) -> None:
        """Record a finished candidate and update the statistics that depend on it."""
        ...

    def select(self, rng: np.random.Generator) -> Selection:
        """Choose a parent; raises SamplingError when nothing has been added yet."""
        ...

    def __len__(self) -> int: ...


def check_direction(direction: str) -> Direction:
    """Return `direction` when it is one of DIRECTIONS, else raise ConfigError."""
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"sampler direction {direction!r} is unknown: use 'maximize' or 'minimize'"
        )
    return direction  # type: ignore[return-value]


def fitness(member: Member, direction: Direction) -> float:
    """The member's score turned so that higher is always better; -inf for a failed member."""
    score = member.score
    if score is None or not math.isfinite(score):
        return -math.inf
    return score if direction == "maximize" else -score


def normalise(value: float, lo: float, hi: float) -> float:
    """`value` on the [lo, hi] scale mapped to [0, 1]; 1.0 when the range is empty; 0.0 when
    the value is not finite (a failed member)."""
    if not math.isfinite(value):
        return 0.0
    if hi <= lo:
        return 1.0
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


def empty_population_error(sampler_name: str) -> SamplingError:
    return SamplingError(
        f"{sampler_name} sampler has no members to select from: add() the seed program "
        "(a Member with parent_id=None) before the first select()"
    )


def reject_unknown_options(sampler_name: str, opts: dict[str, Any], allowed: Iterable[str]) -> None:
    """Raise ConfigError naming the options a sampler does not understand."""
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{sampler_name} sampler does not take option(s) {unknown}: "
            f"allowed are {sorted(allowed)}"
        )


def make_sampler(
    name: str,
    *,
    direction: str = "maximize",
    num_islands: int = 4,
    features: list[str] | None = None,
    feature_bins: int = 8,
    num_inspirations: int = 2,
    **opts: Any,
) -> Sampler:
    """Build a sampler by name ("ucb1", "greedy", "random", "islands", "map_elites")."""
    from orchestrator.sampling.factory import build_sampler  # the samplers import this module

    return build_sampler(
        name,
        direction=direction,
        num_islands=num_islands,
        features=features,
        feature_bins=feature_bins,
        num_inspirations=num_inspirations,
        **opts,
    )
