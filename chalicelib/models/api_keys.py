"""Request and response bodies of the API key endpoints (field names as in the seed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator

from chalicelib.models.common import NOT_BLANK, RequestModel, UtcDatetime
from chalicelib.services.origins import ORIGIN_NAME_PATTERN, normalize_origin_name

OriginName = Annotated[
    str,
    Field(min_length=1, max_length=253, json_schema_extra={"pattern": ORIGIN_NAME_PATTERN}),
    AfterValidator(normalize_origin_name),
]


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class CreateApiKeyRequest(RequestModel):
    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK})
    origin_names: Annotated[list[OriginName], AfterValidator(_unique)] = Field(max_length=100)
    expires_at: AwareDatetime | None = None
    mode: Literal["live", "test"] = Field(
        default="live",
        description="test: an ak_test_ key whose emails only ever reach the simulator",
    )

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return value


class AddOriginsRequest(RequestModel):
    origin_names: Annotated[list[OriginName], AfterValidator(_unique)] = Field(
        min_length=1, max_length=100
    )


class OriginOut(BaseModel):
    name: str
    created_at: UtcDatetime


class ApiKeyCreated(BaseModel):
    key_id: str
    name: str
    api_key: str = Field(description="Shown once; only its hash is stored.")
    is_active: bool
    created_at: UtcDatetime
    origins: list[OriginOut]
    expires_at: UtcDatetime | None


class ApiKeyDeleted(BaseModel):
    deleted: bool
    api_key: str


class OriginsAdded(BaseModel):
    api_key: str
    added_origins: list[OriginOut]
