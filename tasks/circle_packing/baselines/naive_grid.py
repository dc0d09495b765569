"""Baseline for circle_packing: equal circles on a square grid (6 x 6 cells, first 26 used)."""

import numpy as np


# EVOLVE-BLOCK-START
def pack(n: int, seed: int, budget_s: float = 10.0) -> dict:
    """Centers at the middles of a ceil(sqrt(n)) x ceil(sqrt(n)) grid, radius half a cell."""
    side = int(np.ceil(np.sqrt(n)))
    cell = 1.0 / side
    ticks = (np.arange(side) + 0.5) * cell
    centers = np.array([(x, y) for y in ticks for x in ticks])[:n]
    return {"centers": centers, "radii": np.full(n, cell / 2)}
# EVOLVE-BLOCK-END
