from __future__ import annotations

from chalicelib.queues.sqs import batches


def test_at_most_ten_per_batch_in_order() -> None:
    groups = list(batches(["x"] * 25))

    assert [len(g) for g in groups] == [10, 10, 5]
    assert [i for g in groups for i in g] == list(range(25))


def test_batches_stay_under_the_byte_limit() -> None:
    bodies = ["a" * 400, "b" * 400, "c" * 400, "d" * 100]

    groups = list(batches(bodies, max_bytes=1000))

    assert groups == [[0, 1], [2, 3]]
    assert all(sum(len(bodies[i]) for i in g) <= 1000 for g in groups)
