"""Trusted evaluator of circle_packing: check a packing of 26 circles in the unit square and
score the sum of radii.

The candidate's `pack(n, seed, budget_s)` runs in a child process (`call_candidate`); this
process only receives its centers and radii, checks every constraint itself and sums the radii.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evoforge_runner.child import call_candidate

N_CIRCLES = 26
#: Best published sum of radii for 26 circles (AlphaEvolve, 2025; FICO Xpress reports 2.6359).
SOTA_SUM_RADII = 2.635
#: Slack allowed on every constraint (containment and pairwise distance).
TOLERANCE = 1e-9
#: Seconds the candidate may compute, per stage; it is told this figure as `budget_s`.
STAGE_BUDGET_S = {"quick": 5.0, "full": 20.0}
#: Scale multipliers of the budget (`scales:` in task.yaml).
SCALE_BUDGET_FACTOR = {None: 1.0, "long": 6.0}
#: Extra seconds granted for the child's interpreter start and imports.
IMPORT_MARGIN_S = 8.0


def _as_packing(out: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Centers and radii from what `pack` returned: a dict or a (centers, radii) tuple."""
    if "centers" in out and "radii" in out:
        centers, radii = out["centers"], out["radii"]
    elif "out0" in out and "out1" in out:
        centers, radii = out["out0"], out["out1"]
    else:
        raise ValueError(
            f"pack() must return (centers, radii) or a dict with keys 'centers' and 'radii'; "
            f"got keys {sorted(out)}"
        )
    try:
        centers = np.asarray(centers, dtype=np.float64)
        radii = np.asarray(radii, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"centers and radii must be numeric arrays: {exc}") from exc
    return centers, radii


def check_packing(centers: np.ndarray, radii: np.ndarray, n: int = N_CIRCLES, tol: float = TOLERANCE) -> None:
    """Raise ValueError naming the first violated constraint; return None when valid."""
    if centers.shape != (n, 2):
        raise ValueError(f"centers must have shape ({n}, 2), got {centers.shape}")
    if radii.shape != (n,):
        raise ValueError(f"radii must have shape ({n},), got {radii.shape}")
    if not (np.isfinite(centers).all() and np.isfinite(radii).all()):
        raise ValueError("centers and radii must be finite (found NaN or inf)")
    if (radii < 0).any():
        i = int(np.argmin(radii))
        raise ValueError(f"radius {i} is negative ({radii[i]:.3g}); radii must be >= 0")
    walls = {
        "left (x - r >= 0)": centers[:, 0] - radii,
        "bottom (y - r >= 0)": centers[:, 1] - radii,
        "right (x + r <= 1)": 1.0 - centers[:, 0] - radii,
        "top (y + r <= 1)": 1.0 - centers[:, 1] - radii,
    }
    for wall, slack in walls.items():
        if (slack < -tol).any():
            i = int(np.argmin(slack))
            raise ValueError(
                f"circle {i} crosses the {wall} wall by {-slack[i]:.3g} (tolerance {tol:g}); "
                f"center {centers[i].tolist()}, radius {radii[i]:.6g}"
            )
    iu, ju = np.triu_indices(n, 1)
    dist = np.linalg.norm(centers[iu] - centers[ju], axis=1)
    slack = dist - radii[iu] - radii[ju]
    if (slack < -tol).any():
        k = int(np.argmin(slack))
        raise ValueError(
            f"circles {iu[k]} and {ju[k]} overlap by {-slack[k]:.3g} (tolerance {tol:g}): "
            f"distance {dist[k]:.6g} < r{iu[k]} + r{ju[k]} = {radii[iu[k]] + radii[ju[k]]:.6g}"
        )


def packing_metrics(centers: np.ndarray, radii: np.ndarray) -> dict[str, float]:
    """Score and descriptive features of a valid packing."""
    total = float(radii.sum())
    n = len(radii)
    wall_gap = np.min(np.concatenate([centers - radii[:, None], 1 - centers - radii[:, None]], 1), 1)
    iu, ju = np.triu_indices(n, 1)
    gaps = np.linalg.norm(centers[iu] - centers[ju], axis=1) - radii[iu] - radii[ju]
    return {
        "sum_radii": total,
        "ratio_to_sota": total / SOTA_SUM_RADII,
        "min_radius": float(radii.min()),
        "max_radius": float(radii.max()),
        "radius_cv": float(radii.std() / max(radii.mean(), 1e-12)),
        "boundary_fraction": float((wall_gap < 1e-6).mean()),
        "contacts": int((gaps < 1e-6).sum()),
    }


def evaluate(program_path: str, *, stage: str, seed: int, workdir: str, scale: str | None = None) -> dict:
    """Run the candidate's `pack` in a child process, check the packing, return the score."""
    if stage not in STAGE_BUDGET_S:
        raise ValueError(f"circle_packing has no stage {stage!r}; known: {sorted(STAGE_BUDGET_S)}")
    if scale not in SCALE_BUDGET_FACTOR:
        raise ValueError(f"circle_packing has no scale {scale!r}; known: long or none")
    budget_s = STAGE_BUDGET_S[stage] * SCALE_BUDGET_FACTOR[scale]
    out = call_candidate(
        program_path,
        "pack",
        workdir=Path(workdir),
        timeout_s=budget_s + IMPORT_MARGIN_S,
        inputs={"n": N_CIRCLES, "seed": int(seed), "budget_s": budget_s},
        threads=1,
    )
    centers, radii = _as_packing(out)
    check_packing(centers, radii)
    metrics = packing_metrics(centers, radii)
    feedback = (
        f"valid packing of {N_CIRCLES} circles: sum of radii {metrics['sum_radii']:.6f} "
        f"({100 * metrics['ratio_to_sota']:.2f}% of the best known {SOTA_SUM_RADII}); "
        f"radii {metrics['min_radius']:.4f}..{metrics['max_radius']:.4f}, "
        f"{metrics['contacts']} tight pairs, {100 * metrics['boundary_fraction']:.0f}% of circles touch a wall"
    )
    return {"score": metrics["sum_radii"], "metrics": metrics, "feedback": feedback}
