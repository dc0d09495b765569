"""Islands: children stay on the chosen island, empty islands are seeded, ring migration
happens at the configured add() counts and is recorded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from orchestrator.sampling import Member, SamplingError
from orchestrator.sampling.islands import IslandSampler, Migration


def grow(sampler: IslandSampler, steps: int, seed: int = 0) -> list:
    """Run a little loop: select, make a child one better than its parent, add it."""
    log = []
    for it in range(steps):
        rng = np.random.default_rng([seed, it])
        before = {i: list(ids) for i, ids in enumerate(sampler.islands)}
        before["best"] = sampler.population.best()
        selection = sampler.select(rng)
        parent = sampler.population.get(selection.parent_id)
        child = Member(f"c{it}", parent.score + 1.0, island=selection.island, parent_id=parent.id)
        sampler.add(child)
        log.append((selection, before))
    return log


def test_one_seed_populates_every_island_and_children_stay_put() -> None:
    sampler = IslandSampler(num_islands=4, migration_interval=0)
    sampler.add(Member("seed", 0.0))
    log = grow(sampler, 40)
    assert all(sampler.islands[i] for i in range(4))
    for selection, before in log:
        residents = before[selection.island]
        if residents:  # a populated island breeds from its own members only
            assert selection.parent_id in residents
        else:  # an empty island is seeded by the best member overall
            assert selection.parent_id == before["best"]
    for it, (selection, _) in enumerate(log):
        assert f"c{it}" in sampler.islands[selection.island]
        assert sampler.population.get(f"c{it}").island == selection.island
    # without migration, islands are disjoint
    all_ids = [i for ids in sampler.islands for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 41


def test_parent_comes_from_the_chosen_island_even_when_others_are_better() -> None:
    sampler = IslandSampler(num_islands=2, migration_interval=0, tournament_size=2)
    for i in range(5):
        sampler.add(Member(f"hi{i}", 100.0 + i, island=0))
        sampler.add(Member(f"lo{i}", float(i), island=1))
    by_island = Counter()
    for seed in range(200):
        selection = sampler.select(np.random.default_rng(seed))
        by_island[selection.island] += 1
        prefix = "hi" if selection.island == 0 else "lo"
        assert selection.parent_id.startswith(prefix)
        assert all(i.startswith(prefix) for i in selection.inspiration_ids)
        assert selection.parent_id != f"{prefix}0"  # a 2-way tournament never crowns the worst
    assert 70 <= by_island[0] <= 130  # the island is sampled, roughly evenly


def test_migration_copies_each_island_best_to_the_next_at_the_interval() -> None:
    sampler = IslandSampler(num_islands=3, migration_interval=4)
    adds = [("a0", 1.0, 0), ("b0", 5.0, 1), ("c0", 3.0, 2), ("a1", 2.0, 0)]
    for mid, score, island in adds[:3]:
        sampler.add(Member(mid, score, island=island))
    assert sampler.migrations == []
    sampler.add(Member(*adds[3][:2], island=adds[3][2]))
    assert sampler.migrations == [
        Migration(4, 0, 1, "a1"),
        Migration(4, 1, 2, "b0"),
        Migration(4, 2, 0, "c0"),
    ]
    assert sampler.islands == [["a0", "a1", "c0"], ["b0", "a1"], ["c0", "b0"]]
    # next event after 8 adds; bests already present on the next island are not copied twice
    for i in range(3):
        sampler.add(Member(f"x{i}", None, island=0))
    assert len(sampler.migrations) == 3
    sampler.add(Member("x3", None, island=0))
    # island 0's best is now c0 (a migrant) -> island 1; island 2's best b0 -> island 0;
    # island 1's best b0 is already on island 2, so it is not copied again
    assert sampler.migrations[3:] == [Migration(8, 0, 1, "c0"), Migration(8, 2, 0, "b0")]
    assert "c0" in sampler.islands[1]
    assert sampler.islands[2].count("b0") == 1


def test_migration_respects_minimize() -> None:
    sampler = IslandSampler(num_islands=2, migration_interval=2, direction="minimize")
    sampler.add(Member("big", 9.0, island=0))
    sampler.add(Member("small", 1.0, island=0))
    assert sampler.migrations == [Migration(2, 0, 1, "small")]


def test_child_of_a_migrant_joins_the_island_it_was_selected_on() -> None:
    sampler = IslandSampler(num_islands=2, migration_interval=1, tournament_size=5)
    sampler.add(Member("star", 10.0, island=0))  # migrates to island 1 at once
    sampler.add(Member("dud", 0.0, island=1))
    seen = set()
    for seed in range(30):
        selection = sampler.select(np.random.default_rng(seed))
        assert selection.parent_id == "star"
        seen.add(selection.island)
    assert seen == {0, 1}


def test_member_on_a_missing_island_is_an_error() -> None:
    sampler = IslandSampler(num_islands=2)
    with pytest.raises(SamplingError, match="island 2"):
        sampler.add(Member("m", 1.0, island=2))
    assert len(sampler) == 0
