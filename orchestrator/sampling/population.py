"""An insertion-ordered set of members with direction-aware ranking: the pool every sampler
keeps and draws from. Ties in fitness go to the member added first, so rankings are
deterministic without consuming randomness."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from orchestrator.sampling.base import Direction, Member, SamplingError, fitness, min_max


class Population:
    """Members by id, in the order they were added."""

    def __init__(self, direction: Direction) -> None:
        self.direction: Direction = direction
        self._members: dict[str, Member] = {}
        self._order: dict[str, int] = {}

    def add(self, member: Member, *, sampler_name: str) -> None:
        if member.id in self._members:
            raise SamplingError(
                f"{sampler_name} sampler already holds member {member.id!r}: add() each finished "
                "candidate once (when replaying on resume, start from a fresh sampler)"
            )
        self._order[member.id] = len(self._order)
        self._members[member.id] = member

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members.values())

    def get(self, member_id: str) -> Member:
        return self._members[member_id]

    def fitness(self, member_id: str) -> float:
        return fitness(self._members[member_id], self.direction)

    def order(self, member_id: str) -> int:
        return self._order[member_id]

    def eligible(self, ids: Iterable[str] | None = None) -> list[str]:
        """The ids (default: all) that may be parents: the scored ones, or every one of them
        when none is scored. Insertion order is kept."""
        pool = list(self._members) if ids is None else sorted(ids, key=self._order.__getitem__)
        scored = [i for i in pool if not self._members[i].failed]
        return scored if scored else pool

    def ranked(self, ids: Iterable[str]) -> list[str]:
        """`ids` from best to worst; equal fitness keeps insertion order."""
        return sorted(ids, key=lambda i: (-self.fitness(i), self._order[i]))

    def best(self, ids: Iterable[str] | None = None) -> str:
        """The best eligible id among `ids` (default: everyone); ValueError when empty."""
        pool = self.eligible(ids)
        if not pool:
            raise ValueError("best() of an empty pool")
        return self.ranked(pool)[0]

    def fitness_range(self) -> tuple[float, float]:
        """(lowest, highest) fitness over the scored members; the min-max used to normalise."""
        return min_max(self.fitness(i) for i in self._members)

    def is_better(self, a: str, b: str) -> bool:
        """True when member `a` has strictly higher fitness than member `b`."""
        fa, fb = self.fitness(a), self.fitness(b)
        return fa > fb and math.isfinite(fa)
