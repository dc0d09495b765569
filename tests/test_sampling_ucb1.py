"""UCB1: visit counts come from added children and really change the choice."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from orchestrator.sampling import Member, make_sampler
from orchestrator.sampling.ucb1 import UCB1Sampler


def seeds(sampler, scores: dict[str, float]) -> None:
    for mid, score in scores.items():
        sampler.add(Member(mid, score))


def test_visits_count_children_added_with_that_parent() -> None:
    sampler = UCB1Sampler()
    seeds(sampler, {"a": 1.0, "b": 0.5})
    for i in range(3):
        sampler.add(Member(f"a{i}", 0.2, parent_id="a"))
    sampler.add(Member("b0", None, parent_id="b"))  # a failed child is still a visit
    assert (sampler.visits("a"), sampler.visits("b"), sampler.visits("a0")) == (3, 1, 0)


def test_non_improving_children_push_the_parent_down() -> None:
    sampler = UCB1Sampler()
    seeds(sampler, {"a": 1.0, "b": 0.9, "c": 0.0})
    rng = np.random.default_rng(0)
    assert sampler.select(rng).parent_id == "a"
    for i in range(10):
        sampler.add(Member(f"a{i}", 0.5, parent_id="a"))
    scores = sampler.scores()
    assert scores["a"] < scores["b"]
    assert sampler.select(rng).parent_id == "b"


def test_improving_children_keep_the_parent_valuable_compared_with_bad_ones() -> None:
    good, bad = UCB1Sampler(), UCB1Sampler()
    for sampler, child_score in ((good, 0.99), (bad, 0.0)):
        seeds(sampler, {"a": 0.8, "z": 0.0, "top": 1.0})
        for i in range(4):
            sampler.add(Member(f"a{i}", child_score, parent_id="a"))
    assert good.scores()["a"] > bad.scores()["a"]


def test_failed_children_count_as_visits_with_zero_reward() -> None:
    sampler = UCB1Sampler()
    seeds(sampler, {"a": 1.0, "b": 0.8})
    before = sampler.scores()["a"]
    for i in range(5):
        sampler.add(Member(f"x{i}", None, parent_id="a"))
    after = sampler.scores()
    assert after["a"] < before
    assert sampler.select(np.random.default_rng(0)).parent_id == "b"
    assert all(f"x{i}" not in after for i in range(5))


def test_a_simulated_run_spreads_over_parents_instead_of_hammering_one() -> None:
    # Every child scores a bit under its parent. Without visit counts UCB1 would pick the
    # seed "a" (the best score, forever) every time.
    sampler = UCB1Sampler()
    seeds(sampler, {"a": 1.0, "b": 0.95, "c": 0.9})
    picked = Counter()
    rng = np.random.default_rng(0)
    for it in range(60):
        parent = sampler.select(rng).parent_id
        picked[parent] += 1
        score = sampler.population.get(parent).score - 0.05
        sampler.add(Member(f"k{it}", score, parent_id=parent, iteration=it + 1))
    assert picked["a"] < 30
    assert picked["b"] >= 1 and picked["c"] >= 1
    assert sum(sampler.visits(p) for p in picked) == 60


def test_normalisation_makes_the_choice_scale_free() -> None:
    def run(scale: float, shift: float) -> list[str]:
        sampler = UCB1Sampler(c=0.7)
        seeds(sampler, {"a": 1.0 * scale + shift, "b": 0.6 * scale + shift})
        out = []
        for it in range(25):
            parent = sampler.select(np.random.default_rng(it)).parent_id
            out.append(parent)
            base = (sampler.population.get(parent).score - shift) / scale
            child = base + (0.03 if it % 3 == 0 else -0.2)
            sampler.add(Member(f"k{it}", child * scale + shift, parent_id=parent))
        return out

    assert run(1.0, 0.0) == run(1000.0, -37.0)


def test_exploration_constant_is_validated_and_scales_the_bonus() -> None:
    with pytest.raises(ConfigError, match="c="):
        make_sampler("ucb1", c=-1.0)
    samplers = {c: make_sampler("ucb1", c=c) for c in (0.0, 2.0)}
    for sampler in samplers.values():
        seeds(sampler, {"a": 1.0, "b": 0.5})
        for i in range(5):
            sampler.add(Member(f"a{i}", 0.0, parent_id="a"))
    plain, bonus = samplers[0.0].scores(), samplers[2.0].scores()
    # T = 5 visits in all; a has 5 of them, b none.
    assert plain["a"] == pytest.approx((1.0 + 5 * 0.0) / 6)
    assert plain["b"] == pytest.approx(0.5)
    assert bonus["a"] - plain["a"] == pytest.approx(2.0 * math.sqrt(math.log(6) / 6))
    assert bonus["b"] - plain["b"] == pytest.approx(2.0 * math.sqrt(math.log(6) / 1))
