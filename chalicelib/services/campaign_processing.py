"""Processing a campaign's file: validate every row, then fan the rows out (SPEC 13).

1. **Validate** (``validating``): the file is read as a stream (``campaign_files``), each row
   checked (``campaign_rows``), the valid ones staged with ``COPY`` every
   ``CHECKPOINT_ROWS`` lines together with the checkpoint (line, counts, first errors). Then
   duplicates are found over the whole file in the database. An invalid row without
   ``skip_invalid`` fails the campaign (nothing is sent); otherwise it is ``scheduled``
   (``send_at`` ahead) or ``sending``.
2. **Fan out** (``sending``): the staged rows are recorded as recipients ``FAN_OUT_ROWS`` at a
   time (one statement with the checkpoint; listed addresses ``suppressed``), and handed to
   the processing queue as *chunk* messages of ``CHUNK_ROWS`` recipients, which the same
   consumer as bulk sends expands (``CampaignService.chunk_jobs``) and sends.

Each step runs under the campaign's processing lease and moves its checkpoint in the same
transaction as its rows, so a crash, a timeout or a redelivered upload event continues from
the last checkpoint (the minute tick picks up a campaign whose processor died): no row is
staged or recorded twice, none is lost. What remains is the window between the queue taking
a step's chunks and that step's checkpoint: a process dying exactly there queues those
chunks again on resume (the consumer's send lease still sends each recipient once).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import QueueUnavailableError
from chalicelib.models.campaigns import CHUNK_KEY, MAX_LISTED_ERRORS, CampaignStatus
from chalicelib.queues.base import ProcessingQueue
from chalicelib.repositories.campaign_staging import Progress, StagedRow
from chalicelib.repositories.campaign_table import Campaign, LeaseLostError
from chalicelib.repositories.campaigns import CampaignRepository
from chalicelib.repositories.deliveries import DeliveryRepository
from chalicelib.services.campaign_files import FileProblem, LimitedReader, read_rows
from chalicelib.services.campaign_rows import RowCheck, RowValidator, allowed_domains
from chalicelib.services.delivery import DeliveryService
from chalicelib.services.suppressions import suppression_detail
from chalicelib.services.templates import placeholders
from chalicelib.uploads.base import UploadMissingError, UploadStore

log = logging.getLogger("mmms.campaigns")

CHECKPOINT_ROWS = 20_000  # lines validated between checkpoints
FAN_OUT_ROWS = 10_000  # rows recorded as recipients per statement
CHUNK_ROWS = 10  # recipients per processing-queue message (see bench/README.md)
QUEUE_ATTEMPTS = 3
READ_BYTES = 1024 * 1024

Clock = Callable[[], float]


class CampaignProcessor:
    def __init__(
        self,
        campaigns: CampaignRepository,
        deliveries: DeliveryRepository,
        delivery: DeliveryService,
        queue: ProcessingQueue,
        store: UploadStore | None,
        *,
        max_bytes: int,
        clock: Clock = time.monotonic,
        checkpoint_rows: int = CHECKPOINT_ROWS,
        fan_out_rows: int = FAN_OUT_ROWS,
    ) -> None:
        self._repo = campaigns
        self._deliveries = deliveries
        self._delivery = delivery
        self._queue = queue
        self._store = store
        self._max_bytes = max_bytes
        self._clock = clock
        self._checkpoint_rows = checkpoint_rows
        self._fan_out_rows = fan_out_rows

    def uploaded(self, key: str, deadline: float) -> str | None:
        """An upload finished (S3 notification, or the local server): start validating its
        campaign; the campaign id, or None when no campaign waits for that key."""
        campaign = self._repo.by_upload_key(key)
        if campaign is None:
            log.warning("an upload no campaign waits for", extra={"key": key})
            return None
        self._repo.move(
            campaign.id, CampaignStatus.VALIDATING, only_from=[CampaignStatus.AWAITING_UPLOAD]
        )
        self.process(campaign.id, deadline)
        return campaign.id

    def process(self, campaign_id: str, deadline: float) -> bool:
        """Take the campaign's next steps until ``deadline`` (a ``clock`` time); whether it
        has nothing left to do. Another processor holding it: nothing is done."""
        taken = self._repo.take(campaign_id)
        if taken is None:
            return False
        campaign, token = taken
        try:
            return self._steps(campaign, token, deadline)
        except LeaseLostError:
            log.warning("processing lease lost", extra={"campaign_id": campaign_id})
            return False
        finally:
            self._repo.release(campaign_id, token)

    def _steps(self, campaign: Campaign, token: Any, deadline: float) -> bool:
        status = campaign.status
        if status is CampaignStatus.VALIDATING and not campaign.validated:
            if not self._validate(campaign, token, deadline):
                return False
            campaign = self._reload(campaign)
            status = campaign.status
        if status is CampaignStatus.SCHEDULED:
            due = campaign.send_at is None or campaign.send_at <= datetime.now(UTC)
            if not due or not self._repo.move(
                campaign.id, CampaignStatus.SENDING, only_from=[CampaignStatus.SCHEDULED]
            ):
                return not due
            campaign = self._reload(campaign)
            status = campaign.status
        fan_out = status in (CampaignStatus.SENDING, CampaignStatus.CANCELLED)
        to_record = fan_out and campaign.validated and not campaign.fanned_out
        if to_record and not self._fan_out(campaign, token, deadline):
            return False
        if status is CampaignStatus.CANCELLED:
            return self._settle_cancelled(campaign.id, deadline)
        if status is CampaignStatus.SENDING:
            self._repo.complete_if_done(campaign.id)
        return True

    def _reload(self, campaign: Campaign) -> Campaign:
        current = self._repo.get(campaign.id)
        if current is None:  # pragma: no cover - campaigns are never deleted
            raise LeaseLostError(campaign.id)
        return current

    # --- 1. validation ---------------------------------------------------------------

    def _validate(self, campaign: Campaign, token: Any, deadline: float) -> bool:
        """Validate the rest of the file; False when the deadline stopped it (resumable)."""
        content = self._content(campaign)
        needed = placeholders(
            content.get("subject"), content.get("html_template"), content.get("text_template")
        )
        given = set(content.get("params") or {})  # the email's params, for every row
        validator = RowValidator(
            [name for name in needed if name not in given], self._row_checks(campaign)
        )
        progress = Progress(
            campaign.validated_through,
            campaign.rows_total,
            campaign.rows_invalid,
            campaign.error_count,
            list(campaign.errors),
        )
        try:
            finished = self._stage_file(campaign, token, validator, progress, deadline)
        except FileProblem as problem:
            self._repo.fail(campaign.id, token, _file_error(problem.message, problem.line))
            return True
        except UploadMissingError:
            self._repo.fail(campaign.id, token, _file_error("the uploaded file is gone", 0))
            return True
        if finished is None:
            return False
        self._finish_validation(campaign, token, finished)
        return True

    def _stage_file(
        self,
        campaign: Campaign,
        token: Any,
        validator: RowValidator,
        progress: Progress,
        deadline: float,
    ) -> Progress | None:
        """Stage the file's rows from the checkpoint on; the final counts, or None when the
        deadline came first (the checkpoint is saved)."""
        store = self._require_store()
        size = store.size(campaign.upload_key)
        if size > self._max_bytes:
            raise FileProblem(f"the file is {size} bytes; CAMPAIGN_MAX_BYTES is {self._max_bytes}")
        reader = io.BufferedReader(
            LimitedReader(store.chunks(campaign.upload_key), self._max_bytes), READ_BYTES
        )
        total, invalid, error_count = (
            progress.rows_total,
            progress.rows_invalid,
            progress.error_count,
        )
        errors = progress.errors
        staged: list[StagedRow] = []
        line = progress.through_line
        since_checkpoint = 0
        for raw in read_rows(campaign.format, reader, skip_through=progress.through_line):
            line = raw.line
            total += 1
            verdict = validator.check(raw)
            row = verdict.row
            if row is not None:
                # Staged even when an invalid row fails the file: a duplicate recipient id
                # is found among the staged rows, and every invalid row is counted.
                staged.append(
                    (
                        row.line,
                        row.email_recipient_id,
                        row.recipient,
                        row.name,
                        row.company,
                        json.dumps(row.params) if row.params else "{}",
                    )
                )
            else:
                invalid += 1
                error_count += 1
                if len(errors) < MAX_LISTED_ERRORS and verdict.problem is not None:
                    field, message = verdict.problem
                    errors.append(_row_error(raw.line, verdict.email_recipient_id, field, message))
            since_checkpoint += 1
            if since_checkpoint >= self._checkpoint_rows:
                checkpoint = Progress(line, total, invalid, error_count, errors)
                self._repo.stage(campaign.id, token, staged, checkpoint)
                staged, since_checkpoint = [], 0
                if self._clock() >= deadline:
                    return None
        final = Progress(line, total, invalid, error_count, errors)
        self._repo.stage(campaign.id, token, staged, final)
        return final

    def _finish_validation(self, campaign: Campaign, token: Any, progress: Progress) -> None:
        duplicates, first = self._repo.duplicates(campaign.id, MAX_LISTED_ERRORS)
        errors = progress.errors
        if duplicates:
            errors = sorted(
                errors
                + [
                    _row_error(
                        line, rid, "emailRecipientId", "the same recipient as an earlier line"
                    )
                    for line, rid in first
                ],
                key=lambda e: int(e["line"]),
            )[:MAX_LISTED_ERRORS]
        invalid = progress.rows_invalid + duplicates
        final = Progress(
            progress.through_line,
            progress.rows_total,
            invalid,
            progress.error_count + duplicates,
            errors,
        )
        if progress.rows_total == 0:
            self._repo.fail(campaign.id, token, _file_error("the file has no rows", 0))
            return
        failed = invalid > 0 and not campaign.skip_invalid
        if failed:
            status = CampaignStatus.FAILED
        elif campaign.send_at is not None and campaign.send_at > datetime.now(UTC):
            status = CampaignStatus.SCHEDULED
        else:
            status = CampaignStatus.SENDING
        valid = progress.rows_total - invalid
        status = self._repo.finish_validation(
            campaign.id,
            token,
            status=status,
            progress=final,
            drop_duplicates=duplicates > 0,
            quota=(campaign.api_key_id, valid, campaign.policy.daily_quota),
        )
        log.info(
            "campaign validated",
            extra={
                "campaign_id": campaign.id,
                "status": status.value,
                "rows": progress.rows_total,
                "invalid": invalid,
            },
        )

    def _row_checks(self, campaign: Campaign) -> Iterable[RowCheck]:
        """The key's policy (SPEC 12), one more check per row."""
        domains = campaign.policy.recipient_domains
        return [allowed_domains(domains)] if domains is not None else []

    # --- 2. fan-out --------------------------------------------------------------------

    def _fan_out(self, campaign: Campaign, token: Any, deadline: float) -> bool:
        """Record and queue the rest of the rows; False when the deadline stopped it."""
        email = self._email_fields(campaign)
        if campaign.queued_through < campaign.recorded_through:
            # A step recorded its rows but died before its checkpoint said they were queued.
            lines = self._repo.recorded_lines(
                campaign.id, campaign.queued_through, campaign.recorded_through
            )
            self._queue_chunks(campaign.id, lines)
            self._repo.queued(campaign.id, token, campaign.recorded_through)
        after = campaign.recorded_through
        while True:
            recorded = self._repo.record(
                campaign.id,
                token,
                after_line=after,
                limit=self._fan_out_rows,
                email=email,
                suppressed_detail=suppression_detail("{reason}"),
            )
            if recorded.through_line == after:
                return True  # nothing left: fanned out
            self._delivery.flush_results(recorded.final_rows)
            self._queue_chunks(campaign.id, recorded.queued_lines)
            self._repo.queued(campaign.id, token, recorded.through_line)
            after = recorded.through_line
            if self._clock() >= deadline:
                return False

    def _queue_chunks(self, campaign_id: str, lines: list[int]) -> None:
        bodies = [
            json.dumps(
                {
                    CHUNK_KEY: {
                        "campaign_id": campaign_id,
                        "first_line": lines[start],
                        "last_line": lines[min(start + CHUNK_ROWS, len(lines)) - 1],
                    }
                }
            )
            for start in range(0, len(lines), CHUNK_ROWS)
        ]
        for _attempt in range(QUEUE_ATTEMPTS):
            if not bodies:
                return
            failed = self._queue.send_many(bodies)
            bodies = [bodies[i] for i in failed]
        if bodies:
            raise QueueUnavailableError(
                f"{len(bodies)} chunks of campaign {campaign_id} could not be queued;"
                " processing resumes from its checkpoint"
            )

    def _settle_cancelled(self, campaign_id: str, deadline: float, batch: int = 1000) -> bool:
        """Cancel the rows of a cancelled campaign still queued, reporting each."""
        while True:
            rows = self._repo.cancel_queued(campaign_id, batch)
            self._delivery.flush_results(rows)
            if len(rows) < batch:
                return True
            if self._clock() >= deadline:
                return False

    # --- helpers -----------------------------------------------------------------------

    def _content(self, campaign: Campaign) -> dict[str, Any]:
        content = self._deliveries.email_content(campaign.api_key_id, campaign.email_id)
        return content or {}

    def _email_fields(self, campaign: Campaign) -> dict[str, Any]:
        content = self._content(campaign)
        return {
            "api_key_id": campaign.api_key_id,
            "email_id": campaign.email_id,
            "client_env_id": content.get("client_env_id"),
            "projectId": content.get("projectId"),
            "closureId": content.get("closureId"),
            "metadata": content.get("metadata") or {},
            "test_mode": campaign.test_mode,
            "template_id": content.get("template_id"),
            "template_version": content.get("template_version"),
        }

    def _require_store(self) -> UploadStore:
        if self._store is None:
            raise UploadMissingError("no upload store is configured")
        return self._store


def _row_error(line: int, rid: str | None, field: str, message: str) -> dict[str, Any]:
    return {"line": line, "email_recipient_id": rid, "field": field, "message": message}


def _file_error(message: str, line: int) -> dict[str, Any]:
    return _row_error(line, None, "file", message)
