"""Path parameters: what each one accepts once it is percent-decoded.

API Gateway's REST API (and Chalice's local server) hand a view its path parameters exactly as
they were in the URL, percent-encoded: ``/v1/suppressions/a%2Bb%40x.org`` arrives as
``a%2Bb%40x.org``. The router (``chalicelib/http/routing.py``) decodes them once, as UTF-8,
and validates them here before any view sees them; the OpenAPI document states these same
schemas. A parameter means the same thing on every route, so the types are looked up by name;
a name not listed gets :data:`PathText`.

No parameter may hold NUL (PostgreSQL cannot store it: a 422, never a database error). Each has
a length bound: nothing longer can exist, and the answer is a 422 naming it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, create_model

from chalicelib.models.mail import MAX_ID_LENGTH

# Taken as given: no stripping, so the schema's lengths are the service's.
NO_NUL = r"^[^\x00]+$"
MAX_PATH_TEXT = 1024
MAX_ADDRESS_LENGTH = 320


def _text(max_length: int) -> Any:
    constraints = StringConstraints(
        strip_whitespace=False, min_length=1, max_length=max_length, pattern=NO_NUL
    )
    return Annotated[str, constraints]


PathText = _text(MAX_PATH_TEXT)
PATH_PARAMETERS: dict[str, tuple[Any, str]] = {
    "api_key": (
        _text(MAX_ID_LENGTH),
        "The key itself (ak_...) or its key_id",
    ),
    "email_id": (
        _text(MAX_ID_LENGTH),
        "The email_id it was posted with, percent-encoded as UTF-8 (encodeURIComponent)",
    ),
    "email_recipient_id": (
        _text(MAX_ID_LENGTH),
        "The recipient's emailRecipientId (its address when it was posted without one),"
        " percent-encoded as UTF-8",
    ),
    "template_id": (
        _text(MAX_ID_LENGTH),
        "The stored template's id (tpl_...)",
    ),
    "address": (
        _text(MAX_ADDRESS_LENGTH),
        "The address, in any case, percent-encoded as UTF-8 (a+b%40example.org)",
    ),
}
_NAMES = re.compile(r"{(\w+)\+?}")
_MODELS: dict[str, type[BaseModel]] = {}


class PathModel(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


def parameter_names(path: str) -> list[str]:
    """``/v1/mail/{email_id}/recipients/{email_recipient_id}`` → its parameter names."""
    return _NAMES.findall(path)


def description_of(name: str) -> str:
    return PATH_PARAMETERS.get(name, (PathText, "Percent-encoded as UTF-8"))[1]


def path_model(path: str) -> type[BaseModel]:
    """The model of ``path``'s parameters (one class per route template, built once)."""
    if path not in _MODELS:
        fields: dict[str, Any] = {
            name: (PATH_PARAMETERS.get(name, (PathText, ""))[0], ...)
            for name in parameter_names(path)
        }
        name = "Path_" + "_".join(parameter_names(path) or ["none"])
        _MODELS[path] = create_model(name, __base__=PathModel, **fields)
    return _MODELS[path]
