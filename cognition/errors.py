"""The cognition package's exception family: every message names the store or record and the fix."""

from __future__ import annotations


class CognitionError(Exception):
    """Base of every error the cognition package raises on purpose."""


class StoreError(CognitionError):
    """The Cognition Store cannot be opened, read or written as asked."""


class SchemaVersionError(StoreError):
    """The store on disk was written by a newer evoforge than this one."""


class RecordError(StoreError):
    """A record read from or handed to the store does not match its schema."""
