"""Trusted evaluator of data_curation: run the candidate's `curate(X, y, seed)` in a child
process on a corrupted pool of digits, train a fixed MLP on what it keeps (plus the examples it
adds), and score the model on clean held-out benchmarks the candidate never sees.

Score = mean of three accuracies on held-out digits:
  acc_clean   (the clean held-out split),
  acc_shifted (the same digits moved by one pixel, with pixel noise),
  acc_rare    (the held-out digits of the classes that are rare in the pool).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from evoforge_runner.child import call_candidate

TASK_DIR = Path(__file__).resolve().parent
#: Seconds the candidate's `curate` may run (interpreter start and imports included).
CURATE_TIMEOUT_S = {"quick": 20.0, "full": 40.0}
#: The candidate may add at most this many examples per pool example (X_extra).
MAX_EXTRA_FRACTION = 0.5
#: A curated training set smaller than this is refused.
MIN_TRAIN_EXAMPLES = 20
#: Text that reveals an attempt to read the clean data instead of curating the pool.
FORBIDDEN_SOURCE = ("load_digits", "sklearn.datasets", "digits.csv", "fetch_openml",
                    "evaluate.py", "pool.py", "train.py", "tasks/data_curation")
KNOWN_OUTPUTS = {"keep", "weights", "X_extra", "y_extra", "weights_extra"}


def _sibling(name: str) -> ModuleType:
    """Import a module of this task folder by path (the folder need not be on sys.path)."""
    key = f"evoforge_task_data_curation_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, TASK_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def check_source(program_path: str | Path) -> None:
    """Refuse programs that name the raw dataset or the evaluator's files."""
    text = Path(program_path).read_text(errors="replace")
    found = [token for token in FORBIDDEN_SOURCE if token in text]
    if found:
        raise ValueError(
            f"the program mentions {found}: curate() must work from the pool it is given; "
            f"loading the original digits or reading the evaluator's files is not allowed"
        )


def _int_array(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool:
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (or be a boolean mask), got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def parse_curation(out: dict[str, Any], n: int, n_classes: int = 10) -> dict[str, np.ndarray]:
    """Validate what `curate` returned; return keep indices, weights and extra examples.

    Raises ValueError naming the offending field and what it should be."""
    if "keep" not in out and "out0" in out and len(out) == 1:
        out = {"keep": out["out0"]}
    unknown = sorted(set(out) - KNOWN_OUTPUTS)
    if unknown:
        raise ValueError(f"curate() returned unknown keys {unknown}; expected a dict with "
                         f"{sorted(KNOWN_OUTPUTS)} ('keep' required)")
    if "keep" not in out:
        raise ValueError("curate() must return a dict with 'keep' (indices or a boolean mask)")
    keep = _int_array(out["keep"], "keep")
    if keep.ndim != 1:
        raise ValueError(f"keep must be 1-D, got shape {keep.shape}")
    if keep.dtype == bool:
        if len(keep) != n:
            raise ValueError(f"a boolean keep mask must have length {n} (the pool size), got {len(keep)}")
        keep = np.flatnonzero(keep)
    if keep.size and (keep.min() < 0 or keep.max() >= n):
        bad = keep[(keep < 0) | (keep >= n)][:5].tolist()
        raise ValueError(f"keep holds indices outside [0, {n}): {bad}")
    if len(np.unique(keep)) != len(keep):
        raise ValueError("keep repeats indices; list each example once and use 'weights' to up-weight it")

    weights = np.ones(len(keep))
    if "weights" in out and out["weights"] is not None:
        weights = _float_array(out["weights"], "weights")
        if weights.shape != keep.shape:
            raise ValueError(f"weights must have one entry per kept example: shape {keep.shape}, got {weights.shape}")

    X_extra, y_extra = np.zeros((0, 64)), np.zeros(0, dtype=np.int64)
    if ("X_extra" in out) != ("y_extra" in out):
        raise ValueError("X_extra and y_extra go together: return both or neither")
    if "X_extra" in out:
        if np.size(out["X_extra"]):
            X_extra = _float_array(out["X_extra"], "X_extra")
            if X_extra.ndim != 2 or X_extra.shape[1] != 64:
                raise ValueError(f"X_extra must have shape [m, 64] (flat 8x8 images), got {X_extra.shape}")
        y_extra = _int_array(out["y_extra"], "y_extra").reshape(-1)
        if y_extra.dtype == bool:
            raise ValueError("y_extra must hold class labels 0..9, got booleans")
        if len(X_extra) != len(y_extra):
            raise ValueError(f"X_extra has {len(X_extra)} rows but y_extra has {len(y_extra)} labels")
        limit = int(MAX_EXTRA_FRACTION * n)
        if len(X_extra) > limit:
            raise ValueError(f"at most {limit} extra examples ({MAX_EXTRA_FRACTION:.0%} of the pool), got {len(X_extra)}")
        if X_extra.size and (X_extra.min() < 0 or X_extra.max() > 16):
            raise ValueError(f"X_extra pixels must lie in [0, 16] like the pool, got [{X_extra.min():.3g}, {X_extra.max():.3g}]")
        if y_extra.size and (y_extra.min() < 0 or y_extra.max() >= n_classes):
            raise ValueError(f"y_extra labels must lie in [0, {n_classes}), got [{y_extra.min()}, {y_extra.max()}]")
    weights_extra = np.ones(len(y_extra))
    if "weights_extra" in out and out["weights_extra"] is not None:
        weights_extra = _float_array(out["weights_extra"], "weights_extra").reshape(-1)
        if weights_extra.shape != y_extra.shape:
            raise ValueError(f"weights_extra must have one entry per extra example ({len(y_extra)}), got {weights_extra.shape}")

    all_weights = np.concatenate([weights, weights_extra])
    if (all_weights < 0).any():
        raise ValueError("weights must be >= 0")
    if len(all_weights) < MIN_TRAIN_EXAMPLES or all_weights.sum() <= 0:
        raise ValueError(f"the curated set must hold at least {MIN_TRAIN_EXAMPLES} examples with positive total weight, "
                         f"got {len(all_weights)}")
    return {"keep": keep, "weights": weights, "X_extra": X_extra, "y_extra": y_extra,
            "weights_extra": weights_extra}


def curation_metrics(pool: Any, keep: np.ndarray, n_extra: int) -> dict[str, float]:
    """How the kept set relates to the hidden corruption (computed here, never shown to curate)."""
    n = len(pool.y)
    kept = np.zeros(n, dtype=bool)
    kept[keep] = True
    noisy = pool.kind != 0
    return {
        "kept_fraction": float(kept.mean()),
        "extra_fraction": n_extra / n,
        "noise_in_kept": float(noisy[kept].mean()) if kept.any() else 0.0,
        "noise_removed": float((~kept[noisy]).mean()),
        "clean_removed": float((~kept[~noisy]).mean()),
        "duplicates_kept": float(kept[pool.duplicate].mean()),
    }


def evaluate(program_path: str, *, stage: str, seed: int, workdir: str, scale: str | None = None) -> dict:
    """Curate in a child process, train the fixed model here, score on held-out benchmarks."""
    train = _sibling("train")
    pool_mod = _sibling("pool")
    if (scale, stage) not in train.BUDGETS:
        raise ValueError(f"data_curation has no stage {stage!r} at scale {scale!r}; stages: quick, full; scales: gpu or none")
    check_source(program_path)
    pool, bench = pool_mod.build(int(seed))
    n = len(pool.y)

    start = time.monotonic()
    out = call_candidate(
        program_path,
        "curate",
        workdir=Path(workdir),
        timeout_s=CURATE_TIMEOUT_S[stage],
        inputs={"X": pool.X, "y": pool.y, "seed": int(seed)},
        threads=1,
    )
    curate_s = time.monotonic() - start
    cur = parse_curation(out, n)

    X = np.concatenate([pool.X[cur["keep"]].astype(np.float64), cur["X_extra"]])
    y = np.concatenate([pool.y[cur["keep"]], cur["y_extra"]])
    w = np.concatenate([cur["weights"], cur["weights_extra"]])
    p_clean, p_shift = train.train_and_predict(
        X, y, w, [bench.X_clean, bench.X_shifted], budget=train.BUDGETS[(scale, stage)], seed=int(seed), scale=scale
    )
    pred_clean, pred_shift = p_clean.argmax(1), p_shift.argmax(1)
    rare = np.isin(bench.y_clean, bench.rare_classes)
    recalls = [float((pred_clean[bench.y_clean == c] == c).mean()) for c in range(10)]
    acc = {
        "acc_clean": float((pred_clean == bench.y_clean).mean()),
        "acc_shifted": float((pred_shift == bench.y_clean).mean()),
        "acc_rare": float((pred_clean[rare] == bench.y_clean[rare]).mean()),
    }
    score = float(np.mean(list(acc.values())))
    metrics = {
        **acc,
        "macro_recall": float(np.mean(recalls)),
        "worst_class_recall": float(min(recalls)),
        **curation_metrics(pool, cur["keep"], len(cur["y_extra"])),
        "train_examples": int(len(y)),
        "curate_s": round(curate_s, 2),
    }
    feedback = (
        f"score {score:.4f} = mean(acc_clean {acc['acc_clean']:.3f}, acc_shifted {acc['acc_shifted']:.3f}, "
        f"acc_rare {acc['acc_rare']:.3f}); kept {metrics['kept_fraction']:.1%} of {n} pool examples "
        f"(+{len(cur['y_extra'])} extra); corrupted examples among those kept: {metrics['noise_in_kept']:.1%}, "
        f"corrupted examples removed: {metrics['noise_removed']:.1%}, clean examples removed: "
        f"{metrics['clean_removed']:.1%}; worst class recall {metrics['worst_class_recall']:.2f}"
    )
    return {"score": score, "metrics": metrics, "feedback": feedback}
