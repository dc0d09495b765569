"""Greedy: always extend the best program found so far (pure exploitation).

Useful as a baseline and for tasks where the landscape is smooth. Ties go to the member
added first. The child joins the parent's island.
"""

from __future__ import annotations

import numpy as np

from orchestrator.sampling.base import (
    Direction,
    Member,
    Selection,
    empty_population_error,
)
from orchestrator.sampling.inspirations import pick_inspirations
from orchestrator.sampling.population import Population


class GreedySampler:
    name = "greedy"

    def __init__(self, *, direction: Direction = "maximize", num_inspirations: int = 2) -> None:
        self.population = Population(direction)
        self.num_inspirations = num_inspirations

    def add(self, member: Member) -> None:
        self.population.add(member, sampler_name=self.name)

    def select(self, rng: np.random.Generator) -> Selection:
        if not len(self.population):
            raise empty_population_error(self.name)
        parent = self.population.best()
        inspirations = pick_inspirations(self.population, None, parent, self.num_inspirations, rng)
        return Selection(parent, inspirations, self.population.get(parent).island)

    def __len__(self) -> int:
        return len(self.population)
