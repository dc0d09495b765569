"""Greedy picks the best; random covers the whole scored population."""

from __future__ import annotations

from collections import Counter

import numpy as np

from orchestrator.sampling import Member, make_sampler


def test_greedy_picks_the_best_and_follows_improvements() -> None:
    sampler = make_sampler("greedy")
    for mid, score in {"a": 0.2, "b": 0.7, "c": 0.7, "d": None}.items():
        sampler.add(Member(mid, score, island=2 if mid == "b" else 0))
    selection = sampler.select(np.random.default_rng(0))
    assert selection.parent_id == "b"  # tie with c goes to the one added first
    assert selection.island == 2
    assert selection.inspiration_ids[0] == "c"
    sampler.add(Member("e", 0.71, parent_id="b"))
    assert sampler.select(np.random.default_rng(0)).parent_id == "e"


def test_random_covers_the_scored_population_about_evenly() -> None:
    sampler = make_sampler("random")
    for i in range(10):
        sampler.add(Member(f"m{i}", float(i)))
    sampler.add(Member("failed", None))
    rng = np.random.default_rng(3)
    counts = Counter(sampler.select(rng).parent_id for _ in range(1000))
    assert set(counts) == {f"m{i}" for i in range(10)}
    assert all(60 <= n <= 140 for n in counts.values()), counts
