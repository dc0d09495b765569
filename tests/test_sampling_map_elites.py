"""MAP-Elites: the grid of occupied cells, not the raw population, drives parent choice."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from orchestrator.sampling import Member, make_sampler
from orchestrator.sampling.map_elites import DEFAULT_CELL, MapElitesSampler, bin_index


def test_selection_follows_occupied_cells_not_population_size() -> None:
    sampler = make_sampler(
        "map_elites", features=["x"], feature_bins=4, feature_ranges={"x": (0.0, 1.0)}
    )
    for i in range(100):  # a crowd in the low cell, all better than the loner
        sampler.add(Member(f"crowd{i}", 10.0 + i, features={"x": 0.1}))
    sampler.add(Member("loner", 0.0, features={"x": 0.9}))
    rng = np.random.default_rng(0)
    counts = Counter(sampler.select(rng).parent_id for _ in range(2000))
    assert set(counts) == {"crowd99", "loner"}  # each cell's elite only
    assert 900 <= counts["loner"] <= 1100, counts


def test_archive_keeps_the_best_per_cell_and_ties_keep_the_first() -> None:
    sampler = MapElitesSampler(
        features=["x", "y"], feature_bins=2, feature_ranges={"x": (0, 10), "y": (0, 10)}
    )
    sampler.add(Member("a", 1.0, features={"x": 1, "y": 1}))
    sampler.add(Member("b", 3.0, features={"x": 2, "y": 2}))
    sampler.add(Member("b2", 3.0, features={"x": 3, "y": 3}))
    sampler.add(Member("c", 2.0, features={"x": 9, "y": 1}))
    sampler.add(Member("bad", None, features={"x": 9, "y": 9}))
    assert sampler.archive() == {(0, 0): "b", (1, 0): "c"}


def test_minimize_keeps_the_lowest_per_cell() -> None:
    sampler = MapElitesSampler(features=["x"], feature_bins=1, direction="minimize")
    for mid, score in {"a": 3.0, "b": -1.0, "c": 2.0}.items():
        sampler.add(Member(mid, score, features={"x": 0.5}))
    assert sampler.archive() == {(0,): "b"}


def test_missing_or_non_finite_features_fall_into_the_default_cell() -> None:
    sampler = MapElitesSampler(features=["x", "y"], feature_bins=3)
    sampler.add(Member("full", 1.0, features={"x": 0.0, "y": 0.0}))
    sampler.add(Member("half", 2.0, features={"x": 5.0}))
    sampler.add(Member("nan", 5.0, features={"x": float("nan"), "y": 1.0}))
    sampler.add(Member("none", 3.0))
    assert sampler.archive() == {(0, 0): "full", DEFAULT_CELL: "nan"}
    picks = {sampler.select(np.random.default_rng(s)).parent_id for s in range(40)}
    assert picks == {"full", "nan"}


def test_running_ranges_move_members_between_cells() -> None:
    sampler = MapElitesSampler(features=["x"], feature_bins=2)
    sampler.add(Member("a", 1.0, features={"x": 0.0}))
    sampler.add(Member("b", 2.0, features={"x": 1.0}))
    assert sampler.archive() == {(0,): "a", (1,): "b"}
    sampler.add(Member("c", 0.5, features={"x": 10.0}))  # range grows to [0, 10]
    assert sampler.ranges() == {"x": (0.0, 10.0)}
    assert sampler.archive() == {(0,): "b", (1,): "c"}


def test_declared_ranges_clip_to_the_edge_bins() -> None:
    assert [bin_index(v, 0.0, 1.0, 4) for v in (-5, 0, 0.24, 0.25, 0.99, 1.0, 7)] == [
        0,
        0,
        0,
        1,
        3,
        3,
        3,
    ]
    assert bin_index(3.0, 2.0, 2.0, 4) == 0


def test_inspirations_are_other_elites() -> None:
    sampler = MapElitesSampler(features=["x"], feature_bins=4, feature_ranges={"x": (0, 4)})
    for cell in range(4):
        for j in range(3):
            sampler.add(Member(f"m{cell}_{j}", cell * 10 + j, features={"x": cell + 0.5}))
    elites = set(sampler.archive().values())
    assert elites == {f"m{c}_2" for c in range(4)}
    for seed in range(30):
        selection = sampler.select(np.random.default_rng(seed))
        assert set(selection.inspiration_ids) <= elites - {selection.parent_id}
        assert len(selection.inspiration_ids) == 2


def test_configuration_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="features"):
        MapElitesSampler(features=[])
    with pytest.raises(ConfigError, match="not among the features"):
        MapElitesSampler(features=["x"], feature_ranges={"y": (0, 1)})
    with pytest.raises(ConfigError, match="lo < hi"):
        MapElitesSampler(features=["x"], feature_ranges={"x": (1, 1)})


@pytest.mark.parametrize("declared", [{}, {"x": (0.0, 1.0)}])
def test_incremental_archive_equals_a_full_rebuild_after_every_add(declared) -> None:
    live = MapElitesSampler(features=["x", "y"], feature_bins=4, feature_ranges=declared)
    shadow = MapElitesSampler(features=["x", "y"], feature_bins=4, feature_ranges=declared)
    noise = np.random.default_rng(5)
    incremental_adds = 0
    for i in range(150):
        score = None if noise.random() < 0.2 or i < 3 else float(noise.normal())
        features = {"x": float(noise.random()), "y": float(noise.normal())}
        if noise.random() < 0.1:
            del features["y"]
        member = Member(f"m{i}", score, features=features)
        live.archive()  # make sure an archive exists, so add() may update it in place
        live.add(member)
        shadow.add(member)
        incremental_adds += live._archive is not None
        shadow._archive = None  # the from-scratch path
        assert live.archive() == shadow.archive(), i
    assert incremental_adds > 100  # the in-place path really ran
    assert len(live.archive()) > 5
