"""Campaign files in S3: a presigned PUT for the client, a streamed GET for processing.

A presigned PUT cannot bound the body's size (only a POST policy's ``content-length-range``
can), so the size limit is enforced where the object is read: ``size`` is checked against
``CAMPAIGN_MAX_BYTES`` before processing starts, and reading stops past it anyway. Uploads
expire by the bucket's lifecycle rule (the template's), not by this code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailableError
from chalicelib.uploads.base import UploadMissingError, UploadTarget

CHUNK_BYTES = 1024 * 1024


class S3UploadStore:
    def __init__(self, client: Callable[[], Any], bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def upload_target(self, key: str, content_type: str, expires_seconds: int) -> UploadTarget:
        try:
            url = self._client().generate_presigned_url(
                "put_object",
                Params={"Bucket": self._bucket, "Key": key, "ContentType": content_type},
                ExpiresIn=expires_seconds,
                HttpMethod="PUT",
            )
        except (BotoCoreError, ClientError) as err:
            raise StorageUnavailableError("could not sign an upload URL") from err
        return UploadTarget(
            method="PUT",
            url=url,
            headers={"Content-Type": content_type},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_seconds),
        )

    def size(self, key: str) -> int:
        try:
            head = self._client().head_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if _missing(err):
                raise UploadMissingError(key) from err
            raise StorageUnavailableError("could not read the uploaded file") from err
        except BotoCoreError as err:
            raise StorageUnavailableError("could not read the uploaded file") from err
        return int(head["ContentLength"])

    def chunks(self, key: str) -> Iterator[bytes]:
        try:
            body = self._client().get_object(Bucket=self._bucket, Key=key)["Body"]
            yield from body.iter_chunks(CHUNK_BYTES)
        except ClientError as err:
            if _missing(err):
                raise UploadMissingError(key) from err
            raise StorageUnavailableError("could not read the uploaded file") from err
        except BotoCoreError as err:
            raise StorageUnavailableError("could not read the uploaded file") from err


def _missing(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")
