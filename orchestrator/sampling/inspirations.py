"""Inspirations: a few other good programs shown to the Researcher next to the parent.

The top `k - 1` of the pool (excluding the parent), plus one drawn uniformly from the rest, so
the prompt sees both the state of the art and some diversity. Deterministic under the rng.
"""

from __future__ import annotations

import numpy as np

from orchestrator.sampling.population import Population


def pick_inspirations(
    population: Population,
    pool: list[str] | None,
    parent_id: str,
    k: int,
    rng: np.random.Generator,
) -> tuple[str, ...]:
    """Up to `k` distinct ids from `pool` (None: the whole population) other than the parent: the best `k - 1`, then one
    drawn uniformly among the remaining ones.

    Failed members are used only when the pool has no scored member. When `k` > 0 the rng is
    consumed exactly once whether or not a random pick is possible, so callers' later draws
    do not shift with the pool size.
    """
    if k <= 0:
        return ()
    candidates = [i for i in population.eligible(pool) if i != parent_id]
    draw = rng.random()
    top = population.top(candidates, k - 1) if k > 1 else []
    chosen = set(top)
    rest = [i for i in candidates if i not in chosen]  # insertion order
    if not rest:
        return tuple(top)
    return (*top, rest[min(int(draw * len(rest)), len(rest) - 1)])
