"""MAP-Elites: a grid over behaviour features keeps the best program per cell, and the grid
drives parent choice: select() draws a cell uniformly among the occupied ones, then takes
that cell's elite. A crowded cell is as likely as a lonely one, so 100 members in one cell
and 1 in another give a ~50/50 split.

- Features come from `Member.features[name]` for each name in `features`. A member missing
  any of them (or holding a non-finite value) goes to the default cell `DEFAULT_CELL`.
- Each feature axis has `feature_bins` equal bins over a range: the declared one from
  `feature_ranges={name: (lo, hi)}`, else the running min/max of that feature over all members
  added so far. Values outside a range land in the edge bins.
- The archive is built from the stored members in insertion order (a strictly better member
  replaces an elite). A new member is placed incrementally; when it widens a running range
  (cells move) or is the first scored one, the archive is rebuilt from scratch. Either way
  it depends only on the add() sequence, which is what replay needs.
- Failed members never become elites while any scored member exists.
- Inspirations are other elites (the best ones plus a random one). The child joins the
  parent's island.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from orchestrator.errors import ConfigError
from orchestrator.sampling.base import (
    Direction,
    Member,
    Selection,
    empty_population_error,
)
from orchestrator.sampling.inspirations import pick_inspirations
from orchestrator.sampling.population import Population

Cell = tuple[int, ...]
#: Where members without (all) feature values go.
DEFAULT_CELL: Cell = ()


def bin_index(value: float, lo: float, hi: float, bins: int) -> int:
    """The bin (0..bins-1) of `value` on [lo, hi]; edge bins absorb values outside it."""
    if hi <= lo:
        return 0
    index = int(math.floor((value - lo) / (hi - lo) * bins))
    return min(bins - 1, max(0, index))


class MapElitesSampler:
    name = "map_elites"

    def __init__(
        self,
        *,
        features: Sequence[str],
        direction: Direction = "maximize",
        feature_bins: int = 8,
        num_inspirations: int = 2,
        feature_ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        if not features:
            raise ConfigError(
                "map_elites sampler needs at least one feature name: set `features` in "
                "task.yaml (metric keys the evaluator reports) or pick another sampler"
            )
        if feature_bins < 1:
            raise ConfigError(f"map_elites feature_bins={feature_bins} must be >= 1")
        ranges = dict(feature_ranges or {})
        for name, bounds in ranges.items():
            if name not in features:
                raise ConfigError(
                    f"map_elites feature_ranges names {name!r}, which is not among the "
                    f"features {list(features)}"
                )
            lo, hi = (float(b) for b in bounds)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(
                    f"map_elites range for {name!r} must be finite with lo < hi, got {bounds!r}"
                )
            ranges[name] = (lo, hi)
        self.population = Population(direction)
        self.features = tuple(features)
        self.feature_bins = feature_bins
        self.num_inspirations = num_inspirations
        self.feature_ranges: dict[str, tuple[float, float]] = ranges
        self._values_by_id: dict[str, tuple[float, ...] | None] = {}
        self._seen: dict[str, tuple[float, float]] = {}  # running (min, max) per feature
        self._any_scored = False
        self._archive: dict[Cell, str] | None = None

    def add(self, member: Member) -> None:
        self.population.add(member, sampler_name=self.name)
        values = self._values(member)
        self._values_by_id[member.id] = values
        ranges_moved = False
        if values is not None:
            for name, value in zip(self.features, values, strict=True):
                lo, hi = self._seen.get(name, (value, value))
                widened = (min(lo, value), max(hi, value))
                if widened != self._seen.get(name):
                    self._seen[name] = widened
                    ranges_moved = ranges_moved or name not in self.feature_ranges
        first_scored = not member.failed and not self._any_scored
        self._any_scored = self._any_scored or not member.failed
        if ranges_moved or first_scored:
            self._archive = None  # cells or eligibility changed: rebuild on next use
        elif self._archive is not None and not (member.failed and self._any_scored):
            # Same rule as the full rebuild, applied to the newest member only.
            self._place(self._archive, member.id, self.ranges())

    def _values(self, member: Member) -> tuple[float, ...] | None:
        values = []
        for name in self.features:
            value = member.features.get(name)
            if value is None:
                return None
            try:
                value = float(value)
            except (TypeError, ValueError):
                return None
            if not math.isfinite(value):
                return None
            values.append(value)
        return tuple(values)

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The (lo, hi) of every feature axis: declared, else running min/max (0, 0 if unseen)."""
        return {
            name: self.feature_ranges.get(name) or self._seen.get(name, (0.0, 0.0))
            for name in self.features
        }

    def cell_of(self, member_id: str, ranges: Mapping[str, tuple[float, float]]) -> Cell:
        values = self._values_by_id[member_id]
        if values is None:
            return DEFAULT_CELL
        return tuple(
            bin_index(v, *ranges[name], self.feature_bins)
            for name, v in zip(self.features, values, strict=True)
        )

    def _place(self, archive: dict[Cell, str], member_id: str, ranges: dict) -> None:
        cell = self.cell_of(member_id, ranges)
        incumbent = archive.get(cell)
        if incumbent is None or self.population.is_better(member_id, incumbent):
            archive[cell] = member_id

    def archive(self) -> dict[Cell, str]:
        """Cell -> elite id, cells in order of first occupation."""
        if self._archive is None:
            ranges = self.ranges()
            archive: dict[Cell, str] = {}
            for member_id in self.population.eligible():
                self._place(archive, member_id, ranges)
            self._archive = archive
        return self._archive

    def select(self, rng: np.random.Generator) -> Selection:
        if not len(self.population):
            raise empty_population_error(self.name)
        elites = list(self.archive().values())
        parent = elites[int(rng.integers(len(elites)))]
        inspirations = pick_inspirations(
            self.population, elites, parent, self.num_inspirations, rng
        )
        return Selection(parent, inspirations, self.population.get(parent).island)

    def __len__(self) -> int:
        return len(self.population)
