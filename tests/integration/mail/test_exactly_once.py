"""Two senders racing for the same recipient: one email."""

from __future__ import annotations

import threading
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


class GatedProvider(FakeProvider):
    """Holds the first send until ``release`` is set (``started`` says it is held); any
    other send goes through at once."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.started = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutgoingMessage) -> SendResult:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(timeout=10), "the test never released the send"
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
    provider = GatedProvider()
    services = wire(sender=provider)
    key = uuid.uuid4()
    job = recorded_job(services, "race", key=key)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(lambda: services.delivery.deliver(job).kind)
        assert provider.started.wait(timeout=10)  # the first sender is inside the send
        while_sending = [services.delivery.deliver(job).kind for _ in range(3)]
        provider.release.set()
        sent = first.result(timeout=10)
    afterwards = services.delivery.deliver(job).kind

    assert sent is Outcome.SENT
    assert while_sending == [Outcome.BUSY] * 3  # the lease is held: nobody else sends
    assert afterwards is Outcome.DONE
    assert len(provider.sent) == 1
    assert services.deliveries.find(key, "race", "r").status.value == "sent"


def test_a_record_another_sender_holds_is_not_given_up_at_the_last_receive(wire: Wire) -> None:
    services = wire(sender=FakeProvider("fake"))
    job = recorded_job(services, "held", key=None)
    assert lease(services.leases, (None, "held", "r")) is not None

    report = services.consumer.process_batch(
        [QueueRecord("m-1", job.model_dump_json(), "handle-1", receive_count=3)]
    )

    assert [record.message_id for record, _ in report.retry] == ["m-1"]
    assert services.deliveries.find(None, "held", "r").status.value == "queued"
