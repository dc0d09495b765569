"""The offline Researcher: deterministic, compiles, stays inside the EVOLVE blocks, honours
choices / fixed / range, crossover, and finds real improvements on a literal-rich program."""

from __future__ import annotations

import ast
import random

from agents_support import SEED, make_candidate, make_task

from agents.blocks import block_bodies, outside_text
from agents.literals import find_sites, literal_edits
from agents.offline import OfflineResearcher, crossover, mutate_site
from agents.researcher import ResearchContext


def ctx_for(
    parent_code: str = SEED, *, iteration: int = 1, rng_seed: int = 0, inspirations=()
) -> ResearchContext:
    return ResearchContext(
        task=make_task(),
        run_id="run-off",
        iteration=iteration,
        rng_seed=rng_seed,
        parent=make_candidate(parent_code),
        inspirations=list(inspirations),
        insights=[],
        failures=[],
    )


def constants(code: str) -> dict[str, object]:
    """Module-level NAME = literal assignments of a program."""
    out = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def test_sites_skip_indices_fixed_lines_and_outside_code() -> None:
    names = {s.name: s for s in find_sites(SEED)}
    assert set(names) == {
        "THRESHOLD",
        "LR",
        "STEPS",
        "MODE",
        "SCALE",
        "CLIP",
        "width",
        "depth",
        "L18",
    }
    assert names["MODE"].kind == "choice" and names["STEPS"].kind == "int"
    assert names["SCALE"].negated and names["CLIP"].bounds == (1.0, 10.0)
    assert names["L18"].text == "2.0"  # `x[0] * 2.0`: the index is skipped, the factor is not


def test_tunable_constants_outweigh_plumbing_literals() -> None:
    code = (
        "# EVOLVE-BLOCK-START\nRATE = 0.3\ncfg = {'width': 64}\n"
        "def f(x, n):\n    y = x.sum(axis=1) ** 2\n    return y * 3.5 * n - 1 + g(alpha=0.7)\n"
        "# EVOLVE-BLOCK-END\n"
    )
    weights = {s.name: s.weight for s in find_sites(code)}
    assert "axis" not in weights  # `axis=1` is never a tuning knob
    assert weights["RATE"] == 1.0 and weights["width"] > 0.5
    assert weights["alpha"] > weights["L6"] > weights["y"]  # keyword > factor > exponent
    picks = [
        OfflineResearcher(0).propose_sync(ctx_for(code, iteration=i)).summary for i in range(60)
    ]
    assert sum("RATE" in p for p in picks) > sum("y " in p for p in picks)


def test_proposals_are_deterministic_for_seed_iteration_and_rng_seed() -> None:
    a = [OfflineResearcher(5).propose_sync(ctx_for(iteration=i)).code for i in range(8)]
    b = [OfflineResearcher(5).propose_sync(ctx_for(iteration=i)).code for i in range(8)]
    assert a == b
    assert len(set(a)) >= 6
    assert OfflineResearcher(6).propose_sync(ctx_for(iteration=1)).code != a[1] or (
        OfflineResearcher(5).propose_sync(ctx_for(iteration=1, rng_seed=9)).code != a[1]
    )


def test_many_proposals_compile_stay_in_blocks_and_respect_directives() -> None:
    researcher = OfflineResearcher(1)
    frame = outside_text(SEED)
    seen_modes, seen = set(), 0
    code = SEED
    for i in range(150):
        proposal = researcher.propose_sync(ctx_for(code, iteration=i))
        compile(proposal.code, "p.py", "exec")
        assert proposal.code != code
        assert outside_text(proposal.code) == frame
        assert proposal.origin == "offline:mutate" and proposal.llm_calls == []
        assert 1 <= len(literal_edits(code, proposal.code)) <= 3
        consts = constants(proposal.code)
        assert consts["MODE"] in ("loss", "margin", "hinge")
        assert consts["KEEP"] == 7
        assert 1.0 <= consts["CLIP"] <= 10.0
        assert 0.0 < consts["THRESHOLD"] < 1.0 and 0.0 < consts["LR"] < 1.0
        assert isinstance(consts["STEPS"], int) and consts["STEPS"] >= 0
        assert consts["SCALE"] < 0
        seen_modes.add(consts["MODE"])
        seen += 1
        code = proposal.code  # a random walk: every step must stay valid
    assert seen_modes == {"loss", "margin", "hinge"}


def test_summary_names_the_edits() -> None:
    proposal = OfflineResearcher(2).propose_sync(ctx_for(iteration=4))
    edits = literal_edits(SEED, proposal.code)
    assert proposal.summary.startswith("mutate: ")
    for e in edits:
        assert str(e) in proposal.summary


def test_int_steps_are_scale_aware() -> None:
    rng = random.Random(0)
    [steps] = [s for s in find_sites(SEED) if s.name == "STEPS"]
    values = {int(mutate_site(steps, rng)) for _ in range(300)}
    assert values <= set(range(80, 121)) - {100}
    assert min(values) < 95 and max(values) > 105  # steps up to 20%, not only ±1


def test_crossover_mixes_lines_of_two_parents() -> None:
    other = (
        SEED.replace("LR = 0.01", "LR = 0.05")
        .replace("STEPS = 100", "STEPS = 300")
        .replace('MODE = "loss"', 'MODE = "hinge"')
    )
    rng = random.Random(3)
    children = {crossover(SEED, other, rng) for _ in range(40)}
    assert None not in children
    for child in children:
        assert outside_text(child) == outside_text(SEED)
        consts = constants(child)
        assert consts["LR"] in (0.01, 0.05) and consts["STEPS"] in (100, 300)
        assert child != SEED
    assert len(children) >= 5  # different subsets of the three differing lines
    insp = make_candidate(other, score=0.9)
    ops = [
        OfflineResearcher(0).propose_sync(ctx_for(iteration=i, inspirations=[insp]))
        for i in range(30)
    ]
    crossed = [p for p in ops if p.origin == "offline:crossover"]
    assert crossed and all(p.inspiration_ids == [insp.id] for p in crossed)
    assert crossover(SEED, SEED, rng) is None


def test_program_with_nothing_to_mutate_raises() -> None:
    import pytest

    from agents.errors import ProposalError

    code = "# EVOLVE-BLOCK-START\ndef f(x):\n    return x\n# EVOLVE-BLOCK-END\nN = 5\n"
    with pytest.raises(ProposalError, match="nothing to change"):
        OfflineResearcher(0).propose_sync(ctx_for(code))


TOY = """
# EVOLVE-BLOCK-START
A = 1.0
B = 10
C = 0.5
KIND = "square"  # evolve: choices ["square", "abs", "cube"]
# EVOLVE-BLOCK-END
"""


def toy_score(code: str) -> float:
    """Higher is better; the optimum is A=3.7, B=25, C=0.12, KIND="abs"."""
    ns: dict = {}
    exec(compile(code, "toy.py", "exec"), ns)  # trusted test program
    penalty = {"square": 1.0, "abs": 0.0, "cube": 2.0}[ns["KIND"]]
    return -(
        (ns["A"] - 3.7) ** 2 + ((ns["B"] - 25) / 10) ** 2 + (10 * (ns["C"] - 0.12)) ** 2 + penalty
    )


def test_hill_climbing_with_offline_researcher_improves_a_literal_rich_program() -> None:
    researcher = OfflineResearcher(0)
    best, best_score = TOY, toy_score(TOY)
    start = best_score
    for i in range(250):
        parent = make_candidate(best, score=best_score)
        proposal = researcher.propose_sync(
            ResearchContext(make_task(), "run", i, 0, parent, [], [], [])
        )
        score = toy_score(proposal.code)
        if score > best_score:
            best, best_score = proposal.code, score
    assert start < -8
    assert best_score > -0.1, (best_score, block_bodies(best))
    assert '"abs"' in best
