"""Content-addressed files for large blobs (logs, artifacts) beside the LMDB environment.

A blob lives at `<root>/<first two hex>/<sha256 hex>`. It is written to a temporary file,
fsynced and renamed into place before the LMDB transaction that refers to it commits, so a
committed reference always finds its file; a blob whose transaction aborted is merely unused.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from cognition.errors import StoreError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise StoreError(f"blob digest {digest!r} is not a 64-character sha256 hex string")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_of(digest)
        if final.exists():
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return digest

    def get(self, digest: str) -> bytes:
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} not found under {self.root}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} at {path} is corrupt (hash mismatch); delete it")
        return data

    def size_bytes(self) -> int:
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
