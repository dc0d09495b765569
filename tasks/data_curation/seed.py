"""Seed program for data_curation: clean a corrupted pool of 8x8 digit images.

curate(X, y, seed) receives the pool (X: [n, 64] pixels in [0, 16], y: [n] noisy labels) and
returns which examples to train on, how much each one weighs, and optional extra examples
(relabelled or augmented). A fixed model is trained on the result and tested on clean
held-out digits that this program never sees.

Pipeline: drop outliers (blank, saturated or far-from-everything images), drop near-duplicates,
filter suspicious labels, relabel confidently, add shifted copies, weight classes.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors

# Fixed helpers (geometry and statistics); the curation strategy is evolvable below.


def shift_image(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """A flat 8x8 image moved by (dy, dx) pixels; zeros enter at the edges."""
    img, out = x.reshape(8, 8), np.zeros((8, 8), dtype=x.dtype)
    src = img[max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
    out[max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
    return out.reshape(64)


def robust_z(d: np.ndarray) -> np.ndarray:
    """(d - median) / (1.4826 * median absolute deviation)."""
    med = np.median(d)
    return (d - med) / (np.median(np.abs(d - med)) * 1.4826 + 1e-9)


# EVOLVE-BLOCK-START
INK_MIN = 120.0  # total ink below this: a blank image
INK_MAX = 700.0  # total ink above this: a saturated or inverted image
OUTLIER_K = 5  # neighbours used for the isolation score
OUTLIER_Z = 6.0  # drop images whose k-th neighbour distance is this many robust SDs above the median
DEDUP_RADIUS = 4.0  # images closer than this (L2, pixel units) are one example seen twice
LABEL_FILTER = "knn"  # evolve: choices ["knn", "cv_prob", "none"]
K_NEIGHBORS = 5  # knn: neighbours that vote on each label
AGREE_MIN = 0.3  # knn: least share of neighbours that must agree with the label
THRESHOLD = "absolute"  # evolve: choices ["absolute", "per_class"]
CV_FOLDS = 3  # cv_prob: folds of the cross-validated classifier
PROB_MIN = 0.1  # cv_prob: least cross-validated probability of the given label
RELABEL_MIN = 1.0  # share of neighbours agreeing on another label needed to relabel a dropped example
AUG_FRACTION = 0.1  # shifted copies added, as a share of the kept examples
AUG_SHIFT = 1  # pixels an augmented copy is moved by
BALANCE_POWER = 0.2  # class weight = (class count) ** -BALANCE_POWER
MAX_WEIGHT = 5.0  # cap on any weight relative to the mean


def ink_filter(X: np.ndarray) -> np.ndarray:
    ink = X.sum(1)
    return (ink >= INK_MIN) & (ink <= INK_MAX)


def isolation_filter(X: np.ndarray) -> np.ndarray:
    """Keep images whose k-th nearest neighbour is not unusually far away."""
    k = int(max(1, OUTLIER_K))
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return robust_z(dist[:, -1]) <= OUTLIER_Z


def dedup(X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Among `idx`, keep the first of every group of images within DEDUP_RADIUS."""
    if DEDUP_RADIUS <= 0 or len(idx) < 2:
        return idx
    nbrs = NearestNeighbors(radius=DEDUP_RADIUS).fit(X[idx])
    groups = nbrs.radius_neighbors(X[idx], return_distance=False)
    taken = np.zeros(len(idx), dtype=bool)
    keep = []
    for i in range(len(idx)):
        if not taken[i]:
            keep.append(i)
            taken[groups[i]] = True
    return idx[np.array(keep, dtype=np.int64)]


def neighbour_votes(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[n, 10] share of each example's K nearest neighbours (itself excluded) with each label."""
    k = int(max(1, K_NEIGHBORS))
    _, nb = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    votes = np.zeros((len(y), 10))
    for j in nb[:, 1:].T:
        votes[np.arange(len(y)), y[j]] += 1.0 / k
    return votes


def cv_probabilities(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """[n, 10] out-of-fold predicted probabilities of a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(y), 10))
    folds = StratifiedKFold(n_splits=int(max(2, CV_FOLDS)), shuffle=True, random_state=seed)
    for train_idx, test_idx in folds.split(X, y):
        clf = LogisticRegression(C=0.05, max_iter=300).fit(X[train_idx] / 16.0, y[train_idx])
        probs[np.ix_(test_idx, clf.classes_)] = clf.predict_proba(X[test_idx] / 16.0)
    return probs


def shifted_copies(X: np.ndarray, y: np.ndarray, count: int, rng: np.random.Generator):
    """`count` copies of random examples moved by AUG_SHIFT pixels in a random direction."""
    s = int(max(1, AUG_SHIFT))
    pick = rng.choice(len(y), size=min(count, len(y)), replace=False)
    moves = rng.integers(-1, 2, size=(len(pick), 2)) * s
    return np.stack([shift_image(X[i], dy, dx) for i, (dy, dx) in zip(pick, moves, strict=True)]), y[pick]


def curate(X: np.ndarray, y: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = len(y)
    candidates = np.flatnonzero(ink_filter(X) & isolation_filter(X))
    candidates = dedup(X, candidates)
    Xc, yc = X[candidates], y[candidates]

    if LABEL_FILTER == "knn":
        votes, cut = neighbour_votes(Xc, yc), AGREE_MIN
    elif LABEL_FILTER == "cv_prob":
        votes, cut = cv_probabilities(Xc, yc, seed), PROB_MIN
    else:
        votes, cut = np.eye(10)[yc], 0.0
    support = votes[np.arange(len(yc)), yc]
    if THRESHOLD == "per_class":
        # Relative to the mean support of the label's class, as confident learning does.
        class_mean = np.array([support[yc == c].mean() if (yc == c).any() else 1.0 for c in range(10)])
        support = support / np.maximum(class_mean[yc], 1e-9)
    ok = support >= cut
    keep = candidates[ok]

    # Dropped examples on which the neighbours agree get the neighbours' label.
    relabel = ~ok & (votes.max(1) >= RELABEL_MIN)
    X_extra = [Xc[relabel]]
    y_extra = [votes[relabel].argmax(1)]
    n_aug = int(AUG_FRACTION * len(keep))
    if n_aug > 0:
        xa, ya = shifted_copies(X[keep], y[keep], n_aug, rng)
        X_extra.append(xa)
        y_extra.append(ya)
    X_extra = np.concatenate(X_extra)[: n // 2]
    y_extra = np.concatenate(y_extra)[: n // 2].astype(np.int64)

    labels = np.concatenate([y[keep], y_extra])
    counts = np.bincount(labels, minlength=10).astype(float)
    w = (counts[labels] + 1.0) ** -BALANCE_POWER
    w = np.minimum(w / w.mean(), MAX_WEIGHT)
    return {
        "keep": keep,
        "weights": w[: len(keep)],
        "X_extra": X_extra,
        "y_extra": y_extra,
        "weights_extra": w[len(keep):],
    }
# EVOLVE-BLOCK-END
