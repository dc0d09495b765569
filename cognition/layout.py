"""The on-disk layout of the Cognition Store: named databases, record kinds and their indexes.

Record databases map `id -> msgpack(record)`. Index databases map composite keys to an empty
value; every index key of a record is derived from the record alone (`index_keys`), so the
writer can replace a record's old keys by its new ones and `rebuild_indexes` can recreate all
of them from the record databases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cognition.codec import float_key, id_bytes, index_key, int_key, unpack
from cognition.records import Candidate, Evaluation, Event, Insight, LLMCall, Record, Run

STORE_SCHEMA_VERSION = 1
META_DB = "meta"
VECTORS_DB = "vectors"
SCHEMA_KEY = b"schema_version"
INSIGHTS_GEN_KEY = b"insights_generation"

IX_CAND_SCORE = "ix_run_candidates_by_score"  # run NUL score NUL? cid  (state done, score set)
IX_CAND_ITER = "ix_run_candidates_by_iteration"  # run NUL iteration cid
IX_CHILDREN = "ix_parent_children"  # parent NUL cid
IX_CAND_EVALS = "ix_candidate_evaluations"  # cid NUL created_at eid
IX_RUN_EVALS = "ix_run_evaluations"  # run NUL created_at eid
IX_TASK_INSIGHTS = "ix_task_insights"  # task NUL iid
IX_RUN_LLM = "ix_run_llm_calls"  # run NUL seq id
IX_RUN_EVENTS = "ix_run_events"  # run NUL created_at id

IndexKeys = Callable[[dict[str, Any]], list[tuple[str, bytes]]]


@dataclass(frozen=True)
class RecordKind:
    db: str
    model: type[Record]
    index_keys: IndexKeys


def _id(d: dict[str, Any]) -> bytes:
    return id_bytes(d["id"])


def _time(d: dict[str, Any]) -> bytes:
    return float_key(float(d.get("created_at") or 0.0))


def _candidate_keys(d: dict[str, Any]) -> list[tuple[str, bytes]]:
    run, cid = d["run_id"], _id(d)
    keys = [(IX_CAND_ITER, index_key(run, int_key(int(d["iteration"])), cid))]
    score = d.get("score")
    if d.get("state") == "done" and score is not None and not math.isnan(score):
        keys.append((IX_CAND_SCORE, index_key(run, float_key(float(score)), cid)))
    if d.get("parent_id"):
        keys.append((IX_CHILDREN, index_key(d["parent_id"], cid)))
    return keys


def _evaluation_keys(d: dict[str, Any]) -> list[tuple[str, bytes]]:
    eid = _id(d)
    return [
        (IX_CAND_EVALS, index_key(d["candidate_id"], _time(d), eid)),
        (IX_RUN_EVALS, index_key(d["run_id"], _time(d), eid)),
    ]


def _insight_keys(d: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(IX_TASK_INSIGHTS, index_key(d["task"], _id(d)))]


def _llm_call_keys(d: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(IX_RUN_LLM, index_key(d["run_id"], int_key(int(d["seq"])), _id(d)))]


def _event_keys(d: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(IX_RUN_EVENTS, index_key(d["run_id"], _time(d), _id(d)))]


KINDS: dict[type[Record], RecordKind] = {
    Run: RecordKind("runs", Run, lambda d: []),
    Candidate: RecordKind("candidates", Candidate, _candidate_keys),
    Evaluation: RecordKind("evaluations", Evaluation, _evaluation_keys),
    Insight: RecordKind("insights", Insight, _insight_keys),
    LLMCall: RecordKind("llm_calls", LLMCall, _llm_call_keys),
    Event: RecordKind("events", Event, _event_keys),
}
INDEX_DBS = (
    IX_CAND_SCORE,
    IX_CAND_ITER,
    IX_CHILDREN,
    IX_CAND_EVALS,
    IX_RUN_EVALS,
    IX_TASK_INSIGHTS,
    IX_RUN_LLM,
    IX_RUN_EVENTS,
)
RECORD_DBS = tuple(kind.db for kind in KINDS.values())
ALL_DBS = (META_DB, *RECORD_DBS, VECTORS_DB, *INDEX_DBS)


def vector_key(embedder_kind: str, insight_id: str) -> bytes:
    """Vectors are keyed by embedder kind too, so switching embedders never mixes spaces."""
    return embedder_kind.encode() + b"\x00" + id_bytes(insight_id)


def iter_values(txn: Any, db: Any) -> Iterator[tuple[bytes, bytes]]:
    with txn.cursor(db=db) as cur:
        yield from cur.iternext(keys=True, values=True)


def rebuild_indexes(txn: Any, dbs: dict[str, Any]) -> None:
    """Drop every index and recreate it from the record databases (used by migrations)."""
    for name in INDEX_DBS:
        txn.drop(dbs[name], delete=False)
    for kind in KINDS.values():
        for _key, raw in iter_values(txn, dbs[kind.db]):
            for ix, key in kind.index_keys(unpack(raw)):
                txn.put(key, b"", db=dbs[ix])
