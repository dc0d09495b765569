"""CognitionStore: one LMDB environment holding runs, candidates, evaluations, insights,
insight vectors, LLM calls and events, with the indexes the evolution loop reads.

    store = CognitionStore.open(".evoforge/cognition.lmdb")
    with store.write() as w:          # one durable LMDB transaction
        w.put_candidate(c); w.put_evaluation(e); w.put_insight(i)
    best = store.top_candidates(run_id, k=5)

`open` returns one shared instance per path per process (LMDB forbids opening an environment
twice in a process); `close` releases one reference. Other processes may open the same path
read-only while a writer commits: each read method runs in its own read transaction, so it
sees one consistent snapshot.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from cognition.blobs import BlobStore
from cognition.codec import decode, decode_many, id_bytes, prefix_of
from cognition.errors import SchemaVersionError, StoreError
from cognition.layout import (
    ALL_DBS,
    IX_CAND_EVALS,
    IX_CAND_ITER,
    IX_CAND_SCORE,
    IX_CHILDREN,
    IX_RUN_EVALS,
    IX_RUN_EVENTS,
    IX_RUN_LLM,
    IX_TASK_INSIGHTS,
    META_DB,
    RECORD_DBS,
    SCHEMA_KEY,
    STORE_SCHEMA_VERSION,
    VECTORS_DB,
    iter_values,
)
from cognition.migrations import MIGRATIONS
from cognition.records import Candidate, Evaluation, Event, Insight, LLMCall, Record, Run
from cognition.vectors import InsightVectors
from cognition.writer import StoreWriter

STORE_ENV = "EVOFORGE_STORE"
DEFAULT_STORE_PATH = Path(".evoforge/cognition.lmdb")
MAX_MAP_GROWTHS = 16
_SKIP = 8  # bytes of the sortable part (score, iteration, time, seq) before an id in index keys


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE_PATH)


class _Gate:
    """Shared/exclusive lock: transactions hold it shared, a map resize holds it exclusive."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._shared:
                self._cond.wait()
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


_registry: dict[str, CognitionStore] = {}
_registry_lock = threading.Lock()


class CognitionStore:
    path: Path

    def __init__(self, path: Path, *, readonly: bool, map_size: int, sync: bool = True) -> None:
        """Use `CognitionStore.open`; this constructor does not share instances."""
        self.path = path
        self.readonly = readonly
        self.sync = sync
        self.blobs = BlobStore(path / "blobs")
        self.vectors = InsightVectors(self)
        self._gate = _Gate()
        self._write_lock = threading.Lock()
        self._refs = 1
        self._pid = os.getpid()
        self._closed = False
        self._env, self._dbs = self._open_env(map_size)

    # ---- lifecycle -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        readonly: bool = False,
        map_size: int = 1 << 30,
        sync: bool = True,
    ) -> CognitionStore:
        """The process-wide instance for `path`. `sync=False` skips the fsync of each commit:
        still atomic and safe against a killed process, but an OS crash or power loss may undo
        the last commits (the first opener of a path in a process decides)."""
        real = os.path.realpath(os.fspath(path))
        with _registry_lock:
            store = _registry.get(real)
            if store is not None and (store._closed or store._pid != os.getpid()):
                store = None  # closed, or inherited through fork: never reuse an env after fork
            if store is None:
                store = cls(Path(real), readonly=readonly, map_size=map_size, sync=sync)
                _registry[real] = store
                return store
            if store.readonly and not readonly:
                store._reopen_writable(map_size)
            store._refs += 1
            return store

    def close(self) -> None:
        """Release one reference; the environment closes when the last one is released."""
        with _registry_lock:
            if self._closed:
                return
            self._refs -= 1
            if self._refs > 0:
                return
            if _registry.get(str(self.path)) is self:
                del _registry[str(self.path)]
            with self._gate.exclusive():
                self._env.close()
                self._closed = True

    def __enter__(self) -> CognitionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_env(self, map_size: int) -> tuple[Any, dict[str, Any]]:
        if self.readonly:
            if not (self.path / "data.mdb").exists():
                raise StoreError(
                    f"no cognition store at {self.path}: run `evolve run TASK` to create one, "
                    f"or point --store / ${STORE_ENV} at an existing store"
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            env = lmdb.open(
                str(self.path),
                map_size=map_size,
                subdir=True,
                readonly=self.readonly,
                max_dbs=len(ALL_DBS) + 8,
                max_readers=512,
                lock=True,
                sync=self.sync,
                metasync=self.sync,
                meminit=False,
            )
        except lmdb.Error as exc:
            raise StoreError(f"cannot open cognition store at {self.path}: {exc}") from exc
        try:
            return env, self._prepare(env)
        except BaseException:
            env.close()
            raise

    def _prepare(self, env: Any) -> dict[str, Any]:
        """Check the schema version, migrate an older store, open every named database."""
        with env.begin() as txn:
            names = set(txn.cursor().iternext(values=False))
        version = self._version_on_disk(env, names)
        if version > STORE_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store at {self.path} was written by schema v{version}, this evoforge reads up "
                f"to v{STORE_SCHEMA_VERSION}: upgrade evoforge"
            )
        if self.readonly:
            if version < STORE_SCHEMA_VERSION:
                raise StoreError(
                    f"store at {self.path} has schema v{version} and needs migrating to "
                    f"v{STORE_SCHEMA_VERSION}: run `evolve store migrate` (opens it read-write)"
                )
            missing = [n for n in ALL_DBS if n.encode() not in names]
            if missing:
                raise StoreError(f"store at {self.path} lacks databases {missing}: migrate it")
            return {n: env.open_db(n.encode(), create=False) for n in ALL_DBS}
        dbs = {n: env.open_db(n.encode(), create=True) for n in ALL_DBS}
        with env.begin(write=True) as txn:
            for v in range(version, STORE_SCHEMA_VERSION):
                MIGRATIONS[v](txn, dbs)
            current = str(STORE_SCHEMA_VERSION).encode()
            if txn.get(SCHEMA_KEY, db=dbs[META_DB]) != current:
                txn.put(SCHEMA_KEY, current, db=dbs[META_DB])
        return dbs

    def _version_on_disk(self, env: Any, names: set[bytes]) -> int:
        if META_DB.encode() in names:
            meta = env.open_db(META_DB.encode(), create=False)
            with env.begin() as txn:
                raw = txn.get(SCHEMA_KEY, db=meta)
            if raw is not None:
                return int(raw)
        if any(n.encode() in names for n in RECORD_DBS):
            return 0  # record databases without a version: the v0 prototype layout
        return STORE_SCHEMA_VERSION  # a fresh store is created at the current version

    def _reopen_writable(self, map_size: int) -> None:
        with self._gate.exclusive():
            self._env.close()
            self.readonly = False
            self._env, self._dbs = self._open_env(map_size)

    # ---- transactions --------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise StoreError(f"store at {self.path} is closed: call CognitionStore.open again")

    def _begin(self, write: bool) -> Any:
        try:
            return self._env.begin(write=write)
        except lmdb.MapResizedError:
            return None

    @contextmanager
    def _read(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        self._require_open()
        while True:
            with self._gate.shared():
                txn = self._begin(write=False)
                if txn is not None:
                    try:
                        yield txn, self._dbs
                    finally:
                        txn.abort()
                    return
            self._adopt_map_size()

    def _adopt_map_size(self) -> None:
        """Another process grew the map beyond ours: adopt its size (LMDB's documented fix)."""
        with self._gate.exclusive():
            self._env.set_mapsize(0)

    @contextmanager
    def write(self) -> Iterator[StoreWriter]:
        """Everything done on the writer inside the block commits as one durable transaction."""
        if self.readonly:
            raise StoreError(f"store at {self.path} is open read-only: open it without readonly")
        self._require_open()
        writer = StoreWriter(self)
        try:
            yield writer
        finally:
            writer.closed = True
        if writer.ops:
            self._commit(writer)

    def _commit(self, writer: StoreWriter) -> None:
        gen = self._commit_ops(writer)
        if gen is not None:  # outside the write lock: a search may be persisting vectors
            self.vectors.after_commit(gen, writer.vectors)

    def _commit_ops(self, writer: StoreWriter) -> int | None:
        with self._write_lock:
            for _ in range(MAX_MAP_GROWTHS):
                with self._gate.shared():
                    txn = self._begin(write=True)
                    if txn is not None:
                        try:
                            gen = writer.apply(txn, self._dbs)
                            txn.commit()
                        except lmdb.MapFullError:
                            txn.abort()
                        except lmdb.Error as exc:
                            txn.abort()
                            # A full filesystem shows as EIO from mdb_txn_commit as often as ENOSPC.
                            if _disk_full(self.path):
                                raise StoreError(
                                    f"store at {self.path}: no space left on device ({exc}); nothing "
                                    "of this write was committed: free disk space and resume"
                                ) from OSError(errno.ENOSPC, "No space left on device")
                            raise
                        except BaseException:
                            txn.abort()
                            raise
                        else:
                            return gen
                if txn is None:
                    self._adopt_map_size()
                else:
                    self._grow_map()
        raise StoreError(
            f"store at {self.path}: a write block did not fit after {MAX_MAP_GROWTHS} map "
            "doublings; write smaller blocks or free disk space"
        )

    def _grow_map(self) -> None:
        with self._gate.exclusive():
            self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _persist_vectors(self, items: list[tuple[bytes, bytes]]) -> None:
        writer = StoreWriter(self)
        writer.ops.append(lambda txn, dbs: [txn.put(k, v, db=dbs[VECTORS_DB]) for k, v in items])
        self._commit_ops(writer)

    # ---- reads ---------------------------------------------------------------------------

    def _get(self, txn: Any, model: type[Record], db: str, item_id: str) -> Any:
        raw = txn.get(id_bytes(item_id), db=self._dbs[db])
        return None if raw is None else decode(model, raw, where=f"{self.path}:{db}/{item_id}")

    def _ids(self, txn: Any, ix: str, owner: str, skip: int, reverse: bool = False) -> list[str]:
        prefix = prefix_of(owner)
        out: list[str] = []
        with txn.cursor(db=self._dbs[ix]) as cur:
            if reverse:
                after = prefix[:-1] + b"\x01"
                found = cur.prev() if cur.set_range(after) else cur.last()
                keys = cur.iterprev(values=False) if found else iter(())
            else:
                keys = cur.iternext(values=False) if cur.set_range(prefix) else iter(())
            for key in keys:
                if not key.startswith(prefix):
                    break
                out.append(key[len(prefix) + skip :].decode())
        return out

    def _many(self, txn: Any, model: type[Record], db: str, ids: list[str]) -> list[Any]:
        """Records by id in one batch validation (a third faster than one by one)."""
        handle = self._dbs[db]
        raws = [r for r in (txn.get(id_bytes(i), db=handle) for i in ids) if r is not None]
        return decode_many(model, raws, where=f"{self.path}:{db}")

    def get_run(self, run_id: str) -> Run | None:
        with self._read() as (txn, _):
            return self._get(txn, Run, "runs", run_id)

    def list_runs(self, task: str | None = None) -> list[Run]:
        """Runs, newest first."""
        with self._read() as (txn, dbs):
            runs = [
                decode(Run, raw, where=f"{self.path}:runs/{key.decode()}")
                for key, raw in iter_values(txn, dbs["runs"])
            ]
        runs = [r for r in runs if task is None or r.task == task]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def get_candidate(self, cid: str) -> Candidate | None:
        """By id, or by a unique id prefix (as `evolve show` accepts)."""
        with self._read() as (txn, dbs):
            found = self._get(txn, Candidate, "candidates", cid)
            if found is not None or not cid:
                return found
            prefix = cid.encode()
            with txn.cursor(db=dbs["candidates"]) as cur:
                if not cur.set_range(prefix):
                    return None
                matches = []
                for key in cur.iternext(values=False):
                    if not key.startswith(prefix) or len(matches) > 1:
                        break
                    matches.append(key.decode())
            if len(matches) != 1:
                return None
            return self._get(txn, Candidate, "candidates", matches[0])

    def candidates_of_run(self, run_id: str) -> list[Candidate]:
        """All candidates of a run, in iteration order."""
        with self._read() as (txn, _):
            ids = self._ids(txn, IX_CAND_ITER, run_id, _SKIP)
            return self._many(txn, Candidate, "candidates", ids)

    def top_candidates(
        self, run_id: str, k: int = 10, direction: str = "maximize"
    ) -> list[Candidate]:
        """The k best scored candidates (state done, score set), best first."""
        if direction not in ("maximize", "minimize"):
            raise StoreError(f"direction {direction!r} is unknown: use 'maximize' or 'minimize'")
        with self._read() as (txn, dbs):
            prefix = prefix_of(run_id)
            ids: list[str] = []
            with txn.cursor(db=dbs[IX_CAND_SCORE]) as cur:
                if direction == "maximize":
                    found = cur.prev() if cur.set_range(prefix[:-1] + b"\x01") else cur.last()
                    keys = cur.iterprev(values=False) if found else iter(())
                else:
                    keys = cur.iternext(values=False) if cur.set_range(prefix) else iter(())
                for key in keys:
                    if not key.startswith(prefix) or len(ids) >= k:
                        break
                    ids.append(key[len(prefix) + _SKIP :].decode())
            return self._many(txn, Candidate, "candidates", ids)

    def children_of(self, cid: str) -> list[Candidate]:
        with self._read() as (txn, _):
            return self._many(txn, Candidate, "candidates", self._ids(txn, IX_CHILDREN, cid, 0))

    def evaluations_of(self, cid: str) -> list[Evaluation]:
        """Evaluations of one candidate, oldest first."""
        with self._read() as (txn, _):
            ids = self._ids(txn, IX_CAND_EVALS, cid, _SKIP)
            return self._many(txn, Evaluation, "evaluations", ids)

    def evaluations_of_run(self, run_id: str) -> list[Evaluation]:
        with self._read() as (txn, _):
            ids = self._ids(txn, IX_RUN_EVALS, run_id, _SKIP)
            return self._many(txn, Evaluation, "evaluations", ids)

    def get_insight(self, iid: str) -> Insight | None:
        with self._read() as (txn, _):
            return self._get(txn, Insight, "insights", iid)

    def insights(self, task: str | None = None, source: str | None = None) -> list[Insight]:
        with self._read() as (txn, dbs):
            if task is not None:
                found = self._many(
                    txn, Insight, "insights", self._ids(txn, IX_TASK_INSIGHTS, task, 0)
                )
            else:
                found = [
                    decode(Insight, raw, where=f"{self.path}:insights/{key.decode()}")
                    for key, raw in iter_values(txn, dbs["insights"])
                ]
        found = [i for i in found if source is None or i.source == source]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    def search_insights(
        self, query: str, k: int = 5, *, task: str | None = None, source: str | None = None
    ) -> list[tuple[Insight, float]]:
        """Insights nearest to `query` by cosine, best first; `run_id` of each is provenance."""
        vector = self.vectors.embedder.embed([query])[0]
        return self.search_insights_by_vector(vector, k, task=task, source=source)

    def search_insights_by_vector(
        self, vector: Any, k: int = 5, *, task: str | None = None, source: str | None = None
    ) -> list[tuple[Insight, float]]:
        hits = self.vectors.search(vector, k, task=task, source=source)
        with self._read() as (txn, _):
            out = [(self._get(txn, Insight, "insights", i), score) for i, score in hits]
        return [(ins, score) for ins, score in out if ins is not None]

    def llm_calls_of(self, run_id: str) -> list[LLMCall]:
        """LLM calls of a run in `seq` order (what replay needs)."""
        with self._read() as (txn, _):
            return self._many(txn, LLMCall, "llm_calls", self._ids(txn, IX_RUN_LLM, run_id, _SKIP))

    def events_of(self, run_id: str) -> list[Event]:
        with self._read() as (txn, _):
            return self._many(txn, Event, "events", self._ids(txn, IX_RUN_EVENTS, run_id, _SKIP))

    def get_blob(self, digest: str) -> bytes:
        return self.blobs.get(digest)

    def put_blob(self, data: bytes) -> str:
        """A blob outside any write block (same file semantics as `StoreWriter.put_blob`)."""
        return self.blobs.put(data)

    def stats(self) -> dict[str, Any]:
        """Entries per database, bytes on disk, map size and schema version."""
        with self._read() as (txn, dbs):
            counts = {name: txn.stat(dbs[name])["entries"] for name in ALL_DBS}
            info = self._env.info()
        data_file = self.path / "data.mdb"
        return {
            "path": str(self.path),
            "schema_version": STORE_SCHEMA_VERSION,
            "entries": counts,
            "data_bytes": data_file.stat().st_size if data_file.exists() else 0,
            "blob_bytes": self.blobs.size_bytes(),
            "map_size": info["map_size"],
            "last_txnid": info["last_txnid"],
            "readonly": self.readonly,
        }

    def backup(self, dest: Path) -> None:
        """A compacted, consistent copy of the environment (and the blob files) into `dest`."""
        self._require_open()
        dest = Path(dest)
        if (dest / "data.mdb").exists():
            raise StoreError(f"backup destination {dest} already holds a store: pick a new folder")
        dest.mkdir(parents=True, exist_ok=True)
        with self._gate.shared():
            self._env.copy(str(dest), compact=True)
        if self.blobs.root.exists():
            shutil.copytree(self.blobs.root, dest / "blobs", dirs_exist_ok=True)


#: Below this many free bytes, a failed commit is reported as a full disk.
DISK_FULL_BYTES = 1 << 20


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path).free < DISK_FULL_BYTES
    except OSError:
        return False
