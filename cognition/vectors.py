"""The in-memory insight vector index of one open store, kept in step with LMDB.

Loaded lazily on the first search; appended to after each commit of this process. A counter
in the meta db (bumped by every write that touches insights) tells when another process has
changed insights, and the index is then reloaded. Vectors missing for the current embedder
(written by another embedder, or by a v0 store) are computed and, when writable, persisted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cognition.codec import unpack
from cognition.embeddings import Embedder, get_embedder
from cognition.layout import INSIGHTS_GEN_KEY, META_DB, VECTORS_DB, vector_key
from cognition.retrieval import VectorIndex

if TYPE_CHECKING:
    from cognition.store import CognitionStore
    from cognition.writer import PendingVector

_EMBED_BATCH = 256


class InsightVectors:
    def __init__(self, store: CognitionStore) -> None:
        self._store = store
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._gen = -1
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    def search(
        self, vector: np.ndarray, k: int, *, task: str | None = None, source: str | None = None
    ) -> list[tuple[str, float]]:
        with self._lock:
            index = self._fresh_index()
            return index.search(vector, k, task=task, source=source)

    def after_commit(self, gen: int, pending: Sequence[PendingVector]) -> None:
        with self._lock:
            if self._index is None:
                return
            if self._gen != gen - 1:  # another process wrote in between: reload on next search
                self._index = None
                return
            if pending:
                self._index.upsert(
                    [p.insight_id for p in pending],
                    np.stack([p.vector for p in pending]),
                    [p.task for p in pending],
                    [p.source for p in pending],
                )
            self._gen = gen

    def _fresh_index(self) -> VectorIndex:
        with self._store._read() as (txn, dbs):
            gen = int(txn.get(INSIGHTS_GEN_KEY, db=dbs[META_DB]) or b"0")
            if self._index is not None and gen == self._gen:
                return self._index
            ids, tasks, sources, texts, rows = [], [], [], [], []
            kind = self.embedder.kind
            with txn.cursor(db=dbs["insights"]) as cur:
                for _key, raw in cur.iternext():
                    d = unpack(raw)
                    ids.append(d["id"])
                    tasks.append(d["task"])
                    sources.append(d["source"])
                    texts.append(d["text"])
                    rows.append(txn.get(vector_key(kind, d["id"]), db=dbs[VECTORS_DB]))
        dim = self.embedder.dim
        matrix = np.zeros((len(ids), dim), dtype=np.float32)
        missing = [j for j, raw in enumerate(rows) if raw is None or len(raw) != 4 * dim]
        for j, raw in enumerate(rows):
            if raw is not None and len(raw) == 4 * dim:
                matrix[j] = np.frombuffer(raw, dtype=np.float32)
        for start in range(0, len(missing), _EMBED_BATCH):
            batch = missing[start : start + _EMBED_BATCH]
            matrix[batch] = self.embedder.embed([texts[j] for j in batch])
        if missing and not self._store.readonly:
            self._store._persist_vectors(
                [(vector_key(kind, ids[j]), matrix[j].tobytes()) for j in missing]
            )
        index = VectorIndex(dim, capacity=max(1024, 2 * len(ids)))
        if ids:
            index.upsert(ids, matrix, tasks, sources)
        self._index, self._gen = index, gen
        return index
