"""S3 event notifications of uploaded campaign files, as the uploads queue receives them.

The bucket sends ``s3:ObjectCreated:*`` to an SQS queue (the template's
``NotificationConfiguration``); each SQS message body is one notification: ``{"Records":
[{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ...}, "object": {"key": ...,
"size": ...}}}]}`` (AWS S3 User Guide, "Event message structure"). Keys arrive URL-encoded
(spaces as ``+``). When the notification is configured, S3 sends one ``{"Event":
"s3:TestEvent", ...}`` message: it names no object and is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from chalicelib.events.common import MalformedEventError, as_dict


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None


def parse_s3_notification(body: str) -> list[ObjectCreated]:
    """The objects created that one notification reports ([] for the test event)."""
    try:
        message = json.loads(body)
    except ValueError as err:
        raise MalformedEventError("an S3 notification is JSON") from err
    if not isinstance(message, dict):
        raise MalformedEventError("an S3 notification is a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError("an S3 notification has Records")
    created = []
    for entry in records:
        record = as_dict(entry)
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = as_dict(record.get("s3"))
        bucket = as_dict(s3.get("bucket")).get("name")
        obj = as_dict(s3.get("object"))
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise MalformedEventError("an ObjectCreated record names a bucket and a key")
        size = obj.get("size")
        created.append(
            ObjectCreated(bucket, unquote_plus(key), size if isinstance(size, int) else None)
        )
    return created
