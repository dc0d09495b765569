"""Store layout migrations: `MIGRATIONS[v](txn, dbs)` turns a layout-v store into v+1.

v0 (the prototype layout): record databases only, values as JSON text, no meta database and
no indexes. v1: msgpack values validated by pydantic, index databases, `meta.schema_version`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cognition.codec import dump, pack, unpack
from cognition.layout import KINDS, rebuild_indexes

Migration = Callable[[Any, dict[str, Any]], None]


def _v0_to_v1(txn: Any, dbs: dict[str, Any]) -> None:
    for kind in KINDS.values():
        db = dbs[kind.db]
        with txn.cursor(db=db) as cur:
            rows = list(cur.iternext())
        for key, raw in rows:
            data = json.loads(raw) if raw[:1] == b"{" else unpack(raw)
            data.pop("v", None)  # the record's schema version is the current one after this
            txn.put(key, pack(dump(kind.model.model_validate(data))), db=db)
    rebuild_indexes(txn, dbs)


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}
