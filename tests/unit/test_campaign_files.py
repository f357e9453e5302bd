"""Reading campaign files as streams: CSV (BOM, RFC 4180 quoting, params from columns),
JSONL, resuming after a line, and the file-level problems that fail a whole file."""

from __future__ import annotations

import io
import json

import pytest

from chalicelib.services.campaign_files import FileProblem, LimitedReader, RawRow, read_rows


def rows(fmt: str, data: bytes, skip_through: int = 0) -> list[RawRow]:
    return list(read_rows(fmt, io.BytesIO(data), skip_through=skip_through))


def test_csv_with_a_bom_quotes_and_params_from_the_other_columns() -> None:
    data = (
        b"\xef\xbb\xbfmail,name,plan,emailRecipientId\r\n"
        b'a@example.org,"Doe, Ann",gold,r-1\r\n'
        b'b@example.org,"Ben ""B""",,r-2\r\n'
        b'c@example.org,"two\r\nlines",x,r-3\r\n'
        b"\r\n"
        b"d@example.org,,y,\r\n"
    )

    read = rows("csv", data)

    assert [(r.line, r.mail, r.name, r.recipient_id, r.params) for r in read] == [
        (2, "a@example.org", "Doe, Ann", "r-1", {"plan": "gold"}),
        (3, "b@example.org", 'Ben "B"', "r-2", {}),
        (4, "c@example.org", "two\r\nlines", "r-3", {"plan": "x"}),
        (7, "d@example.org", None, None, {"plan": "y"}),
    ]


def test_csv_resumes_after_a_line_and_counts_lines_as_written() -> None:
    data = b'mail\na@example.org\n"b@\nexample.org"\nc@example.org\n'

    assert [r.line for r in rows("csv", data)] == [2, 3, 5]
    assert [r.line for r in rows("csv", data, skip_through=3)] == [5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"email\r\na@example.org\r\n", "no 'mail' column"),
        (b"mail,mail\r\na,b\r\n", "twice"),
        (b'mail\r\n"a@example.org\r\n', "RFC 4180"),
        ("mail\r\nzoë@example.org\r\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_fails_whole(data: bytes, message: str) -> None:
    with pytest.raises(FileProblem, match=message):
        rows("csv", data)


def test_a_row_with_the_wrong_number_of_columns_is_that_rows_problem() -> None:
    read = rows("csv", b"mail,name\r\na@example.org\r\nb@example.org,B\r\n")

    assert read[0].problem == ("row", "1 columns; the header has 2")
    assert read[1].mail == "b@example.org"


def test_jsonl_rows_and_their_problems() -> None:
    lines = [
        json.dumps({"mail": "a@example.org", "params": {"code": "1"}}),
        "not json",
        json.dumps(["a list"]),
        json.dumps({"mail": "b@example.org", "plan": "gold"}),
        json.dumps({"mail": 42}),
        json.dumps({"mail": "c@example.org", "params": {"n": 1}}),
        "",
        json.dumps({"mail": "d@example.org", "emailRecipientId": "d"}),
    ]
    read = rows("jsonl", ("\n".join(lines) + "\n").encode())

    assert [(r.line, r.mail, r.params, r.problem and r.problem[0]) for r in read] == [
        (1, "a@example.org", {"code": "1"}, None),
        (2, None, None, "row"),
        (3, None, None, "row"),
        (4, None, None, "plan"),
        (5, None, None, "mail"),
        (6, None, None, "params"),
        (8, "d@example.org", None, None),
    ]


def test_reading_stops_past_the_size_limit() -> None:
    stream = io.BufferedReader(LimitedReader(iter([b"mail\r\n", b"a@example.org\r\n"]), 10))

    with pytest.raises(FileProblem, match="CAMPAIGN_MAX_BYTES"):
        list(read_rows("csv", stream))
