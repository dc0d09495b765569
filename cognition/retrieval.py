"""Exact top-k cosine search over insight vectors held in memory, with task/source filters.

Rows are L2-normalised float32, so cosine is a dot product. Small or heavily filtered sets are
scored directly. Large sets take a two-step path that stays exact: an int8 copy of the matrix
gives every row an approximate score with a proven error bound; only rows whose upper bound
reaches the k-th best lower bound are rescored in float32. The int8 product runs through
`torch._int_mm` when torch is present (4x less memory traffic than float32), else numpy.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

DIRECT_MAX_ROWS = 8192  # at or below this many eligible rows, plain float32 scoring wins
_FLOAT_SLACK = 1e-5  # covers float32 rounding between the two scoring paths


class VectorIndex:
    """Growable row store: ids, float32 rows, int8 rows + scales, task and source codes."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._n = 0
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        self._codes: dict[str, dict[str, int]] = {"task": {}, "source": {}}
        self._lock = threading.RLock()
        self._alloc(max(capacity, 16))

    def _alloc(self, cap: int) -> None:
        old = self._n
        f32 = np.zeros((cap, self.dim), dtype=np.float32)
        i8 = np.zeros((cap, self.dim), dtype=np.int8)
        scale = np.zeros(cap, dtype=np.float32)
        l1 = np.zeros(cap, dtype=np.float32)
        task = np.full(cap, -1, dtype=np.int32)
        source = np.full(cap, -1, dtype=np.int32)
        if old:
            f32[:old], i8[:old] = self._f32[:old], self._i8[:old]
            scale[:old], l1[:old] = self._scale[:old], self._l1[:old]
            task[:old], source[:old] = self._task[:old], self._source[:old]
        self._f32, self._i8, self._scale, self._l1 = f32, i8, scale, l1
        self._task, self._source = task, source

    def __len__(self) -> int:
        return self._n

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._row_of

    def _code(self, field: str, value: str) -> int:
        table = self._codes[field]
        return table.setdefault(value, len(table))

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        tasks: Sequence[str],
        sources: Sequence[str],
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            rows = np.empty(len(ids), dtype=np.int64)
            for j, item_id in enumerate(ids):
                row = self._row_of.get(item_id)
                if row is None:
                    if self._n == len(self._f32):
                        self._alloc(2 * len(self._f32))
                    row = self._n
                    self._n += 1
                    self._ids.append(item_id)
                    self._row_of[item_id] = row
                rows[j] = row
                self._task[row] = self._code("task", tasks[j])
                self._source[row] = self._code("source", sources[j])
            self._f32[rows] = vectors
            peak = np.abs(vectors).max(axis=1)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            quant = np.rint(vectors / scale[:, None]).clip(-127, 127).astype(np.int8)
            self._i8[rows] = quant
            self._scale[rows] = scale
            self._l1[rows] = np.abs(quant).sum(axis=1, dtype=np.float32) * scale

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        task: str | None = None,
        source: str | None = None,
    ) -> list[tuple[str, float]]:
        """The k rows most similar to `query` (cosine), best first, among rows matching filters."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        with self._lock:
            n = self._n
            if n == 0 or k <= 0:
                return []
            mask = self._mask(n, task, source)
            if mask is False:
                return []
            if mask is not None:
                rows = np.flatnonzero(mask)
                if rows.size == 0:
                    return []
                if rows.size <= DIRECT_MAX_ROWS and rows.size * 4 < n:  # sparse: gather
                    return self._top(rows, self._f32[rows] @ q, k)
            if n <= DIRECT_MAX_ROWS:  # small: score all rows in place, no gather copy
                scores = self._f32[:n] @ q
                if mask is None:
                    return self._top(np.arange(n), scores, k)
                return self._top(rows, scores[rows], k)
            return self._search_bounded(q, n, k, mask)

    def _mask(self, n: int, task: str | None, source: str | None) -> np.ndarray | None | bool:
        mask: np.ndarray | None = None
        for field, value, codes in (("task", task, self._task), ("source", source, self._source)):
            if value is None:
                continue
            code = self._codes[field].get(value)
            if code is None:
                return False
            hit = codes[:n] == code
            mask = hit if mask is None else mask & hit
        return mask

    def _search_bounded(
        self, q: np.ndarray, n: int, k: int, mask: np.ndarray | None
    ) -> list[tuple[str, float]]:
        peak = float(np.abs(q).max())
        q_scale = peak / 127.0 if peak > 0 else 1.0
        q8 = np.rint(q / q_scale).clip(-127, 127).astype(np.int8)
        approx = _int8_scores(self._i8[:n], q8).astype(np.float32)
        approx *= self._scale[:n] * np.float32(q_scale)
        # |q.x - approx| <= |q|_1 * s_x / 2 + s_q * |x_hat|_1 / 2  (rounding of both sides)
        bound = self._scale[:n] * np.float32(np.abs(q).sum() / 2.0)
        bound += self._l1[:n] * np.float32(q_scale / 2.0)
        bound += _FLOAT_SLACK
        lower = approx - bound
        upper = approx + bound
        if mask is not None:
            lower[~mask] = -np.inf
            upper[~mask] = -np.inf
            eligible = int(mask.sum())
        else:
            eligible = n
        kk = min(k, eligible)
        threshold = np.partition(lower, n - kk)[n - kk]
        rows = np.flatnonzero(upper >= threshold)
        return self._top(rows, self._f32[rows] @ q, k)

    def _top(self, rows: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        if rows.size > k:
            part = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[part], scores[part]
        order = np.argsort(-scores, kind="stable")
        return [(self._ids[int(rows[i])], float(scores[i])) for i in order]


_torch_int_mm: object | None = None


def _int8_scores(mat: np.ndarray, q8: np.ndarray) -> np.ndarray:
    """int32 dot products of every int8 row with the int8 query."""
    global _torch_int_mm
    if _torch_int_mm is None:
        try:
            import torch

            probe = torch.zeros((16, mat.shape[1]), dtype=torch.int8)
            torch._int_mm(probe, torch.zeros((mat.shape[1], 8), dtype=torch.int8))
            _torch_int_mm = torch
        except Exception:  # no torch, or no CPU int8 kernel: numpy below is exact, only slower
            _torch_int_mm = False
    if _torch_int_mm:
        torch = _torch_int_mm
        rhs = torch.from_numpy(np.repeat(q8[:, None], 8, axis=1))  # kernel wants 8 columns
        return torch._int_mm(torch.from_numpy(mat), rhs)[:, 0].numpy()  # type: ignore[attr-defined]
    return mat.astype(np.int32) @ q8.astype(np.int32)
