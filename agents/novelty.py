"""Near-duplicate rejection before an evaluation is spent.

A candidate is a duplicate of an earlier one when
- its code is the same up to comments and whitespace (always; no embedder needed), or
- its embedding has cosine >= `threshold` with an earlier one AND (with `literal_aware`, the
  default) the two have the same multiset of non-identifier tokens (literals, operators,
  keywords): they differ only in names and statement order.

Why the second condition: all-MiniLM-L6-v2 gives cosine 1.0000 to two programs that differ in
one constant and 0.9998 to `+ x[1]` vs `- x[1]` (and it reads only the first 256 word pieces),
yet those are different experiments, exactly the ones the offline Researcher proposes. Renamed
variables and reordered statements with the same constants and operators are what is left for
the embedding to catch.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import re
import tokenize
from typing import Any

import numpy as np

_LITERAL = re.compile(r"""(?<![\w.])\d[\d_.eE+-]*|"[^"\n]*"|'[^'\n]*'""")


def normalise(code: str) -> str:
    """Code without comments, blank lines and trailing or repeated spaces."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "\n".join(
            " ".join(ln.split("#", 1)[0].split()) for ln in code.splitlines() if ln.strip()
        )
    out: list[str] = []
    for tok in toks:
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NEWLINE:
            out.append("\n")
        elif tok.type == tokenize.INDENT:
            out.append("<in>")
        elif tok.type == tokenize.DEDENT:
            out.append("<de>")
        else:
            out.append(tok.string)
    return " ".join(out)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _signature(code: str) -> bytes:
    """A digest of the sorted non-identifier tokens of `code` (a multiset: statement order may
    change). Kept as 16 bytes per candidate, since a long run remembers every candidate."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        kept = _LITERAL.findall(normalise(code))
    else:
        kept = [
            t.string
            for t in toks
            if t.type in (tokenize.NUMBER, tokenize.STRING, tokenize.OP)
            or (t.type == tokenize.NAME and keyword.iskeyword(t.string))
        ]
    return hashlib.blake2b("\x00".join(sorted(kept)).encode(), digest_size=16).digest()


class NoveltyFilter:
    """Remembers candidates' code; `is_duplicate` names the earlier near-identical one.

    Memory per remembered candidate: one exact digest, one 16-byte signature and one row of a
    float32 matrix that grows by doubling (no per-candidate array objects)."""

    def __init__(
        self, embedder: Any | None, threshold: float = 0.995, *, literal_aware: bool = True
    ):
        self.embedder = embedder
        self.threshold = threshold
        self.literal_aware = literal_aware
        self._exact: dict[str, str] = {}
        self._ids: list[str] = []
        self._signatures: list[bytes] = []
        self._matrix: np.ndarray | None = None  # rows [0, len(self._ids)) are in use

    def __len__(self) -> int:
        return len(self._exact)

    def _embed(self, code: str) -> np.ndarray:
        vec = np.asarray(self.embedder.embed([code]), dtype=np.float32)[0]  # type: ignore[union-attr]
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def _append_row(self, vec: np.ndarray) -> None:
        n = len(self._ids)
        if self._matrix is None:
            self._matrix = np.empty((64, vec.shape[0]), dtype=np.float32)
        elif n >= self._matrix.shape[0]:
            grown = np.empty((self._matrix.shape[0] * 2, self._matrix.shape[1]), dtype=np.float32)
            grown[:n] = self._matrix[:n]
            self._matrix = grown
        self._matrix[n] = vec

    def add(self, cid: str, code: str) -> None:
        key = _digest(normalise(code))
        if key in self._exact:
            return
        self._exact[key] = cid
        if self.embedder is not None:
            self._append_row(self._embed(code))
            self._ids.append(cid)
            self._signatures.append(_signature(code))

    def is_duplicate(self, code: str) -> str | None:
        """The id of an earlier candidate this code nearly repeats, or None."""
        hit = self._exact.get(_digest(normalise(code)))
        if hit is not None or self.embedder is None or not self._ids or self._matrix is None:
            return hit
        sims = self._matrix[: len(self._ids)] @ self._embed(code)
        sig = _signature(code) if self.literal_aware else b""
        for i in np.argsort(-sims):
            if sims[i] < self.threshold:
                break
            if not self.literal_aware or self._signatures[i] == sig:
                return self._ids[i]
        return None
