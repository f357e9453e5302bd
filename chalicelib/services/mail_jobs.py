"""A ``POST /v1/mail`` request turned into one processing message (job) per recipient, each
rendered under the request's budget before anything is recorded.

The templates come from the request (inline) or from a stored template's version
(:class:`TemplateSource`): either way each job carries the content it renders, so a message
accepted before a new version or an archive still renders what it was accepted with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.errors import PayloadTooLargeError, RequestValidationError
from chalicelib.models.mail import MailFields, ProcessingMessage, SendMailRequest
from chalicelib.services.messages import compiled_templates, template_params, template_values
from chalicelib.services.render_budget import RenderMeter
from chalicelib.services.templates import TemplateLimitError, TemplateRenderError


@dataclass(frozen=True)
class TemplateSource:
    """The templates an email renders: inline ones, or a stored template's version."""

    subject: str
    html: str
    text: str | None
    template_id: str | None = None
    version: int | None = None

    @classmethod
    def inline(cls, request: MailFields) -> TemplateSource:
        return cls(request.subject or "", request.html_template or "", request.text_template)


def build_jobs(
    api_key_id: uuid.UUID,
    request: SendMailRequest,
    queued_at: datetime,
    source: TemplateSource | None = None,
) -> list[ProcessingMessage]:
    """One processing message per recipient (from an already validated request), rendering
    ``source`` (default: the request's inline templates)."""
    source = source or TemplateSource.inline(request)
    single = len(request.recipients) == 1
    common = email_fields(api_key_id, request, queued_at, source)
    jobs = [
        # Validated already as part of the request: constructing skips a second validation.
        ProcessingMessage.model_construct(
            **common,
            email_recipient_id=recipient.emailRecipientId
            or (request.emailRecipientId if single else None)
            or recipient.mail.lower(),
            recipient_name=recipient.name,
            recipient_email=recipient.mail,
            recipient_company=recipient.company,
            recipient_params=recipient.params,
        )
        for recipient in request.recipients
    ]
    refuse_duplicates(jobs)
    return jobs


def email_fields(
    api_key_id: uuid.UUID, request: MailFields, queued_at: datetime, source: TemplateSource
) -> dict[str, Any]:
    """What every recipient's processing message of ``request``'s email carries (a campaign's
    recipients' too: ``MailFields`` is ``POST /v1/mail`` without the recipients)."""
    return {
        "email_id": request.email_id,
        "client_env_id": request.client_env_id,
        "sender_email": request.sender_email,
        "sender_name": request.sender_name,
        "sender_organisation_name": request.sender_organisation_name,
        "subject": source.subject,
        "html_template": source.html,
        "text_template": source.text,
        "template_id": source.template_id,
        "template_version": source.version,
        "params": request.params,
        "cc": request.cc,
        "bcc": request.bcc,
        "reply_to": request.reply_to,
        "attachments": request.attachments,
        "metadata": request.metadata,
        "list_unsubscribe": request.list_unsubscribe,
        "projectId": request.projectId,
        "closureId": request.closureId,
        "api_key_id": str(api_key_id),
        "queued_at": queued_at,
    }


def refuse_duplicates(jobs: list[ProcessingMessage]) -> None:
    seen: dict[str, int] = {}
    errors = []
    for index, job in enumerate(jobs):
        if job.recipient_id in seen:
            errors.append(
                {
                    "type": "duplicate_recipient",
                    "loc": ["recipients", index],
                    "msg": f"same recipient as recipients[{seen[job.recipient_id]}]"
                    f" ({job.recipient_id}); give each recipient its own emailRecipientId",
                    "input": job.recipient_id,
                }
            )
        seen.setdefault(job.recipient_id, index)
    if errors:
        raise RequestValidationError(errors, message="Duplicate recipients")


MAX_LISTED_FAILURES = 100


def render_all(jobs: list[ProcessingMessage], meter: RenderMeter) -> None:
    """Render every recipient's message; a 422 listing the recipients that fail (the first
    ``MAX_LISTED_FAILURES``, and how many there are: a template that fails for all of 10,000
    recipients is one problem, not a 10,000-entry answer).

    All renders share ``meter``: a template over its budget stops the request at once, with
    a 413 (the message is too large) or a 422 (it costs too much to make) naming the limit.
    """
    first = jobs[0]
    try:
        templates = compiled_templates(first.subject, first.html_template, first.text_template)
    except TemplateRenderError as err:
        raise RequestValidationError(
            [{"type": "template_error", "loc": [err.field], "msg": str(err), "input": None}],
            message="Templates could not be rendered",
        ) from err
    errors = []
    failed = 0
    for index, job in enumerate(jobs):
        try:
            templates.render(template_values(job), meter, template_params(job))
        except TemplateLimitError as err:
            raise _over_budget(err, index) from err
        except TemplateRenderError as err:
            failed += 1
            if failed <= MAX_LISTED_FAILURES:
                errors.append(
                    {
                        "type": "template_error",
                        "loc": ["recipients", index],
                        "msg": str(err),
                        "input": None,
                    }
                )
    if errors:
        shown = "" if failed == len(errors) else f" (the first {len(errors)} are listed)"
        raise RequestValidationError(
            errors,
            message=f"Templates could not be rendered for {failed} of {len(jobs)}"
            f" recipients{shown}",
        )


def check_templates(sample: ProcessingMessage, meter: RenderMeter) -> None:
    """Compile an email's templates (422 when one does not) and render them once for
    ``sample`` under ``meter`` (413/422 over the budget): what a campaign can check before
    its rows are known. A placeholder without a value is left to the rows (each is checked
    for the params its templates use)."""
    try:
        templates = compiled_templates(sample.subject, sample.html_template, sample.text_template)
    except TemplateRenderError as err:
        raise RequestValidationError(
            [{"type": "template_error", "loc": [err.field], "msg": str(err), "input": None}],
            message="Templates could not be rendered",
        ) from err
    try:
        templates.render(template_values(sample), meter, template_params(sample))
    except TemplateLimitError as err:
        raise _over_budget(err, None) from err
    except TemplateRenderError:
        pass


def _over_budget(
    err: TemplateLimitError, index: int | None
) -> PayloadTooLargeError | RequestValidationError:
    detail = {
        "type": "template_budget",
        "loc": ["recipients", index] if index is not None else ["html_template"],
        "msg": str(err),
        "input": None,
        "ctx": {"limit": err.setting},
    }
    if err.too_large:
        return PayloadTooLargeError(f"{err} ({err.setting})", details=[detail])
    return RequestValidationError([detail], message=f"Template over budget: {err.setting}")
