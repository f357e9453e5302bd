"""Amazon SES events, as they arrive on the events queue.

SES publishes events for a configuration set to an SNS topic; the events queue subscribes
to it. A queue message is either the SNS envelope (``{"Type": "Notification", "Message":
"<JSON>", ...}``, the default) or the SES JSON itself (raw message delivery). Both of SES's
formats are understood:

- event publishing (``"eventType"``, configuration sets):
  https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
- identity notifications (``"notificationType"``):
  https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html

Mapping: Delivery → delivered; Bounce with ``bounceType`` Permanent → bounced, Transient or
Undetermined → soft_bounced; Complaint → complained; Reject and Rendering Failure → rejected;
DeliveryDelay → delayed; ``AutoReply`` (MMMS's simulator only, SES has no such event) →
auto_reply; events the simulator made (tag ``mmms:simulated``) show provider ``simulator``.
Send, Open, Click and Subscription are not lifecycle events: ignored. SNS
subscription confirmations never reach the queue with a message id: ignored as well.

The SNS signature is not checked here: only the configuration set's topic may send to the
events queue (its queue policy), so IAM is what authenticates these messages.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.events.common import (
    MalformedEventError,
    addresses,
    as_dict,
    digest_key,
    iso_time,
    text,
)
from chalicelib.models.lifecycle import EventKind, ProviderEvent
from chalicelib.providers.simulator import SIMULATED_TAG

PROVIDER = "ses"
_IGNORED = frozenset({"Send", "Open", "Click", "Subscription", "AmazonSnsSubscriptionSucceeded"})


def unwrap_sns(body: str) -> dict[str, Any]:
    """The SES JSON inside a queue message: SNS-wrapped or raw."""
    try:
        outer = json.loads(body)
    except ValueError as err:
        raise MalformedEventError("not JSON") from err
    if not isinstance(outer, dict):
        raise MalformedEventError("not a JSON object")
    if outer.get("Type") in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        if outer["Type"] != "Notification":
            return {}
        try:
            inner = json.loads(str(outer.get("Message", "")))
        except ValueError as err:
            raise MalformedEventError("SNS Message is not JSON") from err
        if not isinstance(inner, dict):
            raise MalformedEventError("SNS Message is not a JSON object")
        return inner
    return outer


def parse_ses_message(body: str) -> list[ProviderEvent]:
    """The lifecycle events in one events-queue message ([] for ignored kinds)."""
    ses = unwrap_sns(body)
    if not ses:
        return []
    kind = ses.get("eventType") or ses.get("notificationType")
    if not isinstance(kind, str):
        raise MalformedEventError("neither eventType nor notificationType")
    if kind in _IGNORED:
        return []
    mail = as_dict(ses.get("mail"))
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedEventError("mail.messageId is missing")
    parser = _PARSERS.get(kind)
    if parser is None:
        return []
    event_kind, section, recipients, detail = parser(ses)
    simulated = SIMULATED_TAG in as_dict(mail.get("tags"))
    return [
        ProviderEvent(
            provider="simulator" if simulated else PROVIDER,
            message_id=message_id,
            kind=event_kind,
            at=iso_time(section.get("timestamp") or mail.get("timestamp")),
            event_key=digest_key(f"ses:{kind}", ses),
            recipients=recipients,
            detail=detail,
        )
    ]


Parsed = tuple[EventKind, dict[str, Any], tuple[str, ...], str | None]


def _delivery(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("delivery"))
    return (
        EventKind.DELIVERED,
        section,
        addresses(section.get("recipients")),
        text(section.get("smtpResponse")),
    )


def _bounce(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("bounce"))
    bounced = section.get("bouncedRecipients")
    kind = EventKind.BOUNCED if section.get("bounceType") == "Permanent" else EventKind.SOFT_BOUNCED
    first = as_dict(bounced[0]) if isinstance(bounced, list) and bounced else {}
    parts = [
        f"{section.get('bounceType', 'Undetermined')}/{section.get('bounceSubType', 'General')}",
        str(first.get("diagnosticCode") or first.get("status") or ""),
    ]
    return kind, section, addresses(bounced), text(": ".join(p for p in parts if p))


def _complaint(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("complaint"))
    feedback = section.get("complaintFeedbackType") or section.get("complaintSubType")
    return (
        EventKind.COMPLAINED,
        section,
        addresses(section.get("complainedRecipients")),
        text(feedback or "complaint"),
    )


def _reject(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("reject") or ses.get("failure"))
    reason = section.get("reason") or section.get("errorMessage")
    return EventKind.REJECTED, section, (), text(reason or "rejected by SES")


def _delay(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("deliveryDelay"))
    return (
        EventKind.DELAYED,
        section,
        addresses(section.get("delayedRecipients")),
        text(section.get("delayType")),
    )


def _auto_reply(ses: dict[str, Any]) -> Parsed:
    section = as_dict(ses.get("autoReply"))
    return (
        EventKind.AUTO_REPLY,
        section,
        addresses(section.get("recipients")),
        text(section.get("detail") or "out-of-office auto-reply"),
    )


_PARSERS = {
    "Delivery": _delivery,
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Reject": _reject,
    "Rendering Failure": _reject,
    "DeliveryDelay": _delay,
    "AutoReply": _auto_reply,
}
