"""Behaviour every sampler shares: factory errors, empty population, failed members,
minimize direction, determinism under the rng, inspirations."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from orchestrator.sampling import SAMPLER_NAMES, Member, SamplingError, make_sampler
from orchestrator.sampling.inspirations import pick_inspirations
from orchestrator.sampling.population import Population

FEATURES = ["size"]


def build(name: str, **kw):
    return make_sampler(name, features=FEATURES, **kw)


def seeded(name: str, scores: list[float | None], **kw):
    sampler = build(name, **kw)
    for i, score in enumerate(scores):
        sampler.add(Member(f"m{i}", score, features={"size": float(i)}))
    return sampler


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_empty_population_raises(name: str) -> None:
    with pytest.raises(SamplingError, match="add\\(\\) the seed"):
        build(name).select(np.random.default_rng(0))


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_duplicate_member_is_rejected(name: str) -> None:
    sampler = build(name)
    sampler.add(Member("a", 1.0))
    with pytest.raises(SamplingError, match="'a'"):
        sampler.add(Member("a", 2.0))
    assert len(sampler) == 1


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_failed_member_is_never_a_parent_when_a_scored_one_exists(name: str) -> None:
    sampler = seeded(name, [None, None, 0.5, None])
    for seed in range(50):
        selection = sampler.select(np.random.default_rng(seed))
        assert selection.parent_id == "m2"
        assert "m0" not in selection.inspiration_ids
        assert "m1" not in selection.inspiration_ids


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_all_failed_population_still_yields_a_parent(name: str) -> None:
    sampler = seeded(name, [None, None])
    assert sampler.select(np.random.default_rng(0)).parent_id in {"m0", "m1"}


@pytest.mark.parametrize("name", ["ucb1", "greedy"])
def test_minimize_prefers_the_lowest_score(name: str) -> None:
    lo_first = seeded(name, [3.0, 1.0, 2.0], direction="minimize")
    hi_first = seeded(name, [3.0, 1.0, 2.0], direction="maximize")
    rng = np.random.default_rng(0)
    assert lo_first.select(rng).parent_id == "m1"
    assert hi_first.select(rng).parent_id == "m0"


@pytest.mark.parametrize(
    ("name", "opts"),
    [("islands", {"num_islands": 1, "tournament_size": 2}), ("map_elites", {"feature_bins": 1})],
)
def test_minimize_in_tournament_and_archive(name: str, opts: dict) -> None:
    # One island holding both / one cell holding both: the lower score must win every time.
    for direction, winner in (("minimize", "m1"), ("maximize", "m0")):
        sampler = seeded(name, [5.0, -5.0], direction=direction, **opts)
        picks = {sampler.select(np.random.default_rng(s)).parent_id for s in range(40)}
        assert picks == {winner}


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_same_adds_and_same_rng_give_same_selections(name: str) -> None:
    scores = [0.3, 0.9, None, 0.5, 0.7, 0.1, 0.6]
    a, b = seeded(name, scores), seeded(name, scores)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    seq_a = [a.select(rng_a) for _ in range(30)]
    seq_b = [b.select(rng_b) for _ in range(30)]
    assert seq_a == seq_b
    # and the rng really matters for the stochastic ones
    if name in {"random", "islands", "map_elites"}:
        other = [a.select(np.random.default_rng(1000 + i)) for i in range(30)]
        assert other != seq_a


def test_unknown_sampler_and_option_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown sampler 'bandit'"):
        make_sampler("bandit")
    with pytest.raises(ConfigError, match="migration_interval"):
        make_sampler("ucb1", migration_interval=3)
    with pytest.raises(ConfigError, match="direction"):
        make_sampler("greedy", direction="up")
    with pytest.raises(ConfigError, match="features"):
        make_sampler("map_elites")


def test_inspirations_are_top_ones_plus_one_random_excluding_parent() -> None:
    pop = Population("maximize")
    for i, score in enumerate([0.1, 0.9, 0.8, 0.7, 0.2, 0.3, None]):
        pop.add(Member(f"m{i}", score), sampler_name="test")
    ids = [m.id for m in pop]
    seen_random = set()
    for seed in range(200):
        picks = pick_inspirations(pop, ids, "m1", 3, np.random.default_rng(seed))
        assert picks[:2] == ("m2", "m3")  # best two other than the parent
        assert len(set(picks)) == 3 and "m1" not in picks and "m6" not in picks
        seen_random.add(picks[2])
    assert seen_random == {"m0", "m4", "m5"}
    assert pick_inspirations(pop, ids, "m1", 0, np.random.default_rng(0)) == ()
    assert pick_inspirations(pop, ["m1", "m2"], "m1", 3, np.random.default_rng(0)) == ("m2",)
