"""Where campaign files are uploaded: what the campaign services need of the store.

Two stores: S3 (a presigned PUT URL of the bucket the template creates; AWS) and the local
folder that ``make run`` serves. Adapters raise
:class:`~chalicelib.errors.StorageUnavailableError` when the store cannot be reached and
:class:`UploadMissingError` when the object is not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class UploadMissingError(LookupError):
    """No object under that key (expired, never uploaded)."""


@dataclass(frozen=True)
class UploadTarget:
    method: str
    url: str
    headers: dict[str, str]
    expires_at: datetime


class UploadStore(Protocol):
    def upload_target(self, key: str, content_type: str, expires_seconds: int) -> UploadTarget:
        """How a client uploads the object ``key`` (once, before it expires)."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes (UploadMissingError when absent)."""
        ...

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, streamed in chunks (never whole in memory)."""
        ...
