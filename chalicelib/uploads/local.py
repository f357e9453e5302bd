"""Campaign files under ``make run``: kept in a folder of the data directory.

The upload URL points at the local server (``mmms_local``), which writes the body there and
then hands the same S3-shaped notification to the same processing code as on AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.uploads.base import UploadMissingError, UploadTarget

CHUNK_BYTES = 1024 * 1024
LOCAL_BUCKET = "local"


class LocalUploadStore:
    def __init__(self, folder: Path, base_url: str) -> None:
        self._folder = folder
        self._base_url = base_url.rstrip("/")

    def path_of(self, key: str) -> Path:
        """Where ``key`` is kept (keys are ``uploads/<campaign id>.<format>``)."""
        name = key.removeprefix("uploads/")
        if "/" in name or "\\" in name or name.startswith("."):
            raise UploadMissingError(key)
        return self._folder / name

    def upload_target(self, key: str, content_type: str, expires_seconds: int) -> UploadTarget:
        return UploadTarget(
            method="PUT",
            url=f"{self._base_url}/{key}",
            headers={"Content-Type": content_type},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_seconds),
        )

    def size(self, key: str) -> int:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError as err:
            raise UploadMissingError(key) from err

    def chunks(self, key: str) -> Iterator[bytes]:
        try:
            with self.path_of(key).open("rb") as file:
                while chunk := file.read(CHUNK_BYTES):
                    yield chunk
        except FileNotFoundError as err:
            raise UploadMissingError(key) from err
