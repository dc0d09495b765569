"""Islands: N sub-populations evolving apart, with periodic ring migration of their best.

- Island choice: select() draws the island uniformly with the rng (not round-robin: a
  round-robin cursor would be state made by select(), lost on replay).
- Parent choice: a tournament of `tournament_size` scored members of that island, drawn
  without replacement; the fittest entrant wins (ties: the one added first).
- The child joins the chosen island: `Selection.island`. That is the parent's island, except
  when the chosen island holds no scored member yet: then the parent is the best member
  overall and its child seeds that island. This is how one seed program populates every island.
- Migration: after every `migration_interval` add() calls, the best scored member of each
  island is copied into the next island of the ring (i -> i+1 mod N), unless it is already
  there. The bests are taken before any copy, so a migrant moves one step per event. Each copy
  is recorded in `migrations`; a member can then live on several islands, and a child of a
  migrant joins the island it was selected on.
- add() places a member on `member.island` (the loop sets it from Selection.island); an island
  index outside 0..N-1 is an error, not silently wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestrator.errors import ConfigError
from orchestrator.sampling.base import (
    Direction,
    Member,
    SamplingError,
    Selection,
    empty_population_error,
)
from orchestrator.sampling.inspirations import pick_inspirations
from orchestrator.sampling.population import Population

DEFAULT_MIGRATION_INTERVAL = 10
DEFAULT_TOURNAMENT_SIZE = 3


@dataclass(frozen=True)
class Migration:
    """`member_id`, best of island `source`, was copied to island `target` after `after_adds`
    add() calls."""

    after_adds: int
    source: int
    target: int
    member_id: str


class IslandSampler:
    name = "islands"

    def __init__(
        self,
        *,
        direction: Direction = "maximize",
        num_islands: int = 4,
        num_inspirations: int = 2,
        migration_interval: int = DEFAULT_MIGRATION_INTERVAL,
        tournament_size: int = DEFAULT_TOURNAMENT_SIZE,
    ) -> None:
        if num_islands < 1:
            raise ConfigError(f"islands sampler needs num_islands >= 1, got {num_islands}")
        if migration_interval < 0:
            raise ConfigError(
                f"islands migration_interval={migration_interval} must be >= 0 (0 disables it)"
            )
        if tournament_size < 1:
            raise ConfigError(f"islands tournament_size={tournament_size} must be >= 1")
        self.population = Population(direction)
        self.num_islands = num_islands
        self.num_inspirations = num_inspirations
        self.migration_interval = migration_interval
        self.tournament_size = tournament_size
        self.islands: list[list[str]] = [[] for _ in range(num_islands)]
        self.migrations: list[Migration] = []
        self._adds = 0

    def add(self, member: Member) -> None:
        if not 0 <= member.island < self.num_islands:
            raise SamplingError(
                f"member {member.id!r} is on island {member.island} but the islands sampler has "
                f"islands 0..{self.num_islands - 1}: set Member.island from Selection.island, "
                "and resume with the run's original num_islands"
            )
        self.population.add(member, sampler_name=self.name)
        self.islands[member.island].append(member.id)
        self._adds += 1
        if self.migration_interval and self._adds % self.migration_interval == 0:
            self._migrate()

    def _migrate(self) -> None:
        pop = self.population
        bests: list[str | None] = []
        for ids in self.islands:
            scored = [i for i in ids if not pop.get(i).failed]
            bests.append(pop.ranked(scored)[0] if scored else None)
        for source, best in enumerate(bests):
            target = (source + 1) % self.num_islands
            if best is None or best in self.islands[target]:
                continue
            self.islands[target].append(best)
            self.migrations.append(Migration(self._adds, source, target, best))

    def select(self, rng: np.random.Generator) -> Selection:
        pop = self.population
        if not len(pop):
            raise empty_population_error(self.name)
        island = int(rng.integers(self.num_islands))
        pool = [i for i in self.islands[island] if not pop.get(i).failed]
        if not pool:
            parent = pop.best()
            pool = [m.id for m in pop]
        else:
            size = min(self.tournament_size, len(pool))
            entrants = [pool[int(i)] for i in rng.choice(len(pool), size=size, replace=False)]
            parent = pop.ranked(entrants)[0]
        inspirations = pick_inspirations(pop, pool, parent, self.num_inspirations, rng)
        return Selection(parent, inspirations, island)

    def __len__(self) -> int:
        return len(self.population)
