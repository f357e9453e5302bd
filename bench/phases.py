"""Where the time of one bulk accept goes: MailService.submit's steps, timed one by one.

This mirrors ``MailService.submit`` → ``_enqueue`` (chalicelib/services/mail.py) and the
controller's response, calling the same functions in the same order (some are private: this
is dev tooling and must be kept in step when that code changes). The last line is what the
whole request costs beyond those steps (router, middleware, Chalice's test client), from a
full request of the same size made right afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from bench.environment import BenchEnvironment
from chalicelib.http.responses import success
from chalicelib.models.mail import BulkAcceptedData, SendMailRequest
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.services import mail_jobs
from chalicelib.services.messages import email_content, new_delivery, status_of
from chalicelib.services.render_budget import RenderMeter

T = TypeVar("T")


def accept_phases(env: BenchEnvironment, body: dict[str, Any]) -> dict[str, float]:
    container = env.use(sqs=False)
    repo = DeliveryRepository(container.database)
    key = env.key_id
    raw = json.dumps(body)
    phases: dict[str, float] = {}

    def timed(name: str, step: Callable[[], T]) -> T:
        started = time.perf_counter()
        value = step()
        phases[name] = time.perf_counter() - started
        return value

    request = timed("parse + validate body (SendMailRequest)", lambda: _parse(raw))
    jobs = timed(
        "build ProcessingMessages (no second validation)",
        lambda: mail_jobs.build_jobs(key, request, datetime.now(UTC)),
    )
    bodies = timed(
        "serialise queue messages (model_dump_json)",
        lambda: [job.model_dump_json() for job in jobs],
    )
    budget = container.mail._limits.render
    timed(
        "render every recipient's templates (within the budget)",
        lambda: mail_jobs.render_all(jobs, RenderMeter(budget)),
    )
    timed(
        "store the email's content once",
        lambda: repo.save_email(key, request.email_id, email_content(jobs[0])),
    )
    timed(
        "look the addresses up on the suppression list",
        lambda: container.suppressions.listed([job.recipient_email for job in jobs]),
    )
    records = timed(
        "INSERT delivery rows (unnest ... RETURNING)",
        lambda: repo.insert_new(key, [new_delivery(job) for job in jobs]),
    )
    timed(
        "hand them to the queue (in-memory)", lambda: container.processing_queue.send_many(bodies)
    )
    timed(
        "mark them dispatched",
        lambda: repo.mark_dispatched([records[job.recipient_id].id for job in jobs]),
    )
    timed(
        "response body (every recipient's status)",
        lambda: (
            success(
                "Emails queued for delivery",
                BulkAcceptedData(
                    email_id=request.email_id,
                    count=len(jobs),
                    recipients=[status_of(records[job.recipient_id]) for job in jobs],
                ),
                status=202,
            ).body
        ),
    )
    env.memory_queue.take()

    full = dict(body, email_id=f"phases-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    status, _ = env.post_mail(full)
    whole = time.perf_counter() - started
    env.memory_queue.take()
    if status != 202:
        raise RuntimeError(f"bulk request refused: {status}")
    phases["rest: router, auth, middleware, test client"] = max(0.0, whole - sum(phases.values()))
    return phases


def _parse(raw: str) -> SendMailRequest:
    return SendMailRequest.model_validate_json(raw)
