"""Rebuild-by-replay: a sampler rebuilt from its add() history selects exactly like the live
one, as the loop's resume path needs (fresh sampler, replay finished candidates in iteration
order, rng re-created from (run seed, iteration))."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.sampling import SAMPLER_NAMES, Member, make_sampler

RUN_SEED = 1234
OPTS = {
    "ucb1": {"c": 0.8},
    "islands": {"num_islands": 4, "migration_interval": 5, "tournament_size": 2},
    "map_elites": {"features": ["length", "speed"], "feature_bins": 3},
}


def fresh(name: str):
    return make_sampler(
        name, direction="minimize" if name == "greedy" else "maximize", **OPTS.get(name, {})
    )


def rng_for(iteration: int) -> np.random.Generator:
    return np.random.default_rng([RUN_SEED, iteration])


def child_of(selection, parent: Member, iteration: int, noise: np.random.Generator) -> Member:
    failed = noise.random() < 0.15
    parent_score = parent.score if parent.score is not None else 0.0
    features = {"length": float(noise.integers(0, 50))}
    if noise.random() < 0.8:  # some candidates report no speed: MAP-Elites default cell
        features["speed"] = float(noise.normal())
    return Member(
        id=f"it{iteration}",
        score=None if failed else parent_score + float(noise.normal(0.0, 1.0)),
        island=selection.island,
        parent_id=selection.parent_id,
        iteration=iteration,
        features=features,
    )


def derived_state(sampler) -> object:
    """The statistics each policy keeps besides its members."""
    if sampler.name == "ucb1":
        return sampler.scores()
    if sampler.name == "islands":
        return (sampler.islands, sampler.migrations)
    if sampler.name == "map_elites":
        return (sampler.archive(), sampler.ranges())
    return None


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_replayed_sampler_selects_like_the_live_one(name: str) -> None:
    live = fresh(name)
    history: list[Member] = [Member("seed", 0.0, iteration=0, features={"length": 10.0})]
    live.add(history[0])
    noise = np.random.default_rng(99)  # the "sandbox": independent of the sampler's rng
    iteration, concurrency, checked = 1, 3, 0
    while iteration <= 45:
        # resume point: a fresh sampler fed the finished history, in iteration order
        rebuilt = fresh(name)
        for member in sorted(history, key=lambda m: m.iteration):
            rebuilt.add(member)
        assert len(rebuilt) == len(live)
        assert derived_state(rebuilt) == derived_state(live)
        batch = [(it, live.select(rng_for(it))) for it in range(iteration, iteration + concurrency)]
        again = [
            (it, rebuilt.select(rng_for(it))) for it in range(iteration, iteration + concurrency)
        ]
        assert again == batch
        checked += len(batch)
        for it, selection in batch:  # children finish in iteration order
            parent = next(m for m in history if m.id == selection.parent_id)
            child = child_of(selection, parent, it, noise)
            history.append(child)
            live.add(child)
        iteration += concurrency
    assert checked == 45 and len(live) == 46


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_select_does_not_change_sampler_state(name: str) -> None:
    sampler, twin = fresh(name), fresh(name)
    for i, score in enumerate([0.5, 1.5, None, 0.9, 2.0, 0.1]):
        member = Member(
            f"m{i}",
            score,
            parent_id="m0" if i else None,
            features={"length": float(i), "speed": 0.1 * i},
        )
        sampler.add(member)
        twin.add(member)
    for it in range(7):
        sampler.select(rng_for(it))  # the twin is never asked
    assert derived_state(sampler) == derived_state(twin)
    assert sampler.select(rng_for(99)) == twin.select(rng_for(99))
