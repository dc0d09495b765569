"""Parent samplers: which finished program the next child grows from, and what inspires it.

One concept a file: `base` (records, protocol, replay contract), `population` (ranking),
`inspirations`, one file per policy (`ucb1`, `greedy`, `uniform` = "random", `islands`,
`map_elites`) and `factory` (`make_sampler`).

    sampler = make_sampler("ucb1", direction="maximize")
    sampler.add(Member(id="seed", score=0.4))
    selection = sampler.select(np.random.default_rng([run_seed, iteration]))
"""

from orchestrator.sampling.base import Member, Sampler, SamplingError, Selection, make_sampler
from orchestrator.sampling.factory import SAMPLER_NAMES

__all__ = ["SAMPLER_NAMES", "Member", "Sampler", "SamplingError", "Selection", "make_sampler"]
