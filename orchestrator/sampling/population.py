"""An insertion-ordered set of members with direction-aware ranking: the pool every sampler
keeps and draws from. Ties in fitness go to the member added first, so rankings are
deterministic without consuming randomness."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator

from orchestrator.sampling.base import Direction, Member, SamplingError, fitness


class Population:
    """Members by id, in the order they were added, with their fitness cached."""

    def __init__(self, direction: Direction) -> None:
        self.direction: Direction = direction
        self._members: dict[str, Member] = {}
        self._order: dict[str, int] = {}
        self._fitness: dict[str, float] = {}
        self._scored: list[str] = []  # insertion order
        self._lo = math.inf
        self._hi = -math.inf

    def add(self, member: Member, *, sampler_name: str) -> None:
        if member.id in self._members:
            raise SamplingError(
                f"{sampler_name} sampler already holds member {member.id!r}: add() each finished "
                "candidate once (when replaying on resume, start from a fresh sampler)"
            )
        self._order[member.id] = len(self._order)
        self._members[member.id] = member
        value = fitness(member, self.direction)
        self._fitness[member.id] = value
        if math.isfinite(value):
            self._scored.append(member.id)
            self._lo, self._hi = min(self._lo, value), max(self._hi, value)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members.values())

    def get(self, member_id: str) -> Member:
        return self._members[member_id]

    def fitness(self, member_id: str) -> float:
        """Higher is better whatever the direction; -inf for a failed member."""
        return self._fitness[member_id]

    def eligible(self, ids: Iterable[str] | None = None) -> list[str]:
        """The ids (default: all) that may be parents: the scored ones, or every one of them
        when none is scored. Insertion order is kept."""
        if ids is None:
            return list(self._scored) if self._scored else list(self._members)
        pool = sorted(ids, key=self._order.__getitem__)
        scored = [i for i in pool if math.isfinite(self._fitness[i])]
        return scored if scored else pool

    def _rank_key(self, member_id: str) -> tuple[float, int]:
        return (-self._fitness[member_id], self._order[member_id])

    def ranked(self, ids: Iterable[str]) -> list[str]:
        """`ids` from best to worst; equal fitness keeps insertion order."""
        return sorted(ids, key=self._rank_key)

    def top(self, ids: Iterable[str], k: int) -> list[str]:
        """The best `k` of `ids`, best first (ranked(ids)[:k] without the full sort)."""
        return heapq.nsmallest(k, ids, key=self._rank_key)

    def best(self, ids: Iterable[str] | None = None) -> str:
        """The best eligible id among `ids` (default: everyone); ValueError when empty."""
        pool = self.eligible(ids)
        if not pool:
            raise ValueError("best() of an empty pool")
        return min(pool, key=self._rank_key)

    def fitness_range(self) -> tuple[float, float]:
        """(lowest, highest) fitness over the scored members; (0, 0) when none is scored."""
        return (self._lo, self._hi) if self._scored else (0.0, 0.0)

    def is_better(self, a: str, b: str) -> bool:
        """True when member `a` has strictly higher fitness than member `b`."""
        fa, fb = self._fitness[a], self._fitness[b]
        return fa > fb and math.isfinite(fa)
