"""Campaign files on their way to ``campaign.upload`` (SPEC section 13), with progress.

A file is ``bytes``, a ``str`` (its content, UTF-8), a path (``pathlib.Path`` or any
``os.PathLike``) or a binary file object. It is sent in 64 KiB chunks with its
``Content-Length`` (S3's presigned PUT takes no chunked transfer), never retried (a campaign
takes one upload), and refused before sending when over the target's ``max_bytes``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from mmms_client.errors import MmmsError

CHUNK_BYTES = 64 * 1024
FINISHED = frozenset({"completed", "cancelled", "failed"})
FileLike = bytes | str | os.PathLike[str] | IO[bytes]
Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


def target_of(campaign: Mapping[str, Any]) -> Mapping[str, Any]:
    """The upload target: a created campaign's ``upload``, or the target itself."""
    target: Mapping[str, Any] = campaign.get("upload") or campaign
    return target


def _chunks_of_file(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def _chunks_of_path(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from _chunks_of_file(handle)


def _chunks_of_bytes(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]


def prepare(
    campaign: Mapping[str, Any], file: FileLike, on_progress: Progress | None
) -> tuple[Mapping[str, Any], dict[str, str], Iterator[bytes]]:
    """(target, headers, counted chunks) for one upload; MmmsError 413 when too big."""
    target = target_of(campaign)
    chunks: Iterator[bytes]
    if isinstance(file, str | bytes):
        data = file.encode() if isinstance(file, str) else file
        size, chunks = len(data), _chunks_of_bytes(data)
    elif isinstance(file, os.PathLike):
        path = Path(file)
        size, chunks = path.stat().st_size, _chunks_of_path(path)
    else:
        size = os.fstat(file.fileno()).st_size - file.tell()
        chunks = _chunks_of_file(file)
    if size > int(target["max_bytes"]):
        raise MmmsError(
            status=413,
            error_type="payload_too_large",
            message=f"The file has {size} bytes; at most {target['max_bytes']}",
        )
    headers = {**target.get("headers", {}), "Content-Length": str(size)}
    return target, headers, _counted(chunks, size, on_progress)


def _counted(chunks: Iterator[bytes], total: int, on_progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        yield chunk
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent, total)


async def as_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
