"""Pages for looking at what the local stack sent. Registered only by ``make run``.

``app.py`` imports this module only when ``MMMS_DEV_ROUTES=1``, which no deployed stage
sets (and this package is not part of the Lambda bundle), so these routes never exist on
AWS. They are public because they only ever listen on the developer's machine.
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from chalice.app import Response
from jinja2 import Environment
from pydantic import Field

from chalicelib.bootstrap import container
from chalicelib.errors import NotFoundError
from chalicelib.http.context import RequestContext
from chalicelib.http.responses import success
from chalicelib.http.routing import Auth, Router
from chalicelib.models.common import RequestModel
from chalicelib.providers.capture import (
    captured_bytes,
    captured_ids,
    envelope_recipients,
    list_captured,
    read_captured,
)
from mmms_local.local_queue import LocalQueue

_pages = Environment(autoescape=True)

_LAYOUT = _pages.from_string("""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{ title }} · MMMS outbox</title><style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f6f6}
iframe{width:100%;height:28rem;border:1px solid #ccc}pre{background:#f6f6f6;padding:1rem;
white-space:pre-wrap}.sent,.delivered{color:#087f23}.failed,.bounced,.complained,.suppressed,.cancelled{
color:#b00020}.queued,.soft_bounced,.delayed,.auto_reply{color:#8a6d00}
</style></head><body><h1>{{ title }}</h1>{{ body }}</body></html>""")

_INDEX = _pages.from_string("""
<p>Emails the <code>capture</code> provider stored in <code>{{ folder }}</code>, newest
first. JSON: <a href="/v1/dev/outbox">/v1/dev/outbox</a>,
<a href="/v1/dev/results">/v1/dev/results</a>.</p>
<table><tr><th>Date</th><th>To</th><th>Subject</th><th>Status</th><th>Size</th></tr>
{% for m in messages %}<tr><td>{{ m.date }}</td><td>{{ m.to }}</td>
<td><a href="/v1/dev/outbox/{{ m.id }}">{{ m.subject }}</a></td>
<td class="{{ m.status }}">{{ m.status or "" }}</td><td>{{ m.size }} B</td></tr>
{% else %}<tr><td colspan="5">Nothing captured yet.</td></tr>{% endfor %}</table>
<p>{{ count }} captured.{% if next_before %}
<a href="/v1/dev?before={{ next_before }}">Older →</a>{% endif %}</p>
<h2>Result queue</h2><table><tr><th>Email</th><th>Recipient</th><th>Status</th>
<th>Provider</th><th>Error</th></tr>{% for r in results %}<tr><td>{{ r.email_id }}</td>
<td>{{ r.recipient }}</td><td class="{{ r.status }}">{{ r.status }}</td>
<td>{{ r.result.provider }}</td><td>{{ r.result.last_error or "" }}</td></tr>
{% else %}<tr><td colspan="5">No results yet.</td></tr>{% endfor %}</table>""")

_MESSAGE = _pages.from_string("""
<p><a href="/v1/dev">← outbox</a></p>
{% if delivery %}<h2>Status: <span class="{{ delivery.status }}">{{ delivery.status }}</span></h2>
<p>Email <code>{{ delivery.email_id }}</code>,
recipient <code>{{ delivery.email_recipient_id }}</code>
{% if delivery.test_mode %}(test key){% endif %}</p>
<table><tr><th>Event</th><th>At</th><th>Provider</th><th>Detail</th></tr>
{% for e in events %}<tr><td class="{{ e.type }}">{{ e.type }}</td>
<td>{{ e.at.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3] }}Z</td>
<td>{{ e.provider or "" }}</td><td>{{ e.detail or "" }}</td></tr>{% endfor %}</table>
{% endif %}<h2>Message</h2>
<p><a href="/v1/dev/outbox/{{ capture_id }}/eml">Download .eml</a></p><table>
{% for name, value in headers %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}
<tr><th>Envelope to</th><td>{{ envelope | join(", ") }}</td></tr></table>
<h2>HTML part</h2>{% if html %}<iframe sandbox srcdoc="{{ html }}"></iframe>
{% else %}<p>None.</p>{% endif %}
<h2>Text part</h2><pre>{{ text or "None." }}</pre>
<h2>Attachments</h2><table><tr><th>File</th><th>Type</th><th>Size</th></tr>
{% for a in attachments %}<tr><td>{{ a.filename }}</td><td>{{ a.type }}</td>
<td>{{ a.size }} B</td></tr>{% else %}<tr><td colspan="3">None.</td></tr>{% endfor %}</table>""")

_SHOWN_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
)


def capture_dir() -> Path:
    return Path(os.environ.get("CAPTURE_DIR", ".mmms/outbox"))


def register_dev_routes(router: Router) -> None:
    router.app.api.binary_types.append(EML_TYPE)

    @router.route(
        "/v1/dev",
        "GET",
        summary="Local outbox and results (HTML), a page at a time",
        auth=Auth.PUBLIC,
        query_model=OutboxQuery,
    )
    def dev_index(ctx: RequestContext) -> Response:
        page = _outbox_page(ctx.query(OutboxQuery))
        body = _INDEX.render(folder=capture_dir(), results=_results()[:50], **page)
        return _html("Outbox", body)

    @router.route(
        "/v1/dev/outbox",
        "GET",
        summary="Captured emails (JSON), newest first, a page at a time",
        auth=Auth.PUBLIC,
        query_model=OutboxQuery,
    )
    def dev_outbox(ctx: RequestContext) -> Response:
        return success("Captured emails", _outbox_page(ctx.query(OutboxQuery)))

    @router.route(
        "/v1/dev/outbox/{capture_id}/eml",
        "GET",
        summary="One captured email as its raw .eml file",
        auth=Auth.PUBLIC,
        error_statuses=(404,),
    )
    def dev_outbox_eml(ctx: RequestContext, capture_id: str) -> Response:
        try:
            raw = captured_bytes(capture_dir(), capture_id)
        except (ValueError, FileNotFoundError) as err:
            raise NotFoundError(f"No captured email {capture_id!r}") from err
        return Response(
            body=raw,
            status_code=200,
            headers={
                "Content-Type": EML_TYPE,
                "Content-Disposition": f'attachment; filename="{capture_id}.eml"',
            },
        )

    @router.route(
        "/v1/dev/outbox/{capture_id}",
        "GET",
        summary="One captured email (HTML)",
        auth=Auth.PUBLIC,
        error_statuses=(404,),
    )
    def dev_outbox_message(ctx: RequestContext, capture_id: str) -> Response:
        try:
            message = read_captured(capture_dir(), capture_id)
        except (ValueError, FileNotFoundError) as err:
            raise NotFoundError(f"No captured email {capture_id!r}") from err
        found = container().delivery_status.by_message_ids([capture_id]).get(capture_id)
        history = container().status.history(found) if found else None
        page = _MESSAGE.render(
            **_parts(message),
            capture_id=capture_id,
            delivery=found,
            events=history.events if history else [],
        )
        return _html(str(message["Subject"] or "(no subject)"), page)

    @router.route("/v1/dev/results", "GET", summary="Result-queue reports (JSON)", auth=Auth.PUBLIC)
    def dev_results(ctx: RequestContext) -> Response:
        results = _results()
        return success("Result queue", {"count": len(results), "results": results})


EML_TYPE = "message/rfc822"


class OutboxQuery(RequestModel):
    limit: int = Field(default=50, ge=1, le=500)
    before: str | None = Field(
        default=None,
        max_length=40,
        pattern=r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}$",
        description="next_before of the previous page: messages captured before this one",
    )


def _outbox_page(query: OutboxQuery) -> dict[str, Any]:
    """One page of the outbox, newest first; only this page's files are read."""
    ids = captured_ids(capture_dir())  # the directory is listed once per page
    older = [i for i in ids if i < query.before] if query.before else ids
    messages = _with_status(list_captured(capture_dir(), limit=query.limit, ids=older))
    for message in messages:
        message["html_url"] = f"/v1/dev/outbox/{message['id']}"
        message["eml_url"] = f"/v1/dev/outbox/{message['id']}/eml"
    more = len(older) > query.limit
    return {
        "count": len(ids),
        "messages": messages,
        "next_before": messages[-1]["id"] if more and messages else None,
    }


def _with_status(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each captured message with its recipient's current status (None if not recorded)."""
    rows = container().delivery_status.by_message_ids([m["id"] for m in messages])
    for message in messages:
        row = rows.get(message["id"])
        message["status"] = row.status.value if row else None
        message["email_id"] = row.email_id if row else None
    return messages


def _results() -> list[dict[str, Any]]:
    queue = container().result_queue
    return queue.recent() if isinstance(queue, LocalQueue) else []


def _parts(message: EmailMessage) -> dict[str, Any]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return {
        "headers": [(name, str(message[name])) for name in _SHOWN_HEADERS if message[name]],
        "envelope": envelope_recipients(message),
        "html": html.get_content() if html is not None else None,
        "text": text.get_content() if text is not None else None,
        "attachments": [
            {
                "filename": part.get_filename(),
                "type": part.get_content_type(),
                "size": len(part.get_payload(decode=True) or b""),
            }
            for part in message.iter_attachments()
        ],
    }


def _html(title: str, body: str) -> Response:
    from markupsafe import Markup

    page = _LAYOUT.render(title=title, body=Markup(body))  # noqa: S704 - rendered above with autoescape
    return Response(
        body=page, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"}
    )
