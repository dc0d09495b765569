"""Embedders: real all-MiniLM-L6-v2 retrieval, the lexical fallback, exact top-k."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from cognition import embeddings, retrieval
from cognition.embeddings import LexicalEmbedder, MiniLMEmbedder, get_embedder
from cognition.priors import import_priors
from cognition.retrieval import VectorIndex
from cognition.store import CognitionStore

PRIORS = """# Priors for a noisy-label classification task
- Confident learning estimates the joint distribution of given and true labels, then prunes
  the examples most likely to be mislabeled before training.
- Cosine learning-rate schedules with warmup train transformers more stably.
- Mixed precision (bf16) halves activation memory on recent GPUs.
- Gradient boosting on tabular data beats deep nets without heavy tuning.
- Data augmentation with random crops and flips improves image classifiers.
"""


@pytest.fixture
def fresh_embedder(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EVOFORGE_EMBEDDER", raising=False)
    embeddings.reset_embedder()
    yield
    embeddings.reset_embedder()


def test_real_minilm_finds_confident_learning_for_label_noise(
    tmp_path: Path, fresh_embedder: None
) -> None:
    emb = get_embedder()
    assert isinstance(emb, MiniLMEmbedder) and emb.kind == "minilm" and emb.dim == 384
    priors = tmp_path / "priors.md"
    priors.write_text(PRIORS)
    store = CognitionStore.open(tmp_path / "c.lmdb")
    try:
        assert import_priors(store, "noisy", priors) == 5
        assert import_priors(store, "noisy", priors) == 0  # idempotent
        hits = store.search_insights(
            "many training labels are wrong; how do I cope with label noise?", k=3, task="noisy"
        )
        assert hits[0][0].text.startswith("Confident learning")
        assert hits[0][0].source == "prior"
        assert hits[0][1] > hits[1][1]
    finally:
        store.close()


def test_broken_model_path_falls_back_to_lexical_with_one_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_embedder: None,
) -> None:
    monkeypatch.setattr(embeddings, "minilm_model_path", lambda: tmp_path / "no-model-here")
    with caplog.at_level(logging.WARNING, logger="evoforge.cognition.embeddings"):
        first = get_embedder()
        second = get_embedder()
    assert isinstance(first, LexicalEmbedder) and first is second
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "lexical" in warnings[0].getMessage()
    store = CognitionStore.open(tmp_path / "c.lmdb")
    try:
        (tmp_path / "p.md").write_text(PRIORS)
        import_priors(store, "noisy", tmp_path / "p.md")
        hits = store.search_insights("mixed precision bf16 memory", k=1)
        assert hits[0][0].text.startswith("Mixed precision")
    finally:
        store.close()


def test_env_var_forces_lexical(monkeypatch: pytest.MonkeyPatch, fresh_embedder: None) -> None:
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    emb = get_embedder()
    assert emb.kind == "lexical"
    vecs = emb.embed(["Label noise", "label NOISE", "something else entirely", ""])
    assert vecs.dtype == np.float32 and vecs.shape == (4, emb.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs[:3], axis=1), 1.0, rtol=1e-5)
    assert float(vecs[0] @ vecs[1]) == pytest.approx(1.0)
    assert float(vecs[0] @ vecs[2]) < 0.5
    assert not vecs[3].any()


def brute_force(mat: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None):
    scores = mat @ q
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if np.isfinite(scores[i])]


@pytest.mark.parametrize("n", [500, retrieval.DIRECT_MAX_ROWS * 5])
def test_vector_index_top_k_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    mat = rng.standard_normal((n, 64)).astype(np.float32)
    mat[n // 2 :] += 3 * mat[0]  # a dense cluster makes the int8 bounds work hard
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    tasks = [f"t{i % 3}" for i in range(n)]
    sources = ["prior" if i % 5 == 0 else "analyzer" for i in range(n)]
    index = VectorIndex(64, capacity=16)  # forces several regrowths
    for start in range(0, n, 777):
        sl = slice(start, start + 777)
        index.upsert([f"i{j}" for j in range(n)][sl], mat[sl], tasks[sl], sources[sl])
    assert len(index) == n
    task_arr, src_arr = np.array(tasks), np.array(sources)
    for trial in range(20):
        q = mat[trial * 7 % n] + 0.1 * rng.standard_normal(64).astype(np.float32)
        q /= np.linalg.norm(q)
        got = [int(i[1:]) for i, _ in index.search(q, 10)]
        assert got == brute_force(mat, q, 10)
        got = [int(i[1:]) for i, _ in index.search(q, 7, task="t1", source="analyzer")]
        assert got == brute_force(mat, q, 7, (task_arr == "t1") & (src_arr == "analyzer"))
    assert index.search(q, 5, task="unknown") == []


def test_vector_index_upsert_replaces_a_row() -> None:
    index = VectorIndex(4)
    index.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2], ["t", "t"], ["prior", "prior"])
    index.upsert(["a"], np.eye(4, dtype=np.float32)[2:3], ["u"], ["analyzer"])
    assert len(index) == 2
    assert index.search(np.eye(4, dtype=np.float32)[2], 1)[0][0] == "a"
    assert index.search(np.eye(4, dtype=np.float32)[0], 5, task="t") == [("b", 0.0)]
