"""The send step of delivery: render each leased recipient's message and hand it to a
provider, ``concurrency`` at a time, on threads kept between batches.

Each send ends as an :class:`Attempt`: the provider's answer and the row's settlement
(``sent``; ``failed`` for a rejection or an un-renderable message, never retried; ``queued``
again when no provider is available), or no settlement at all for an unexpected error (the
lease keeps others off the row until it expires, and the recipient is retried then). One
recipient's failure never takes the batch down.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from chalicelib.errors import MessageRejectedError, ProviderUnavailableError
from chalicelib.models.mail import DeliveryState, ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.repositories.delivery_rows import Delivery
from chalicelib.repositories.send_leases import Settlement
from chalicelib.services.messages import render_message, with_message_id
from chalicelib.services.render_budget import RenderBudget, RenderMeter
from chalicelib.services.templates import TemplateRenderError

log = logging.getLogger("mmms.delivery")


class MailSender(Protocol):
    """What delivery needs of the provider chain."""

    def send(self, message: OutgoingMessage) -> SendResult: ...


@dataclass(frozen=True)
class Attempt:
    """One leased recipient's send: the provider's answer, or why there is none."""

    claimed: Delivery
    result: SendResult | None = None
    settlement: Settlement | None = None  # None: nothing to write (an unexpected error)
    error: str | None = None


Leased = tuple[ProcessingMessage, Delivery, Future[OutgoingMessage] | None]
"""A job whose row this sender holds, with its message if it is being rendered ahead."""


class SendPipeline:
    """Renders and sends leased recipients (see the module doc).

    ``test_sender`` sends the recipients of test keys (the simulator), whatever ``sender``
    is; ``concurrency`` bounds the sends in flight (threads started once, kept between
    batches: starting ten threads per batch cost 2 ms of every 50).
    """

    def __init__(
        self,
        sender: MailSender,
        test_sender: MailSender,
        render_budget: RenderBudget,
        concurrency: int,
    ) -> None:
        self._sender = sender
        self._test_sender = test_sender
        self._render_budget = render_budget
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Stop the send threads (they start again if needed)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _send_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="mmms-send"
                )
            return self._pool

    def render_ahead(self, jobs: list[ProcessingMessage]) -> dict[int, Future[OutgoingMessage]]:
        """Start rendering a batch's messages on the send threads, so they are ready when the
        rows' lease comes back (the lease statement waits on the network; rendering does not
        have to wait with it). A batch of one renders when it sends."""
        if len(jobs) <= 1:
            return {}
        pool = self._send_pool()
        return {
            index: pool.submit(render_message, job, RenderMeter(self._render_budget))
            for index, job in enumerate(jobs)
        }

    def attempt_all(self, leased: dict[int, Leased]) -> dict[int, Attempt]:
        """Send every leased recipient, ``concurrency`` at a time."""
        if len(leased) <= 1:
            return {index: self.attempt(*item) for index, item in leased.items()}
        attempts = self._send_pool().map(lambda item: self.attempt(*item), leased.values())
        return dict(zip(leased, attempts, strict=True))

    def attempt(
        self,
        job: ProcessingMessage,
        claimed: Delivery,
        rendering: Future[OutgoingMessage] | None = None,
    ) -> Attempt:
        """One recipient's send (rendered now, or ahead in ``rendering``); never raises."""
        try:
            rendered = (
                rendering.result()
                if rendering is not None
                else render_message(job, RenderMeter(self._render_budget))
            )
            message = with_message_id(rendered, job, claimed)
        except TemplateRenderError as err:
            return Attempt(claimed, settlement=failed(claimed, str(err), "template_error"))
        except Exception as err:
            log.exception("could not build a message", extra={"delivery_id": str(claimed.id)})
            return Attempt(claimed, error=f"unexpected error: {err}")
        sender = self._test_sender if claimed.test_mode else self._sender
        try:
            result = sender.send(message)
        except ProviderUnavailableError as err:
            log.warning(
                "no provider available", extra={"delivery_id": str(claimed.id), "error": str(err)}
            )
            released = Settlement(claimed, DeliveryState.QUEUED, error=str(err))
            return Attempt(claimed, settlement=released, error=str(err))
        except MessageRejectedError as err:
            return Attempt(claimed, settlement=failed(claimed, str(err), "rejected", err.provider))
        except Exception as err:
            log.exception("unexpected send failure", extra={"delivery_id": str(claimed.id)})
            return Attempt(claimed, error=f"unexpected error: {err}")
        sent = Settlement(
            claimed, DeliveryState.SENT, provider=result.provider, message_id=result.message_id
        )
        return Attempt(claimed, result=result, settlement=sent)


def failed(held: Delivery, error: str, detail: str, provider: str | None = None) -> Settlement:
    """A leased row failed for good (never retried)."""
    return Settlement(held, DeliveryState.FAILED, provider=provider, error=error, detail=detail)
