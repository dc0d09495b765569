"""Near-duplicate rejection: exact (comments/whitespace) always, embeddings literal- and operator-aware."""

from __future__ import annotations

from agents_support import SEED

from agents.novelty import NoveltyFilter, normalise

try:  # the store engineer's embedder; a hashed bag of words of our own otherwise
    from cognition.embeddings import LexicalEmbedder as _Embedder
except ImportError:  # pragma: no cover - only before cognition.embeddings exists
    import hashlib
    import re

    import numpy as np

    class _Embedder:  # type: ignore[no-redef]
        kind, dim = "test-bow", 256

        def embed(self, texts: list[str]) -> np.ndarray:
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for row, text in enumerate(texts):
                words = re.findall(r"[a-z0-9]+", text.lower())
                for feat in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
                    out[row, int(hashlib.md5(feat.encode()).hexdigest(), 16) % self.dim] += 1
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


REORDERED = SEED.replace("LR = 0.01\nSTEPS = 100\n", "STEPS = 100\nLR = 0.01\n")
NEW_LITERAL = SEED.replace("LR = 0.01", "LR = 0.02")
RENAMED = SEED.replace(
    "def shape(x):\n    return x[0] * 2.0 + x[1]", "def shape(v):\n    return v[0] * 2.0 + v[1]"
)


def test_exact_duplicates_ignore_comments_and_whitespace_without_embedder() -> None:
    f = NoveltyFilter(None)
    assert f.is_duplicate(SEED) is None
    f.add("cand-1", SEED)
    cosmetic = SEED.replace("THRESHOLD = 0.3", "THRESHOLD   =   0.3  # tuned later").replace(
        "\n\n\n", "\n\n"
    )
    assert f.is_duplicate(cosmetic) == "cand-1"
    assert f.is_duplicate(NEW_LITERAL) is None
    assert f.is_duplicate(REORDERED) is None  # without an embedder only exact copies count
    assert normalise("a = 1  # x\n\n\nb=2\n") == normalise("a=1\nb = 2")


def test_embedding_duplicates_are_literal_aware() -> None:
    f = NoveltyFilter(_Embedder(), threshold=0.9)
    f.add("cand-1", SEED)
    assert f.is_duplicate(REORDERED) == "cand-1"  # same constants, same words: a repeat
    assert f.is_duplicate(NEW_LITERAL) is None  # a new constant is a new experiment
    blind = NoveltyFilter(_Embedder(), threshold=0.9, literal_aware=False)
    blind.add("cand-1", SEED)
    assert blind.is_duplicate(NEW_LITERAL) == "cand-1"


def test_threshold_and_latest_match() -> None:
    strict = NoveltyFilter(_Embedder(), threshold=0.999)
    strict.add("cand-1", SEED)
    assert strict.is_duplicate(REORDERED) is None
    f = NoveltyFilter(_Embedder(), threshold=0.9)
    f.add("cand-1", SEED)
    f.add("cand-2", NEW_LITERAL)
    f.add("cand-2b", NEW_LITERAL + "\n# same code\n")  # already known: not added twice
    assert len(f) == 2
    assert (
        f.is_duplicate(NEW_LITERAL.replace("LR = 0.02\nSTEPS = 100\n", "STEPS = 100\nLR = 0.02\n"))
        == "cand-2"
    )
    assert f.is_duplicate(RENAMED) == "cand-1"  # only a name changed
    assert (
        f.is_duplicate(SEED.replace("* 2.0 + x[1]", "* 2.0 - x[1]")) is None
    )  # an operator changed
    assert f.is_duplicate("completely = 'different'\n") is None
