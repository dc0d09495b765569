"""StoreWriter: buffers the operations of one `with store.write()` block.

Each `put_*` validates and encodes its record at call time (errors surface where they are
made) and appends an operation; the store applies all operations inside one LMDB write
transaction when the block exits. When the map is full the store grows it and replays the
same operations, so a block either commits whole or leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cognition.codec import dump, id_bytes, pack, unpack
from cognition.errors import StoreError
from cognition.layout import INSIGHTS_GEN_KEY, KINDS, META_DB, VECTORS_DB, vector_key
from cognition.records import Candidate, Evaluation, Event, Insight, LLMCall, Record, Run

if TYPE_CHECKING:
    from cognition.store import CognitionStore

DEDUPE_COSINE = 0.95
Op = Callable[[Any, dict[str, Any]], None]


@dataclass(frozen=True)
class PendingVector:
    insight_id: str
    vector: np.ndarray
    task: str
    source: str


class StoreWriter:
    """Only valid inside `with store.write() as w:`; nothing is visible before the block exits."""

    def __init__(self, store: CognitionStore) -> None:
        self._store = store
        self.ops: list[Op] = []
        self.vectors: list[PendingVector] = []
        self.touches_insights = False
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError(
                f"writer of {self._store.path} used after its `with store.write()` block ended; "
                "open a new block"
            )

    def _put(self, record: Record) -> dict[str, Any]:
        self._check_open()
        kind = KINDS[type(record)]
        data = dump(record)
        key = id_bytes(data["id"])
        new_keys = kind.index_keys(data)
        raw = pack(data)

        def op(txn: Any, dbs: dict[str, Any]) -> None:
            db = dbs[kind.db]
            old = txn.get(key, db=db)
            if old is not None:
                for ix, ikey in kind.index_keys(unpack(old)):
                    if (ix, ikey) not in new_keys:
                        txn.delete(ikey, db=dbs[ix])
            for ix, ikey in new_keys:
                txn.put(ikey, b"", db=dbs[ix])
            txn.put(key, raw, db=db)

        self.ops.append(op)
        return data

    def put_run(self, run: Run) -> None:
        self._put(run)

    def put_candidate(self, c: Candidate) -> None:
        """Insert or update; old index entries (score, state, parent) are replaced."""
        self._put(c)

    def put_evaluation(self, e: Evaluation) -> None:
        self._put(e)

    def put_llm_call(self, c: LLMCall) -> None:
        self._put(c)

    def put_event(self, e: Event) -> None:
        self._put(e)

    def put_blob(self, data: bytes) -> str:
        """Write the blob file now (fsynced); returns its sha256 hex digest."""
        self._check_open()
        return self._store.blobs.put(data)

    def put_insight(
        self, i: Insight, *, dedupe: bool = True, vector: np.ndarray | None = None
    ) -> Insight | None:
        """Store `i`, or, when an insight of the same task is a near-duplicate (cosine >= 0.95),
        merge `i`'s evidence into that one and return None. `vector` skips embedding (it must
        come from the store's embedder)."""
        self._check_open()
        vectors = self._store.vectors
        if vector is None:
            vector = vectors.embedder.embed([i.text])[0]
        vector = np.asarray(vector, dtype=np.float32).ravel()
        if vector.shape != (vectors.embedder.dim,):
            raise StoreError(
                f"insight {i.id}: vector has {vector.size} values, the {vectors.embedder.kind} "
                f"embedder makes {vectors.embedder.dim}; pass vector=None to embed the text"
            )
        if dedupe and self._store.get_insight(i.id) is None:
            twin = self._near_duplicate(i, vector)
            if twin is not None:
                self._bump(twin, i)
                return None
        data = self._put(i)
        vkey = vector_key(vectors.embedder.kind, i.id)
        vbytes = vector.tobytes()
        self.ops.append(lambda txn, dbs: txn.put(vkey, vbytes, db=dbs[VECTORS_DB]))
        self.vectors.append(PendingVector(i.id, vector, i.task, i.source))
        self.touches_insights = True
        return Insight.model_validate(data)

    def _near_duplicate(self, i: Insight, vector: np.ndarray) -> str | None:
        best_id, best = None, -1.0
        for hit_id, score in self._store.vectors.search(vector, 2, task=i.task):
            if hit_id != i.id and score > best:
                best_id, best = hit_id, score
        for pending in self.vectors:
            if pending.task == i.task and pending.insight_id != i.id:
                score = float(pending.vector @ vector)
                if score > best:
                    best_id, best = pending.insight_id, score
        return best_id if best >= DEDUPE_COSINE else None

    def _bump(self, target_id: str, new: Insight) -> None:
        key = id_bytes(target_id)
        evidence = list(new.evidence)
        confidence = new.confidence

        def op(txn: Any, dbs: dict[str, Any]) -> None:
            raw = txn.get(key, db=dbs["insights"])
            if raw is None:
                return
            data = unpack(raw)
            merged = list(data.get("evidence", []))
            merged += [cid for cid in evidence if cid not in merged]
            data["evidence"] = merged
            data["confidence"] = max(float(data.get("confidence", 0.0)), confidence)
            txn.put(key, pack(dump(Insight.model_validate(data))), db=dbs["insights"])

        self.ops.append(op)
        self.touches_insights = True

    def apply(self, txn: Any, dbs: dict[str, Any]) -> int | None:
        """Run every buffered operation in `txn`; returns the new insights generation if any."""
        for op in self.ops:
            op(txn, dbs)
        if not self.touches_insights:
            return None
        gen = int(txn.get(INSIGHTS_GEN_KEY, db=dbs[META_DB]) or b"0") + 1
        txn.put(INSIGHTS_GEN_KEY, str(gen).encode(), db=dbs[META_DB])
        return gen
