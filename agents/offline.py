"""The offline Researcher: proposes candidates WITHOUT an LLM.

Operators, all confined to the EVOLVE blocks (see agents/literals.py for what a site is):
- mutate: 1-3 sites change. Ints step by ±1..±max(1, 20%) (never below 0: the sign is a
  separate token); floats are multiplied by a log-normal factor (sign kept); a float in (0, 1)
  named like a probability or fraction (p, prob, rate, lr, ratio, frac, dropout, threshold,
  momentum, decay, alpha, ...) moves in logit space and stays in (0, 1), other floats are free
  to cross 1 (a blanket rule would trap a 1.0 that once stepped to 0.98);
  `# evolve: range [lo, hi]` clips; declared choices swap to another choice.
- crossover: lines of the parent whose literal-blanked skeleton matches a line of an
  inspiration take the inspiration's version with probability 1/2 (at least one does).
Every proposal compiles (Python programs) and differs from its parent; a draw that fails is
redrawn, up to MAX_TRIES. Deterministic for (seed, iteration, rng_seed).
"""

from __future__ import annotations

import difflib
import math
import random
import re
from typing import Any

from agents.errors import ProposalError
from agents.literals import Site, find_sites, literal_edits, literal_value, skeleton
from agents.researcher import Proposal, ResearchContext, _is_python

MAX_TRIES = 12
CROSSOVER_P = 0.3  # chance to try crossover when there are inspirations
SITES_PER_PROPOSAL = ([1, 2, 3], [0.6, 0.3, 0.1])
CHOICE_WEIGHT = 1.5  # a declared alternative is worth a little more than one of many numbers
FLOAT_SIGMA = 0.35  # log-normal sigma of the float factor
LOGIT_SIGMA = 0.6  # sigma in logit space for floats in (0, 1)
INT_STEP_FRACTION = 0.2
_PROBABILITY_NAME = re.compile(
    r"(^|[_#.])(p|prob\w*|proba|rate|lr|ratio|frac\w*|dropout|drop|thresh\w*|momentum|decay"
    r"|alpha|beta\d?|gamma|eps\w*|quantile|q|keep\w*|pct|percent\w*|share|tau|rho|mix\w*)($|[_#.\d])"
)


def probability_like(name: str) -> bool:
    return bool(_PROBABILITY_NAME.search(name.lower())) or "prob" in name.lower()


def _fmt_float(x: float, digits: int = 3) -> str:
    s = f"{x:.{digits}g}"
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s


def _clip(x: float, bounds: tuple[float, float] | None) -> float:
    return x if bounds is None else min(max(x, bounds[0]), bounds[1])


def _quote_like(original: str, value: Any) -> str:
    if isinstance(value, str) and original.lstrip("rbuRBU").startswith('"'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def mutate_site(site: Site, rng: random.Random) -> str | None:
    """New source text for a site, or None when this draw changed nothing."""
    value = literal_value(site)
    if site.kind == "choice":
        others = [c for c in site.choices if not (type(c) is type(value) and c == value)]
        return _quote_like(site.text, rng.choice(others)) if others else None
    if site.kind == "int":
        v = int(value)
        step = rng.randint(1, max(1, round(INT_STEP_FRACTION * abs(v)))) * rng.choice((-1, 1))
        new = v + step if v + step >= 0 else v + abs(step)
        if site.bounds is not None:
            new = int(_clip(new, site.bounds))
        return str(new) if new != v else None
    v = float(value)
    if site.bounds is None and 0.0 < v < 1.0 and probability_like(site.name):
        logit = math.log(v / (1 - v)) + rng.gauss(0.0, LOGIT_SIGMA)
        new_f = min(max(1 / (1 + math.exp(-logit)), 0.001), 0.999)
    elif v == 0.0:
        new_f = 10 ** rng.uniform(-3, -1)
    else:
        new_f = v * math.exp(rng.gauss(0.0, FLOAT_SIGMA))
    new_f = _clip(new_f, site.bounds)
    for digits in (3, 4, 6):
        text = _fmt_float(new_f, digits)
        kept = 0 < float(text) < 1 or not (0 < v < 1 and probability_like(site.name))
        if float(text) != v and (site.bounds is not None or kept):
            return text
    return None


def _replace_sites(code: str, edits: list[tuple[Site, str]]) -> str:
    lines = code.splitlines(keepends=True)
    for site, text in sorted(edits, key=lambda e: (e[0].line, -e[0].col)):
        line = lines[site.line]
        lines[site.line] = line[: site.col] + text + line[site.end_col :]
    return "".join(lines)


def mutate(code: str, rng: random.Random) -> str | None:
    sites = find_sites(code)
    if not sites:
        return None
    count = min(len(sites), rng.choices(*SITES_PER_PROPOSAL)[0])
    weights = [CHOICE_WEIGHT if s.kind == "choice" else s.weight for s in sites]
    chosen: list[Site] = []
    pool = list(zip(sites, weights, strict=True))
    while pool and len(chosen) < count:
        pick = rng.choices(range(len(pool)), weights=[w for _, w in pool])[0]
        chosen.append(pool.pop(pick)[0])
    edits = [(s, t) for s in chosen if (t := mutate_site(s, rng)) is not None]
    return _replace_sites(code, edits) if edits else None


def crossover(code: str, other: str, rng: random.Random) -> str | None:
    """Lines of `code` whose skeleton matches a line of `other` may take `other`'s version.

    Only evolvable lines of both programs are mixed; None when nothing can be swapped."""
    from agents.blocks import evolvable_lines  # noqa: PLC0415

    mine, theirs = code.splitlines(keepends=True), other.splitlines(keepends=True)
    ok_mine, ok_theirs = evolvable_lines(code), evolvable_lines(other)
    matcher = difflib.SequenceMatcher(
        a=[skeleton(x) for x in mine], b=[skeleton(x) for x in theirs], autojunk=False
    )
    swappable = [
        (i1 + k, j1 + k)
        for tag, i1, i2, j1, _ in matcher.get_opcodes()
        if tag == "equal"
        for k in range(i2 - i1)
        if mine[i1 + k] != theirs[j1 + k] and i1 + k in ok_mine and j1 + k in ok_theirs
    ]
    if not swappable:
        return None
    take = [pair for pair in swappable if rng.random() < 0.5] or [rng.choice(swappable)]
    out = list(mine)
    for i, j in take:
        tail = "\n" if mine[i].endswith("\n") and not theirs[j].endswith("\n") else ""
        out[i] = theirs[j] + tail
    return "".join(out)


def _compiles(code: str) -> bool:
    try:
        compile(code, "program.py", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


class OfflineResearcher:
    """Proposals by literal mutation, declared-choice swaps and line crossover; no model."""

    offline = True

    def __init__(self, seed: int):
        self.seed = seed

    def _rng(self, ctx: ResearchContext) -> random.Random:
        return random.Random(f"offline:{self.seed}:{ctx.iteration}:{ctx.rng_seed}")

    async def propose(self, ctx: ResearchContext) -> Proposal:
        return self.propose_sync(ctx)

    def propose_sync(self, ctx: ResearchContext) -> Proposal:
        rng = self._rng(ctx)
        parent = ctx.parent.code
        python = _is_python(ctx.task)
        partners = [c for c in ctx.inspirations if c.code != parent]
        for _ in range(MAX_TRIES):
            op, partner = "mutate", None
            if partners and rng.random() < CROSSOVER_P:
                partner = rng.choice(partners)
                code = crossover(parent, partner.code, rng)
                op = "crossover"
                if code is None:
                    op, partner, code = "mutate", None, mutate(parent, rng)
            else:
                code = mutate(parent, rng)
            if code is None or code == parent or (python and not _compiles(code)):
                continue
            edits = "; ".join(str(e) for e in literal_edits(parent, code)) or "literals changed"
            about = f" with {partner.id}" if partner is not None else ""
            return Proposal(
                code=code,
                parent_id=ctx.parent.id,
                inspiration_ids=[partner.id] if partner is not None else [],
                origin=f"offline:{op}",
                summary=f"{op}{about}: {edits}",
                prompt_hash=None,
                llm_calls=[],
            )
        raise ProposalError(
            f"the offline researcher found nothing to change in {ctx.parent.id} after {MAX_TRIES} "
            f"draws ({len(find_sites(parent))} mutable sites): put numeric literals or "
            "`# evolve: choices [...]` lines inside the EVOLVE blocks, or use an LLM"
        )

    async def repair(self, ctx: ResearchContext, code: str, error: str) -> Proposal | None:
        return None
