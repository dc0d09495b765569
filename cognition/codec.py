"""Byte encodings of the Cognition Store: msgpack record values and sortable index keys.

Values are msgpack of `record.model_dump(mode="json")`, validated with pydantic on read.
Index keys are `<owner id> NUL <sortable parts>`; ids never contain NUL, so a prefix scan
over `owner NUL` sees exactly one owner's entries, in key order.
"""

from __future__ import annotations

import math
import struct
from typing import Any, TypeVar

import msgpack
from pydantic import TypeAdapter, ValidationError

from cognition.errors import RecordError
from cognition.records import Record

R = TypeVar("R", bound=Record)

SEP = b"\x00"
MAX_KEY_BYTES = 511  # LMDB's default maximum key size


def dump(record: Record) -> dict[str, Any]:
    """The JSON-mode dict of a record, re-validated so that a mutated model cannot store garbage."""
    data = record.model_dump(mode="json")
    try:
        type(record).model_validate(data)
    except ValidationError as exc:
        raise RecordError(f"{type(record).__name__} {data.get('id')!r} is invalid: {exc}") from exc
    return data


def pack(data: dict[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


def unpack(raw: bytes) -> dict[str, Any]:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def decode(model: type[R], raw: bytes, *, where: str) -> R:
    """Validate a stored value as `model`; `where` names the db and key for the error message."""
    try:
        return model.model_validate(unpack(raw))
    except (ValidationError, ValueError, msgpack.ExtraData, msgpack.FormatError) as exc:
        raise RecordError(
            f"{where}: stored value is not a valid {model.__name__} ({exc}); "
            "restore the store from a backup (`evolve store backup` makes one)"
        ) from exc


_LIST_ADAPTERS: dict[type[Record], TypeAdapter[Any]] = {}


def decode_many(model: type[R], raws: list[bytes], *, where: str) -> list[R]:
    """Validate many stored values at once (one pydantic call, faster than one per value)."""
    adapter = _LIST_ADAPTERS.get(model)
    if adapter is None:
        adapter = _LIST_ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    try:
        return adapter.validate_python([unpack(raw) for raw in raws])
    except (ValidationError, ValueError, msgpack.ExtraData, msgpack.FormatError) as exc:
        raise RecordError(
            f"{where}: a stored value is not a valid {model.__name__} ({exc}); "
            "restore the store from a backup (`evolve store backup` makes one)"
        ) from exc


def id_bytes(value: str, *, what: str = "id") -> bytes:
    """The key bytes of an id; refuses ids that would break prefix scans or LMDB's key limit."""
    raw = value.encode("utf-8")
    if not raw or SEP in raw or len(raw) > 200:
        raise RecordError(
            f"{what} {value!r} cannot be a store key: use 1-200 bytes without NUL characters"
        )
    return raw


def float_key(x: float) -> bytes:
    """8 bytes whose unsigned byte order matches the numeric order of `x` (NaN refused)."""
    if math.isnan(x):
        raise RecordError("NaN cannot be used as a sort key")
    (bits,) = struct.unpack(">Q", struct.pack(">d", x))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return struct.pack(">Q", bits)


def float_from_key(raw: bytes) -> float:
    (bits,) = struct.unpack(">Q", raw)
    bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFFFFFFFFFFFFFF
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def int_key(n: int) -> bytes:
    """8 bytes whose byte order matches the numeric order of a signed 64-bit `n`."""
    return struct.pack(">Q", (n + (1 << 63)) & 0xFFFFFFFFFFFFFFFF)


def index_key(owner: str, *parts: bytes) -> bytes:
    key = id_bytes(owner, what="index owner") + SEP + b"".join(parts)
    if len(key) > MAX_KEY_BYTES:
        raise RecordError(
            f"index key for {owner!r} is {len(key)} bytes, over LMDB's {MAX_KEY_BYTES}"
        )
    return key


def prefix_of(owner: str) -> bytes:
    return id_bytes(owner, what="index owner") + SEP


def tail_of(key: bytes, owner_prefix: bytes) -> bytes:
    return key[len(owner_prefix) :]
