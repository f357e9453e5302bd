"""The mailbox simulator: SES's simulator addresses, without sending anything.

Test keys (``ak_test_``) send only through :class:`SimulatorProvider`, and the local capture
provider simulates the same outcomes, so the whole lifecycle can be watched on one machine.
For each ``To`` recipient the send produces the events SES would publish (event-publishing
format, see ``chalicelib/events/ses.py``), returned as ``SendResult.follow_up``:

=====================================  =========================================================
``success@simulator.amazonses.com``    Delivery
``bounce@…``                           Bounce, Permanent/General (→ bounced)
``complaint@…``                        Delivery, then Complaint (→ delivered, then complained)
``ooto@…``                             Delivery, then AutoReply (an MMMS event: SES sends the
                                       out-of-office answer to the sender instead)
``suppressionlist@…``                  Bounce, Permanent/OnAccountSuppressionList (→ bounced)
any other address                      Delivery
=====================================  =========================================================

A ``+label`` (``bounce+newsletter@simulator.amazonses.com``) is allowed, as SES allows it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.providers.base import OutgoingMessage, SendResult

SIMULATOR_DOMAIN = "simulator.amazonses.com"
# Marks simulated events (``mail.tags``): their provider shows as ``simulator``, not ``ses``.
SIMULATED_TAG = "mmms:simulated"


def simulated_events(message: OutgoingMessage, message_id: str) -> tuple[str, ...]:
    """The SES events (JSON) the simulator produces for ``message`` sent as ``message_id``."""
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for recipient in message.to:
        address = recipient.email
        mail = {
            "timestamp": _iso(now),
            "source": message.sender.email,
            "messageId": message_id,
            "destination": [address],
            "tags": {**{key: [value] for key, value in message.tags.items()}, SIMULATED_TAG: ["1"]},
        }
        for step, (kind, section) in enumerate(_outcome(address, now)):
            events.append({"eventType": kind, "mail": mail, **section})
            now += timedelta(milliseconds=step + 1)
    return tuple(json.dumps(event) for event in events)


def simulator_mailbox(address: str) -> str | None:
    """``bounce`` for ``bounce+x@simulator.amazonses.com``; None for other domains."""
    local, _, domain = address.lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return None
    return local.split("+", 1)[0]


def _outcome(address: str, at: datetime) -> list[tuple[str, dict[str, Any]]]:
    mailbox = simulator_mailbox(address)
    delivered = (
        "Delivery",
        {
            "delivery": {
                "timestamp": _iso(at),
                "recipients": [address],
                "smtpResponse": "250 2.6.0 Message received",
                "processingTimeMillis": 1,
            }
        },
    )
    later = at + timedelta(seconds=1)
    if mailbox in ("bounce", "suppressionlist"):
        on_list = mailbox == "suppressionlist"
        return [
            (
                "Bounce",
                {
                    "bounce": {
                        "bounceType": "Permanent",
                        "bounceSubType": "OnAccountSuppressionList" if on_list else "General",
                        "bouncedRecipients": [
                            {
                                "emailAddress": address,
                                "action": "failed",
                                "status": "5.1.1",
                                "diagnosticCode": "Amazon SES did not send the message: the"
                                " address is on the suppression list"
                                if on_list
                                else "smtp; 550 5.1.1 user unknown",
                            }
                        ],
                        "timestamp": _iso(at),
                        "feedbackId": f"sim-{uuid.uuid4()}",
                    }
                },
            )
        ]
    if mailbox == "complaint":
        complaint = {
            "complaint": {
                "complainedRecipients": [{"emailAddress": address}],
                "timestamp": _iso(later),
                "feedbackId": f"sim-{uuid.uuid4()}",
                "complaintFeedbackType": "abuse",
            }
        }
        return [delivered, ("Complaint", complaint)]
    if mailbox == "ooto":
        reply = {
            "autoReply": {
                "timestamp": _iso(later),
                "recipients": [address],
                "detail": "out-of-office auto-reply sent to the sender",
            }
        }
        return [delivered, ("AutoReply", reply)]
    return [delivered]


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SimulatorProvider:
    """Sends nothing; every message is accepted with a ``sim-`` id and simulated events."""

    name = "simulator"

    def send(self, message: OutgoingMessage) -> SendResult:
        message_id = f"sim-{uuid.uuid4()}"
        return SendResult(
            provider=self.name,
            message_id=message_id,
            response={"MessageId": message_id, "simulated": True},
            follow_up=simulated_events(message, message_id),
        )

    def close(self) -> None:
        """Nothing is kept open."""
