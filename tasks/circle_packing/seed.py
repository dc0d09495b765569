"""Seed program for circle_packing: pack n circles in the unit square, maximise the sum of radii.

Strategy: a structured initial layout, a penalty method (L-BFGS-B on centers and radii with a
growing overlap penalty), then a linear program that picks the best radii for the final
centers, and a last repair pass so that the packing is exactly feasible.
"""

import numpy as np
from scipy.optimize import linprog, minimize

# Fixed helpers (exact math): the penalty objective with its gradient, the LP for radii,
# the feasibility repair. The strategy that uses them is evolvable below.


def _penalty_objective(z: np.ndarray, n: int, mu: float) -> tuple[float, np.ndarray]:
    """-sum(r) + mu * (squared overlaps + squared wall violations), with its gradient."""
    xy, r = z[: 2 * n].reshape(n, 2), z[2 * n :]
    iu, ju = np.triu_indices(n, 1)
    diff = xy[iu] - xy[ju]
    dist = np.sqrt((diff**2).sum(1) + 1e-18)
    over = np.maximum(r[iu] + r[ju] - dist, 0.0)
    walls = np.stack([r - xy[:, 0], r - xy[:, 1], r + xy[:, 0] - 1, r + xy[:, 1] - 1], 1)
    wall = np.maximum(walls, 0.0)
    f = -r.sum() + mu * ((over**2).sum() + (wall**2).sum())
    g_xy = np.zeros((n, 2))
    g_r = -np.ones(n)
    coef = 2 * mu * over
    np.add.at(g_r, iu, coef)
    np.add.at(g_r, ju, coef)
    push = (coef / dist)[:, None] * diff
    np.add.at(g_xy, iu, -push)
    np.add.at(g_xy, ju, push)
    w = 2 * mu * wall
    g_r += w.sum(1)
    g_xy[:, 0] += -w[:, 0] + w[:, 2]
    g_xy[:, 1] += -w[:, 1] + w[:, 3]
    return f, np.concatenate([g_xy.ravel(), g_r])


def lp_radii(centers: np.ndarray) -> np.ndarray:
    """The largest sum of radii for fixed centers (a linear program)."""
    n = len(centers)
    iu, ju = np.triu_indices(n, 1)
    a = np.zeros((len(iu), n))
    a[np.arange(len(iu)), iu] = 1.0
    a[np.arange(len(iu)), ju] = 1.0
    dist = np.linalg.norm(centers[iu] - centers[ju], axis=1)
    wall = np.minimum(np.minimum(centers[:, 0], 1 - centers[:, 0]),
                      np.minimum(centers[:, 1], 1 - centers[:, 1]))
    res = linprog(-np.ones(n), A_ub=a, b_ub=dist, bounds=list(zip([0.0] * n, wall, strict=True)),
                  method="highs")
    return res.x if res.success else np.zeros(n)


def make_feasible(centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Shrink radii until no wall or pair constraint is violated (solver round-off)."""
    r = np.clip(radii, 0.0, None)
    r = np.minimum(r, np.min(np.concatenate([centers, 1 - centers], 1), axis=1))
    n = len(r)
    for i in range(n):
        for j in range(i + 1, n):
            d = float(np.linalg.norm(centers[i] - centers[j]))
            if r[i] + r[j] > d:
                scale = d / (r[i] + r[j]) * (1 - 1e-12)
                r[i] *= scale
                r[j] *= scale
    return r


# EVOLVE-BLOCK-START
INIT = "grid"  # evolve: choices ["grid", "rings", "hex", "random"]
JITTER = 0.01  # noise added to the initial centers
RADIUS_INIT = 0.05  # starting radius of every circle
RESTARTS_PER_S = 0.3  # restarts per second of the budget the evaluator gives
PENALTY_START = 10.0  # weight of the overlap penalty in the first round
PENALTY_GROWTH = 10.0  # factor applied to the weight after each round
PENALTY_ROUNDS = 3  # rounds of the penalty method
LBFGS_ITERS = 60  # L-BFGS-B iterations per round
RING_FRACTION = 0.35  # rings init: fraction of circles on the inner ring
RING_RADIUS = 0.22  # rings init: radius of the inner ring
EDGE_MARGIN = 0.08  # distance kept between the initial centers and the walls


def initial_centers(n: int, rng: np.random.Generator) -> np.ndarray:
    """A starting layout inside the square (before jitter)."""
    lo, hi = EDGE_MARGIN, 1.0 - EDGE_MARGIN
    if INIT == "random":
        pts = rng.uniform(lo, hi, size=(n, 2))
    elif INIT == "rings":
        inner = max(1, int(round(n * RING_FRACTION)))
        outer = n - inner - 1
        angles_in = np.linspace(0, 2 * np.pi, inner, endpoint=False)
        angles_out = np.linspace(0, 2 * np.pi, max(outer, 1), endpoint=False) + 0.3
        ring_in = 0.5 + RING_RADIUS * np.stack([np.cos(angles_in), np.sin(angles_in)], 1)
        ring_out = 0.5 + (0.5 - EDGE_MARGIN) * np.stack([np.cos(angles_out), np.sin(angles_out)], 1)
        pts = np.concatenate([[[0.5, 0.5]], ring_in, ring_out[:outer]])
    elif INIT == "hex":
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        pts = []
        for i in range(rows):
            for j in range(cols):
                shift = 0.5 if i % 2 else 0.0
                pts.append(((j + shift) / max(cols - 0.5, 1), i / max(rows - 1, 1)))
        pts = lo + (hi - lo) * np.array(pts[:n])
    else:  # grid
        side = int(np.ceil(np.sqrt(n)))
        g = np.linspace(lo, hi, side)
        pts = np.array([(x, y) for y in g for x in g])[:n]
    pts = pts + rng.normal(0.0, JITTER, size=pts.shape)
    return np.clip(pts, 0.0, 1.0)


def optimise(centers: np.ndarray) -> np.ndarray:
    """Penalty method on centers and radii; returns the improved centers."""
    n = len(centers)
    z = np.concatenate([centers.ravel(), np.full(n, RADIUS_INIT)])
    bounds = [(0.0, 1.0)] * (2 * n) + [(0.0, 0.5)] * n
    mu = PENALTY_START
    for _ in range(int(PENALTY_ROUNDS)):
        res = minimize(_penalty_objective, z, args=(n, mu), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": int(LBFGS_ITERS)})
        z = res.x
        mu *= PENALTY_GROWTH
    return z[: 2 * n].reshape(n, 2)


def pack(n: int, seed: int, budget_s: float = 10.0) -> dict:
    """Return {"centers": [n, 2], "radii": [n]}; deterministic for (n, seed, budget_s)."""
    rng = np.random.default_rng(seed)
    restarts = max(1, int(budget_s * RESTARTS_PER_S))
    best_c, best_r = None, None
    for _ in range(restarts):
        centers = optimise(initial_centers(n, rng))
        radii = make_feasible(centers, lp_radii(centers))
        if best_r is None or radii.sum() > best_r.sum():
            best_c, best_r = centers, radii
    return {"centers": best_c, "radii": best_r}
# EVOLVE-BLOCK-END
