"""Reading campaign files as streams: CSV (BOM, RFC 4180 quoting, params from columns),
JSONL, resuming after a line, and the file-level problems that fail a whole file."""

from __future__ import annotations

import io
import json

import pytest

from chalicelib.services.campaign_files import FileProblem, LimitedReader, RawRow, read_rows

UNKNOWN = "unknown field (params go in 'params')"


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
    assert [r.line for r in read] == [2, 3]
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


# --- each column and problem, at its line (issue 17: mutants the tests above let live) ---


def test_csv_columns_are_trimmed_and_each_lands_in_its_field() -> None:
    data = (
        b" emailRecipientId , company ,mail, name \r\n"
        b"r-1,ACME,a@example.org,Ann\r\n"
        b",,b@example.org,\r\n"
    )

    read = rows("csv", data)

    assert [(r.mail, r.name, r.company, r.recipient_id, r.params, r.problem) for r in read] == [
        ("a@example.org", "Ann", "ACME", "r-1", None, None),
        ("b@example.org", None, None, None, None, None),
    ]
    only_mail = rows("csv", b"mail\r\n\r\nc@example.org\r\n")
    assert [(r.line, r.mail, r.name, r.company, r.recipient_id) for r in only_mail] == [
        (3, "c@example.org", None, None, None)
    ]


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "the file is empty: a header row is needed", 1),
        (b"name\r\nAnn\r\n", "the header row has no 'mail' column", 1),
        (b"mail,,x\r\na,b,c\r\n", "the header row has an empty column name", 1),
        (b"mail,name, name\r\na,b,c\r\n", "the header row names 'name' twice", 1),
    ],
)
def test_a_bad_header_is_a_file_problem_on_line_one(data: bytes, message: str, line: int) -> None:
    with pytest.raises(FileProblem) as caught:
        rows("csv", data)

    assert (caught.value.message, caught.value.line, str(caught.value)) == (message, line, message)


def test_broken_quoting_names_the_line_it_showed_on() -> None:
    with pytest.raises(FileProblem) as caught:
        rows("csv", b'mail\r\na@example.org\r\nb@example.org\r\n"c@example.org\r\n')

    assert caught.value.message.startswith("not a CSV file (RFC 4180): ")
    assert caught.value.line == 4  # where the open quote began
    assert FileProblem("anywhere").line == 0


def test_a_file_that_is_not_utf8_names_why() -> None:
    with pytest.raises(FileProblem) as caught:
        rows("jsonl", b'{"mail": "a@example.org"}\n{"mail": "\xff"}\n')

    assert caught.value.message == "the file is not UTF-8 (invalid start byte)"


def test_the_size_limit_holds_to_the_byte_across_chunks() -> None:
    chunks = [b"mail\r\n", b"", b"a@example.org\r\n"]  # 21 bytes, an empty chunk between
    exact = LimitedReader(iter(chunks), 21)

    assert exact.readable()
    assert [r.mail for r in read_rows("csv", io.BufferedReader(exact, buffer_size=4))] == [
        "a@example.org"
    ]
    assert exact.read_bytes == 21
    over = io.BufferedReader(LimitedReader(iter(chunks), 20), buffer_size=4)
    with pytest.raises(FileProblem) as caught:
        list(read_rows("csv", over))
    assert caught.value.message == "the file is larger than CAMPAIGN_MAX_BYTES (20 bytes)"


def test_a_small_buffer_reads_a_chunk_in_pieces() -> None:
    reader = LimitedReader(iter([b"abcdef", b"gh"]), 100)
    buffer = bytearray(4)

    got = []
    while size := reader.readinto(buffer):
        got.append(bytes(buffer[:size]))

    assert got == [b"abcd", b"ef", b"gh"]
    assert reader.read_bytes == 8


def test_jsonl_fields_blank_lines_resume_and_a_bom() -> None:
    lines = [
        json.dumps(
            {
                "mail": "a@example.org",
                "name": "Ann",
                "company": "ACME",
                "emailRecipientId": "r-1",
                "params": {},
            }
        ),
        "   ",
        json.dumps({"mail": "", "name": None, "params": {"p": "v"}}),
        json.dumps({"mail": "c@example.org"}),
    ]
    data = b"\xef\xbb\xbf" + "\n".join(lines).encode()

    read = rows("jsonl", data)

    assert [(r.line, r.mail, r.name, r.company, r.recipient_id, r.params) for r in read] == [
        (1, "a@example.org", "Ann", "ACME", "r-1", None),
        (3, None, None, None, None, {"p": "v"}),
        (4, "c@example.org", None, None, None, None),
    ]
    assert [r.line for r in rows("jsonl", data, skip_through=3)] == [4]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1]", ("row", "each line must be a JSON object")),
        ('{"zeta": 1, "beta": 2, "mail": "a@example.org"}', ("beta", UNKNOWN)),
        ('{"name": 5}', ("name", "must be a string")),
        ('{"emailRecipientId": ["r"]}', ("emailRecipientId", "must be a string")),
        ('{"params": ["v"]}', ("params", "must be an object of strings")),
        ('{"params": {"a": "1", "b": 2}}', ("params", "must be an object of strings")),
    ],
)
def test_a_jsonl_rows_problem_names_its_field(line: str, problem: tuple[str, str]) -> None:
    (read,) = rows("jsonl", line.encode())

    assert (read.line, read.problem, read.mail) == (1, problem, None)


def test_a_line_that_is_not_json_says_so() -> None:
    (read,) = rows("jsonl", b"{nope\n")

    assert read.problem is not None
    assert read.problem[0] == "row"
    assert read.problem[1].startswith("not JSON: Expecting property name")


def test_a_name_or_company_in_the_first_column_is_read() -> None:
    (named,) = rows("csv", b"name,mail\r\nAnn,a@example.org\r\n")
    (company,) = rows("csv", b"company,mail\r\nACME,a@example.org\r\n")

    assert (named.name, named.mail) == ("Ann", "a@example.org")
    assert (company.company, company.mail) == ("ACME", "a@example.org")


def test_by_default_no_line_is_skipped() -> None:
    (first,) = read_rows("jsonl", io.BytesIO(b'{"mail": "a@example.org"}\n'))

    assert (first.line, first.mail) == (1, "a@example.org")
