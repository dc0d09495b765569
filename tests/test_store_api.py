"""The Cognition Store's API on real LMDB files: round trips, indexes, atomicity, growth, schema."""

from __future__ import annotations

import json
from pathlib import Path

import lmdb
import pytest

from cognition import embeddings
from cognition.errors import RecordError, SchemaVersionError, StoreError
from cognition.layout import META_DB, SCHEMA_KEY
from cognition.records import Candidate, Evaluation, Event, Insight, LLMCall, Run
from cognition.store import CognitionStore


@pytest.fixture(autouse=True)
def lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    embeddings.reset_embedder()


@pytest.fixture
def store(tmp_path: Path):
    s = CognitionStore.open(tmp_path / "c.lmdb")
    yield s
    s.close()


def cand(run: str, it: int, score: float | None = None, state: str = "done", **kw) -> Candidate:
    return Candidate(
        id=f"cand-{run}-{it:04d}",
        run_id=run,
        task="t",
        iteration=it,
        code=f"x = {it}",
        state=state,
        score=score,
        **kw,
    )


def ev(c: Candidate, k: int, created_at: float = 0.0) -> Evaluation:
    return Evaluation(
        id=f"ev-{c.id}-{k}",
        candidate_id=c.id,
        run_id=c.run_id,
        stage="quick",
        seed=k,
        status="ok",
        score=c.score,
        created_at=created_at or 1000.0 + k,
    )


def test_round_trip_every_record_kind(store: CognitionStore) -> None:
    run = Run(id="run-a", task="t", task_dir="/tasks/t", config={"k": [1, 2]})
    c = cand("run-a", 0, 1.5, features={"len": 3.0})
    e = ev(c, 0)
    call = LLMCall(
        id="call-1", run_id="run-a", role="researcher", model="m", prompt=[{"a": 1}], response="r"
    )
    event = Event(id="event-1", run_id="run-a", kind="started", data={"x": 1})
    with store.write() as w:
        w.put_run(run)
        w.put_candidate(c)
        w.put_evaluation(e)
        w.put_llm_call(call)
        w.put_event(event)
    assert store.get_run("run-a") == run
    assert store.get_candidate(c.id) == c
    assert store.evaluations_of(c.id) == [e]
    assert store.llm_calls_of("run-a") == [call]
    assert store.events_of("run-a") == [event]
    assert store.get_run("missing") is None
    assert store.get_candidate("cand-run-a-00") == c  # unique prefix
    assert store.get_candidate("cand-") == c  # only one candidate: still unique


def test_ambiguous_prefix_finds_nothing(store: CognitionStore) -> None:
    with store.write() as w:
        w.put_candidate(cand("r", 1))
        w.put_candidate(cand("r", 2))
    assert store.get_candidate("cand-r-000") is None
    assert store.get_candidate("cand-r-0002").iteration == 2


def test_top_candidates_follow_updates(store: CognitionStore) -> None:
    with store.write() as w:
        for it, score in enumerate([3.0, -1.0, 7.5, 0.0, 2.0]):
            w.put_candidate(cand("r", it, score))
        w.put_candidate(cand("r", 9, None, state="evaluating"))
        w.put_candidate(cand("other", 0, 100.0))
    assert [c.score for c in store.top_candidates("r", 3)] == [7.5, 3.0, 2.0]
    assert [c.score for c in store.top_candidates("r", 2, "minimize")] == [-1.0, 0.0]
    with store.write() as w:
        w.put_candidate(cand("r", 2, -5.0))  # the best falls to the bottom
        w.put_candidate(cand("r", 9, 4.0))  # evaluating -> done enters the index
        w.put_candidate(cand("r", 0, 3.0, state="rejected"))  # rejected leaves it
    assert [c.iteration for c in store.top_candidates("r", 10)] == [9, 4, 3, 1, 2]
    assert [c.iteration for c in store.candidates_of_run("r")] == [0, 1, 2, 3, 4, 9]
    with pytest.raises(StoreError, match="direction"):
        store.top_candidates("r", 1, "up")


def test_children_and_evaluation_indexes(store: CognitionStore) -> None:
    parent = cand("r", 0, 1.0)
    kids = [cand("r", i, 1.0, parent_id=parent.id) for i in (1, 2)]
    with store.write() as w:
        w.put_candidate(parent)
        for k in kids:
            w.put_candidate(k)
            for s in (2, 1):
                w.put_evaluation(ev(k, s, created_at=2000.0 + s))
    assert [c.id for c in store.children_of(parent.id)] == [k.id for k in kids]
    assert [e.seed for e in store.evaluations_of(kids[0].id)] == [1, 2]  # by time
    assert len(store.evaluations_of_run("r")) == 4
    with store.write() as w:  # re-parenting moves the child
        w.put_candidate(kids[1].model_copy(update={"parent_id": kids[0].id}))
    assert [c.id for c in store.children_of(parent.id)] == [kids[0].id]
    assert [c.id for c in store.children_of(kids[0].id)] == [kids[1].id]


def test_llm_calls_come_back_in_seq_order(store: CognitionStore) -> None:
    with store.write() as w:
        for seq in (3, 1, 2, 10):
            w.put_llm_call(
                LLMCall(
                    id=f"call-z{seq}",
                    run_id="r",
                    role="analyzer",
                    model="m",
                    prompt=[],
                    response=str(seq),
                    seq=seq,
                )
            )
    assert [c.seq for c in store.llm_calls_of("r")] == [1, 2, 3, 10]


def test_exception_inside_write_block_leaves_nothing(store: CognitionStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.write() as w:
            w.put_run(Run(id="r", task="t", task_dir="."))
            w.put_candidate(cand("r", 0, 1.0))
            w.put_insight(Insight(id="i-1", text="x", task="t", source="analyzer"))
            raise RuntimeError("boom")
    assert store.get_run("r") is None
    assert store.candidates_of_run("r") == []
    assert store.insights() == []
    assert store.stats()["entries"]["ix_run_candidates_by_score"] == 0
    with pytest.raises(StoreError, match="after its"):
        w.put_run(Run(id="r2", task="t", task_dir="."))


def test_invalid_record_fails_at_the_put(store: CognitionStore) -> None:
    c = cand("r", 0, 1.0)
    c.state = "bogus"  # type: ignore[assignment]  (no validation on assignment)
    with pytest.raises(RecordError, match="cand-r-0000"):
        with store.write() as w:
            w.put_candidate(c)
    with pytest.raises(RecordError, match="NUL"):
        with store.write() as w:
            w.put_run(Run(id="bad\x00id", task="t", task_dir="."))
    assert store.candidates_of_run("r") == []


def test_full_map_grows_and_commits_everything(tmp_path: Path) -> None:
    store = CognitionStore.open(tmp_path / "tiny.lmdb", map_size=64 * 1024)
    try:
        for block in range(20):
            with store.write() as w:
                for it in range(block * 25, block * 25 + 25):
                    c = cand("r", it, float(it)).model_copy(update={"code": "y" * 3000})
                    w.put_candidate(c)
                    w.put_evaluation(ev(c, 0))
        assert store.stats()["map_size"] > 64 * 1024
        got = store.candidates_of_run("r")
        assert [c.iteration for c in got] == list(range(500))
        assert store.top_candidates("r", 1)[0].iteration == 499
        assert len(store.evaluations_of_run("r")) == 500
    finally:
        store.close()


def test_insight_dedupe_bumps_evidence(store: CognitionStore) -> None:
    first = Insight(
        id="i-1",
        text="Smaller learning rate helps",
        task="t",
        source="analyzer",
        evidence=["c1"],
        confidence=0.4,
    )
    with store.write() as w:
        assert w.put_insight(first) is not None
    with store.write() as w:
        twin = first.model_copy(update={"id": "i-2", "evidence": ["c2", "c1"], "confidence": 0.9})
        assert w.put_insight(twin) is None
        other_task = twin.model_copy(update={"id": "i-3", "task": "u"})
        assert w.put_insight(other_task) is not None
        # a near-duplicate of an insight buffered in the same block is caught too
        assert w.put_insight(other_task.model_copy(update={"id": "i-4"})) is None
    kept = store.insights(task="t")
    assert [(i.id, i.evidence, i.confidence) for i in kept] == [("i-1", ["c1", "c2"], 0.9)]
    assert [i.id for i in store.insights(task="u")] == ["i-3"]
    with store.write() as w:
        assert w.put_insight(twin, dedupe=False) is not None
    assert len(store.insights(task="t")) == 2


def test_search_filters_by_task_and_source(store: CognitionStore) -> None:
    with store.write() as w:
        w.put_insight(Insight(id="a", text="vectorise the inner loop", task="t", source="prior"))
        w.put_insight(
            Insight(
                id="b",
                text="vectorise the inner loop with numpy",
                task="u",
                source="analyzer",
                run_id="run-old",
            )
        )
        w.put_insight(
            Insight(id="c", text="cache the distance matrix", task="t", source="analyzer")
        )
    hits = store.search_insights("vectorise loop", k=5)
    assert {i.id for i, _ in hits[:2]} == {"a", "b"}
    assert [i.id for i, _ in store.search_insights("vectorise loop", task="u")] == ["b"]
    assert store.search_insights("vectorise loop", task="u")[0][0].run_id == "run-old"
    assert [i.id for i, _ in store.search_insights("x", task="t", source="analyzer")] == ["c"]
    assert store.search_insights("x", task="nope") == []
    assert [i.id for i in store.insights(source="prior")] == ["a"]


def test_blobs_are_content_addressed(store: CognitionStore) -> None:
    with store.write() as w:
        digest = w.put_blob(b"log line\n" * 1000)
    assert store.get_blob(digest) == b"log line\n" * 1000
    assert (store.path / "blobs" / digest[:2] / digest).is_file()
    with pytest.raises(StoreError, match="not found"):
        store.get_blob("0" * 64)
    with pytest.raises(StoreError, match="sha256"):
        store.get_blob("../../etc/passwd")


def test_open_is_shared_and_reference_counted(tmp_path: Path) -> None:
    a = CognitionStore.open(tmp_path / "s.lmdb")
    b = CognitionStore.open(str(tmp_path / "s.lmdb"), readonly=True)
    assert a is b
    b.close()
    with a.write() as w:  # still open: one reference left
        w.put_run(Run(id="r", task="t", task_dir="."))
    a.close()
    with pytest.raises(StoreError, match="closed"):
        a.get_run("r")
    c = CognitionStore.open(tmp_path / "s.lmdb", readonly=True)
    assert c is not a and c.get_run("r") is not None
    with pytest.raises(StoreError, match="read-only"):
        with c.write():
            pass
    d = CognitionStore.open(tmp_path / "s.lmdb")  # upgrades the shared instance in place
    assert d is c and not d.readonly
    with d.write() as w:
        w.put_run(Run(id="r2", task="t", task_dir="."))
    d.close()
    c.close()


def test_readonly_open_of_missing_store_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="evolve run"):
        CognitionStore.open(tmp_path / "nothing.lmdb", readonly=True)


def test_backup_is_a_working_compacted_copy(store: CognitionStore, tmp_path: Path) -> None:
    with store.write() as w:
        w.put_run(Run(id="r", task="t", task_dir="."))
        digest = w.put_blob(b"artifact")
        for it in range(50):
            w.put_candidate(cand("r", it, float(it)))
    store.backup(tmp_path / "bk")
    copy = CognitionStore.open(tmp_path / "bk", readonly=True)
    try:
        assert len(copy.candidates_of_run("r")) == 50
        assert copy.get_blob(digest) == b"artifact"
    finally:
        copy.close()
    with pytest.raises(StoreError, match="already holds"):
        store.backup(tmp_path / "bk")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.lmdb"
    CognitionStore.open(path).close()
    env = lmdb.open(str(path), max_dbs=32)
    with env.begin(write=True) as txn:
        txn.put(SCHEMA_KEY, b"7", db=env.open_db(META_DB.encode(), txn=txn))
    env.close()
    for readonly in (False, True):
        with pytest.raises(SchemaVersionError, match="schema v7.*up to v1: upgrade evoforge"):
            CognitionStore.open(path, readonly=readonly)


def test_v0_store_is_migrated(tmp_path: Path) -> None:
    """A prototype (v0) store: JSON values, no meta, no indexes."""
    path = tmp_path / "old.lmdb"
    env = lmdb.open(str(path), max_dbs=8)
    c0 = cand("r", 0, 1.0)
    c1 = cand("r", 1, 5.0, parent_id=c0.id)
    with env.begin(write=True) as txn:

        def put(db: str, rec) -> None:
            data = rec.model_dump(mode="json")
            data.pop("v")
            txn.put(
                rec.id.encode(), json.dumps(data).encode(), db=env.open_db(db.encode(), txn=txn)
            )

        put("runs", Run(id="r", task="t", task_dir="."))
        put("candidates", c0)
        put("candidates", c1)
        put("evaluations", ev(c1, 0))
        put(
            "insights",
            Insight(
                id="i-old", text="old lesson about caching", task="t", source="analyzer", run_id="r"
            ),
        )
    env.close()
    with pytest.raises(StoreError, match="needs migrating"):
        CognitionStore.open(path, readonly=True)
    store = CognitionStore.open(path)
    try:
        assert store.stats()["entries"]["meta"] >= 1
        assert [c.id for c in store.top_candidates("r", 5)] == [c1.id, c0.id]
        assert [c.id for c in store.children_of(c0.id)] == [c1.id]
        assert [e.candidate_id for e in store.evaluations_of(c1.id)] == [c1.id]
        assert store.search_insights("caching lesson", task="t")[0][0].id == "i-old"
    finally:
        store.close()
    ro = CognitionStore.open(path, readonly=True)  # migrated: read-only open works now
    try:
        assert ro.get_run("r") is not None
    finally:
        ro.close()
