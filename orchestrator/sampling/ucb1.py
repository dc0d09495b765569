"""UCB1 over the candidate tree: each program is an arm; pulling it means evaluating a child.

For every scored member n (visits and rewards come only from `add()`, so a replay rebuilds them):

    visits N(n)  = children added with parent_id == n (failed children included)
    reward r(c)  = the child's score min-max normalised over the population now (0 if it failed)
    value  Q(n)  = (norm(n) + sum of r(c) over n's children) / (1 + N(n))
    ucb(n)       = Q(n) + c * sqrt(ln(1 + T) / (1 + N(n))),   T = sum of N over all members

The member's own normalised score acts as one prior pull, so a fresh node is judged by its
score and a node whose children keep coming out worse than it sinks as they accumulate:
a child scoring above its parent raises the parent's value, one scoring below lowers it.
Normalisation happens at select time (scores are stored raw), so `c` means the same on any
score scale and the statistics are rebuildable. Highest ucb wins; ties go to the member
added first. `c` is the only option (default 1.0; larger explores more).

With concurrency K the loop will get the same parent for the K selects made before the next
child lands: UCB1 has no notion of pending work, and keeping one would break replay.
"""

from __future__ import annotations

import math

import numpy as np

from orchestrator.errors import ConfigError
from orchestrator.sampling.base import (
    Direction,
    Member,
    Selection,
    empty_population_error,
    normalise,
)
from orchestrator.sampling.inspirations import pick_inspirations
from orchestrator.sampling.population import Population

DEFAULT_C = 1.0


class UCB1Sampler:
    name = "ucb1"

    def __init__(
        self,
        *,
        direction: Direction = "maximize",
        num_inspirations: int = 2,
        c: float = DEFAULT_C,
    ) -> None:
        if not (math.isfinite(c) and c >= 0):
            raise ConfigError(f"ucb1 exploration constant c={c!r} must be a finite number >= 0")
        self.population = Population(direction)
        self.num_inspirations = num_inspirations
        self.c = c
        self._visits: dict[str, int] = {}
        # parent id -> (sum, count) of its scored children's fitness (failed ones reward 0)
        self._child_fitness: dict[str, tuple[float, int]] = {}

    def add(self, member: Member) -> None:
        self.population.add(member, sampler_name=self.name)
        if member.parent_id is not None:
            parent = member.parent_id
            self._visits[parent] = self._visits.get(parent, 0) + 1
            child = self.population.fitness(member.id)
            if math.isfinite(child):
                total, count = self._child_fitness.get(parent, (0.0, 0))
                self._child_fitness[parent] = (total + child, count + 1)

    def visits(self, member_id: str) -> int:
        """How many children of `member_id` have been added."""
        return self._visits.get(member_id, 0)

    def scores(self) -> dict[str, float]:
        """The ucb value of every eligible member, the quantity `select` maximises."""
        pop = self.population
        lo, hi = pop.fitness_range()
        eligible = pop.eligible()
        log_total = math.log1p(sum(self.visits(i) for i in eligible))
        out: dict[str, float] = {}
        for node in eligible:
            visits = self.visits(node)
            # sum of the scored children's normalised fitness, from their raw sum and count
            total, count = self._child_fitness.get(node, (0.0, 0))
            rewards = (total - count * lo) / (hi - lo) if hi > lo else float(count)
            value = (normalise(pop.fitness(node), lo, hi) + rewards) / (1 + visits)
            out[node] = value + self.c * math.sqrt(log_total / (1 + visits))
        return out

    def select(self, rng: np.random.Generator) -> Selection:
        if not len(self.population):
            raise empty_population_error(self.name)
        scores = self.scores()
        # max() keeps the first maximum; `scores` is in insertion order.
        parent = max(scores, key=scores.__getitem__)
        inspirations = pick_inspirations(self.population, None, parent, self.num_inspirations, rng)
        return Selection(parent, inspirations, self.population.get(parent).island)

    def __len__(self) -> int:
        return len(self.population)
