"""Reading a campaign's file as a stream of rows, never whole in memory (SPEC 13).

- CSV: UTF-8 (a BOM is fine), RFC 4180 quoting, a header row. Columns ``mail`` (required),
  ``name``, ``company``, ``emailRecipientId``; every other column is a param of its row.
- JSONL: one JSON object per line with the same fields and ``params`` (an object of strings).

A row's ``line`` is the file line it starts on (the CSV header is line 1). A problem with one
row (a JSONL line that is not an object) is that row's error; a problem with the file (not
UTF-8, broken quoting, a bad header, over the size limit) is a :class:`FileProblem` and fails
the whole file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

COLUMNS = ("mail", "name", "company", "emailRecipientId")
JSONL_FIELDS = frozenset({*COLUMNS, "params"})


class FileProblem(Exception):
    """The file cannot be read as a campaign file; ``line`` where it showed (0: anywhere)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(slots=True)
class RawRow:
    """One row as read: its columns (None when absent or empty), or why it cannot be read."""

    line: int
    mail: str | None = None
    name: str | None = None
    company: str | None = None
    recipient_id: str | None = None
    params: dict[str, str] | None = None
    problem: tuple[str, str] | None = None  # (field, message)


class LimitedReader(io.RawIOBase):
    """A binary stream that refuses to yield more than ``max_bytes`` (the upload limit holds
    even where the store could not enforce it). ``chunks`` yields the upstream's bytes."""

    def __init__(self, chunks: Iterator[bytes], max_bytes: int) -> None:
        self._chunks = chunks
        self._pending = b""
        self._max = max_bytes
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.read_bytes += size
        if self.read_bytes > self._max:
            raise FileProblem(f"the file is larger than CAMPAIGN_MAX_BYTES ({self._max} bytes)")
        return size


def text_stream(binary: IO[bytes]) -> IO[str]:
    """UTF-8 text (a leading BOM dropped) with newlines as written (csv wants them so)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def read_rows(fmt: str, binary: IO[bytes], *, skip_through: int = 0) -> Iterator[RawRow]:
    """The file's rows in order, leaving out those starting on a line <= ``skip_through``
    (already handled before a resume)."""
    stream = text_stream(binary)
    try:
        if fmt == "jsonl":
            yield from _jsonl_rows(stream, skip_through)
        else:
            yield from _csv_rows(stream, skip_through)
    except UnicodeDecodeError as err:
        raise FileProblem(f"the file is not UTF-8 ({err.reason})") from err


def _csv_rows(stream: IO[str], skip_through: int) -> Iterator[RawRow]:
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FileProblem("the file is empty: a header row is needed", 1)
        columns = _header(header)
        mail_at = columns.index("mail")
        name_at = _index(columns, "name")
        company_at = _index(columns, "company")
        rid_at = _index(columns, "emailRecipientId")
        param_at = [(i, c) for i, c in enumerate(columns) if c not in COLUMNS]
        width = len(columns)
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if line <= skip_through or not fields:
                continue  # handled before a resume, or a blank line
            if len(fields) != width:
                yield RawRow(
                    line,
                    problem=("row", f"{len(fields)} columns; the header has {width}"),
                )
                continue
            yield RawRow(
                line,
                mail=fields[mail_at] or None,
                name=(fields[name_at] or None) if name_at >= 0 else None,
                company=(fields[company_at] or None) if company_at >= 0 else None,
                recipient_id=(fields[rid_at] or None) if rid_at >= 0 else None,
                params={name: fields[i] for i, name in param_at if fields[i]} if param_at else None,
            )
    except csv.Error as err:
        raise FileProblem(f"not a CSV file (RFC 4180): {err}", reader.line_num) from err


def _header(names: list[str]) -> list[str]:
    columns = [name.strip() for name in names]
    if "mail" not in columns:
        raise FileProblem("the header row has no 'mail' column", 1)
    seen: set[str] = set()
    for name in columns:
        if not name:
            raise FileProblem("the header row has an empty column name", 1)
        if name in seen:
            raise FileProblem(f"the header row names {name!r} twice", 1)
        seen.add(name)
    return columns


def _index(columns: list[str], name: str) -> int:
    return columns.index(name) if name in columns else -1


def _jsonl_rows(stream: IO[str], skip_through: int) -> Iterator[RawRow]:
    for line, text in enumerate(stream, start=1):
        if line <= skip_through or not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError as err:
            yield RawRow(line, problem=("row", f"not JSON: {err}"))
            continue
        yield _json_row(line, item)


def _json_row(line: int, item: Any) -> RawRow:
    if not isinstance(item, dict):
        return RawRow(line, problem=("row", "each line must be a JSON object"))
    unknown = sorted(set(item) - JSONL_FIELDS)
    if unknown:
        return RawRow(line, problem=(unknown[0], "unknown field (params go in 'params')"))
    values: dict[str, str | None] = {}
    for name in COLUMNS:
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            return RawRow(line, problem=(name, "must be a string"))
        values[name] = value or None
    params = item.get("params")
    if params is not None and (
        not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values())
    ):
        return RawRow(line, problem=("params", "must be an object of strings"))
    return RawRow(
        line,
        mail=values["mail"],
        name=values["name"],
        company=values["company"],
        recipient_id=values["emailRecipientId"],
        params=params or None,
    )
