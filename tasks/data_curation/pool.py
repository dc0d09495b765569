"""The corrupted training pool and the clean held-out benchmarks of data_curation.

Built deterministically from scikit-learn's bundled `load_digits` (8x8 images, pixel values
0..16, 10 classes; no download). For a seed, the 1797 images are split into a held-out set
(never shown to the candidate) and a pool source, and the pool is corrupted:

- class imbalance: three classes keep only a fraction of their examples;
- label noise: uniform flips plus systematic confusions (1->7, 3->8, 4->9, 5->6, ...);
- corrupted images with their true label: heavy noise, blank, inverted;
- off-domain images with random labels: noise fields, stripes, blobs;
- near-duplicate clusters: a few examples (mislabeled ones included) copied several times;
- a small dither on every pool image, so pixel values are floats and no image is exact.

`Corruption` holds, per pool example, what was done to it: the evaluator uses it for metrics
(how much noise the curation removed) and never hands it to the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

N_CLASSES = 10
PIXEL_MAX = 16.0
HELD_OUT = 600
RARE_CLASS_COUNT = 3
RARE_KEEP = 0.3
UNIFORM_FLIP = 0.12
#: Systematic confusions: a share of class c is labelled SYSTEMATIC[c].
SYSTEMATIC = {1: 7, 7: 1, 3: 8, 4: 9, 5: 6, 9: 4}
SYSTEMATIC_FLIP = 0.3
CORRUPT_FRACTION = 0.06
OFF_DOMAIN_FRACTION = 0.07
DUP_SOURCES = 35
DUP_COPIES = (2, 6)
DUP_NOISE = 0.6
DITHER = 0.3
SHIFT_NOISE = 1.5
#: Share of held-out digits moved by one pixel in the shifted benchmark.
SHIFT_PROB = 0.5

#: Values of `Corruption.kind`.
CLEAN, FLIPPED, CORRUPTED, OFF_DOMAIN = 0, 1, 2, 3


@dataclass(frozen=True)
class Pool:
    """What the candidate receives (X, y) and what only the evaluator knows."""

    X: np.ndarray  # [n, 64] float32 in [0, 16]
    y: np.ndarray  # [n] int64 observed (noisy) labels
    clean_y: np.ndarray  # [n] true labels (-1 for off-domain images)
    kind: np.ndarray  # [n] CLEAN / FLIPPED / CORRUPTED / OFF_DOMAIN
    duplicate: np.ndarray  # [n] bool: a near-copy of another pool example
    rare_classes: tuple[int, ...]


@dataclass(frozen=True)
class Benchmarks:
    """Held-out clean data: never passed to the candidate."""

    X_clean: np.ndarray
    y_clean: np.ndarray
    X_shifted: np.ndarray  # the same digits moved by one pixel, with added noise
    rare_classes: tuple[int, ...]


def _shift_images(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move a SHIFT_PROB share of the 8x8 images by one pixel in a random direction (zeros
    enter at the edge); the others stay in place."""
    imgs = X.reshape(-1, 8, 8)
    out = np.zeros_like(imgs)
    moves = [(0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)]
    moved = rng.random(len(imgs)) < SHIFT_PROB
    for i, k in enumerate(rng.integers(0, len(moves), len(imgs))):
        dy, dx = moves[k] if moved[i] else (0, 0)
        src = imgs[i][max(0, -dy) : 8 - max(0, dy), max(0, -dx) : 8 - max(0, dx)]
        out[i][max(0, dy) : 8 - max(0, -dy), max(0, dx) : 8 - max(0, -dx)] = src
    return out.reshape(-1, 64)


def _off_domain_images(count: int, rng: np.random.Generator) -> np.ndarray:
    """Images that are no digit: uniform noise, stripes, a few bright blobs."""
    out = np.zeros((count, 8, 8))
    for i in range(count):
        style = i % 3
        if style == 0:
            out[i] = rng.uniform(0, PIXEL_MAX, (8, 8))
        elif style == 1:
            out[i][:, rng.integers(0, 2) :: 2] = rng.uniform(8, PIXEL_MAX)
            if rng.random() < 0.5:
                out[i] = out[i].T
        else:
            for _ in range(rng.integers(2, 5)):
                r, c = rng.integers(0, 7, 2)
                out[i][r : r + 2, c : c + 2] = PIXEL_MAX
    return out.reshape(count, 64)


def _corrupt_images(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Heavy noise, blank or inverted versions of real digits."""
    out = X.copy()
    for i in range(len(out)):
        style = i % 3
        if style == 0:
            out[i] = out[i] + rng.normal(0, 7.0, 64)
        elif style == 1:
            out[i] = rng.uniform(0, 1.5, 64)
        else:
            out[i] = PIXEL_MAX - out[i]
    return np.clip(out, 0, PIXEL_MAX)


def build(seed: int) -> tuple[Pool, Benchmarks]:
    """The pool and the held-out benchmarks for `seed` (bit-identical for a seed)."""
    digits = load_digits()
    X_all = digits.data.astype(np.float64)
    y_all = digits.target.astype(np.int64)
    rng = np.random.default_rng([seed, 20240611])
    order = rng.permutation(len(y_all))
    test_idx, src_idx = order[:HELD_OUT], order[HELD_OUT:]

    rare = tuple(sorted(int(c) for c in rng.choice(N_CLASSES, RARE_CLASS_COUNT, replace=False)))
    keep = np.array([(y_all[i] not in rare) or (rng.random() < RARE_KEEP) for i in src_idx])
    src_idx = src_idx[keep]
    X, clean_y = X_all[src_idx].copy(), y_all[src_idx].copy()
    y = clean_y.copy()
    n = len(y)
    kind = np.full(n, CLEAN, dtype=np.int64)

    # Corrupted images and label noise touch disjoint examples.
    slots = rng.permutation(n)
    n_corrupt = int(round(CORRUPT_FRACTION * n))
    corrupt_idx, rest = slots[:n_corrupt], slots[n_corrupt:]
    X[corrupt_idx] = _corrupt_images(X[corrupt_idx], rng)
    kind[corrupt_idx] = CORRUPTED
    for i in rest:
        c = int(clean_y[i])
        if c in SYSTEMATIC and rng.random() < SYSTEMATIC_FLIP:
            y[i] = SYSTEMATIC[c]
        elif rng.random() < UNIFORM_FLIP:
            y[i] = (c + rng.integers(1, N_CLASSES)) % N_CLASSES
        if y[i] != c:
            kind[i] = FLIPPED

    n_off = int(round(OFF_DOMAIN_FRACTION * n))
    X = np.concatenate([X, _off_domain_images(n_off, rng)])
    y = np.concatenate([y, rng.integers(0, N_CLASSES, n_off)])
    clean_y = np.concatenate([clean_y, np.full(n_off, -1)])
    kind = np.concatenate([kind, np.full(n_off, OFF_DOMAIN)])

    sources = rng.choice(len(y), DUP_SOURCES, replace=False)
    copies = np.repeat(sources, rng.integers(DUP_COPIES[0], DUP_COPIES[1] + 1, DUP_SOURCES))
    X_dup = np.clip(X[copies] + rng.normal(0, DUP_NOISE, (len(copies), 64)), 0, PIXEL_MAX)
    duplicate = np.concatenate([np.zeros(len(y), bool), np.ones(len(copies), bool)])
    X = np.concatenate([X, X_dup])
    y, clean_y, kind = y[np.r_[:len(y), copies]], clean_y[np.r_[:len(clean_y), copies]], kind[np.r_[:len(kind), copies]]

    X = np.clip(X + rng.normal(0, DITHER, X.shape), 0, PIXEL_MAX)
    shuffle = rng.permutation(len(y))
    pool = Pool(
        X=X[shuffle].astype(np.float32),
        y=y[shuffle],
        clean_y=clean_y[shuffle],
        kind=kind[shuffle],
        duplicate=duplicate[shuffle],
        rare_classes=rare,
    )

    X_test, y_test = X_all[test_idx], y_all[test_idx]
    X_shift = np.clip(_shift_images(X_test, rng) + rng.normal(0, SHIFT_NOISE, X_test.shape), 0, PIXEL_MAX)
    bench = Benchmarks(
        X_clean=X_test.astype(np.float32),
        y_clean=y_test,
        X_shifted=X_shift.astype(np.float32),
        rare_classes=rare,
    )
    return pool, bench
