"""Two senders racing for the same recipient: one email."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from chalicelib.bootstrap import Container
from chalicelib.models.mail import ProcessingMessage
from chalicelib.providers.base import OutgoingMessage, SendResult
from chalicelib.queues.base import QueueRecord
from chalicelib.services.delivery import Outcome
from chalicelib.services.messages import new_delivery
from tests.integration.mail.conftest import SENDER, Wire
from tests.support.fake_providers import FakeProvider
from tests.support.recording import lease


class SlowProvider(FakeProvider):
    """Takes a while to answer, so that a second sender arrives meanwhile."""

    def __init__(self) -> None:
        super().__init__("slow")
        self.started = threading.Event()

    def send(self, message: OutgoingMessage) -> SendResult:
        self.started.set()
        time.sleep(0.3)
        return super().send(message)


def recorded_job(services: Container, email_id: str, key: uuid.UUID | None) -> ProcessingMessage:
    """A one-recipient processing message whose delivery row is recorded."""
    job = ProcessingMessage(
        email_id=email_id,
        email_recipient_id="r",
        sender_email=SENDER,
        subject="s",
        html_template="<p>hi</p>",
        recipient_email="r@example.org",
        api_key_id=str(key) if key else None,
    )
    services.deliveries.insert_new(key, [new_delivery(job)])
    return job


def test_concurrent_senders_send_once(wire: Wire) -> None:
    provider = SlowProvider()
    services = wire(sender=provider)
    job = recorded_job(services, "race", key=uuid.uuid4())

    def attempt() -> Outcome:
        return services.delivery.deliver(job).kind

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(4)))

    assert len(provider.sent) == 1
    assert outcomes.count(Outcome.SENT) == 1
    assert set(outcomes) <= {Outcome.SENT, Outcome.BUSY, Outcome.DONE}


def test_a_record_another_sender_holds_is_not_given_up_at_the_last_receive(wire: Wire) -> None:
    services = wire(sender=FakeProvider("fake"))
    job = recorded_job(services, "held", key=None)
    assert lease(services.leases, (None, "held", "r")) is not None

    report = services.consumer.process_batch(
        [QueueRecord("m-1", job.model_dump_json(), "handle-1", receive_count=3)]
    )

    assert [record.message_id for record, _ in report.retry] == ["m-1"]
    assert services.deliveries.find(None, "held", "r").status.value == "queued"
