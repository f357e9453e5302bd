"""Stored templates (SPEC 12) and the ``params`` that fill their placeholders.

A stored template is an email's subject, HTML and optional text, kept on the service under a
``tpl_`` id, so a browser key can be limited to sending template ids and parameters instead
of content. Each ``PUT`` makes a new immutable version; a message renders the version it
was accepted with.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from chalicelib.models.common import JSON_INTEGER, NOT_BLANK, RequestModel, UtcDatetime

TEMPLATE_ID_PATTERN = r"^tpl_[a-z0-9]{16}$"
TemplateId = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=20, max_length=20),
    Field(pattern=TEMPLATE_ID_PATTERN),
]

# The placeholders every message has (the recipient's and the sender's fields): params may
# not reuse them, so a parameter can never stand in for an address.
BUILT_IN_PLACEHOLDERS = (
    "name",
    "mail",
    "company",
    "emailRecipientId",
    "sender_name",
    "sender_email",
    "sender_organisation_name",
)
MAX_PARAMS = 50
MAX_PARAM_VALUE_CHARS = 10 * 1024
PARAM_NAME_PATTERN = rf"^(?!(?:{'|'.join(BUILT_IN_PLACEHOLDERS)})$)[A-Za-z_][A-Za-z0-9_]{{0,63}}$"


def _params_schema(schema: dict[str, Any]) -> None:
    """Every key matches the pattern and every value is a string (pydantic would write
    patternProperties, which says nothing of keys that do not match)."""
    values = schema.pop("patternProperties", {}).get(PARAM_NAME_PATTERN, {"type": "string"})
    schema["additionalProperties"] = values
    schema["propertyNames"] = {"pattern": PARAM_NAME_PATTERN}


ParamName = Annotated[
    str, StringConstraints(strip_whitespace=False, max_length=64), Field(pattern=PARAM_NAME_PATTERN)
]
ParamValue = Annotated[
    str, StringConstraints(strip_whitespace=False, max_length=MAX_PARAM_VALUE_CHARS)
]
Params = Annotated[
    dict[ParamName, ParamValue],
    Field(max_length=MAX_PARAMS, json_schema_extra=_params_schema),
]

TemplateName = Annotated[
    str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK})
]
TemplateText = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": NOT_BLANK})]


class TemplateRequest(RequestModel):
    """POST /v1/templates (version 1) and PUT /v1/templates/{id} (the next version)."""

    name: TemplateName
    subject: Annotated[
        str,
        Field(min_length=1, max_length=998, json_schema_extra={"pattern": r"^[^\r\n]*\S[^\r\n]*$"}),
    ]
    html: TemplateText
    text: TemplateText | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    sample_params: Params = Field(
        default_factory=dict,
        description="Values the template is rendered with when saved (and previewed)",
    )


class TemplateVersionQuery(RequestModel):
    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Default: latest")


class TemplateOut(BaseModel):
    template_id: str
    name: str
    version: int
    subject: str
    html: str
    text: str | None
    description: str | None
    sample_params: dict[str, str]
    params: list[str] = Field(description="The placeholders it uses beyond the built-ins")
    created_at: UtcDatetime


class TemplateList(BaseModel):
    templates: list[TemplateOut] = Field(description="Latest version of each template")
    next_cursor: str | None


class TemplateArchived(BaseModel):
    template_id: str
    archived: bool


class PreviewRecipient(RequestModel):
    name: Annotated[str, Field(max_length=200)] | None = None
    mail: Annotated[str, Field(max_length=254)] | None = None
    company: Annotated[str, Field(max_length=200)] | None = None
    emailRecipientId: Annotated[str, Field(max_length=200)] | None = None


class PreviewRequest(RequestModel):
    params: Params = Field(default_factory=dict)
    recipient: PreviewRecipient = Field(default_factory=PreviewRecipient)
    version: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_INTEGER] | None = None


class TemplatePreview(BaseModel):
    subject: str
    html: str
    text: str
