"""`make_sampler`: build a parent sampler by name from the run configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.sampling.base import Sampler, check_direction, reject_unknown_options
from orchestrator.sampling.greedy import GreedySampler
from orchestrator.sampling.islands import IslandSampler
from orchestrator.sampling.map_elites import MapElitesSampler
from orchestrator.sampling.ucb1 import UCB1Sampler
from orchestrator.sampling.uniform import RandomSampler

#: The extra keyword options each sampler accepts through `**opts`.
SAMPLER_OPTIONS: dict[str, tuple[str, ...]] = {
    "ucb1": ("c",),
    "greedy": (),
    "random": (),
    "islands": ("migration_interval", "tournament_size"),
    "map_elites": ("feature_ranges",),
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLER_OPTIONS)


def build_sampler(
    name: str,
    *,
    direction: str = "maximize",
    num_islands: int = 4,
    features: list[str] | None = None,
    feature_bins: int = 8,
    num_inspirations: int = 2,
    **opts: Any,
) -> Sampler:
    """Build a sampler by name; ConfigError for an unknown name, option or direction."""
    if name not in SAMPLER_OPTIONS:
        raise ConfigError(f"unknown sampler {name!r}: choose one of {list(SAMPLER_NAMES)}")
    reject_unknown_options(name, opts, SAMPLER_OPTIONS[name])
    checked = check_direction(direction)
    if num_inspirations < 0:
        raise ConfigError(f"num_inspirations={num_inspirations} must be >= 0")
    builders: dict[str, Callable[[], Sampler]] = {
        "ucb1": lambda: UCB1Sampler(direction=checked, num_inspirations=num_inspirations, **opts),
        "greedy": lambda: GreedySampler(direction=checked, num_inspirations=num_inspirations),
        "random": lambda: RandomSampler(direction=checked, num_inspirations=num_inspirations),
        "islands": lambda: IslandSampler(
            direction=checked,
            num_islands=num_islands,
            num_inspirations=num_inspirations,
            **opts,
        ),
        "map_elites": lambda: MapElitesSampler(
            features=features or [],
            direction=checked,
            feature_bins=feature_bins,
            num_inspirations=num_inspirations,
            **opts,
        ),
    }
    return builders[name]()
