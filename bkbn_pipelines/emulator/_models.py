"""Request and response bodies of the API, as pydantic models for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._contract import STYLES
from .._errors import InvalidParamsError
from .._floor_plan import check_floor_plan

__all__ = [
    "BrochureParams",
    "BrochureRequest",
    "ErrorDetail",
    "ErrorResponse",
    "FloorPlanParams",
    "FloorPlanRequest",
    "ImageParams",
    "RunResult",
    "RunStatus",
    "StagingParams",
    "StagingRequest",
    "TokenRequest",
    "TokenResponse",
    "Usage",
    "WorkflowRunRequest",
]

Style = Literal["scandi-warm", "modern-neutral", "mid-century", "coastal", "industrial", "japandi"]
assert set(Style.__args__) == set(STYLES)
RoomType = Literal["living", "bedroom", "kitchen", "dining", "office", "bathroom"]
Resolution = Literal["1k", "2k", "4k"]
URL_DOC = "an https: URL from an allowed host, an s3: URL, a data: URI, or a result file URL"
#: An empty zip as a data: URI (a real capture bundle is larger; see docs/capture-bundle.md).
EXAMPLE_BUNDLE = "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="
#: An 8x6 PNG as a data: URI: the example input of the OpenAPI document.
EXAMPLE_PHOTO = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAGCAIAAABxZ0isAAAAFElEQVR4nGPc0pPCgA0"
    "wYRWlkwQA9zoBsFK6LCQAAAAASUVORK5CYII="
)

_STRICT = ConfigDict(extra="forbid")


class StagingParams(BaseModel):
    """Parameters of the ``staging`` graph."""

    model_config = _STRICT

    style: Style
    room_type: RoomType | None = None
    keep_geometry: bool = True
    resolution: Resolution = "1k"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class ImageParams(BaseModel):
    """Parameters of ``relight`` and ``declutter``; other keys go to the graph as given."""

    model_config = ConfigDict(extra="allow")

    resolution: Resolution | None = None
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class FloorPlanParams(BaseModel):
    model_config = _STRICT

    units: Literal["metric", "imperial"] = "metric"


class BrochureParams(BaseModel):
    model_config = _STRICT

    listing: dict[str, Any]
    photos: list[str] = Field(
        min_length=1, max_length=50, description=URL_DOC, examples=[[EXAMPLE_PHOTO]]
    )
    template: str | None = None
    max_photos: int | None = Field(None, ge=1, le=24, description="photos the storyboard keeps")
    photo_names: list[str] | None = Field(None, description="names for error messages")
    floor_plan: dict[str, Any] | None = Field(
        None,
        description="this project's extension: the plan JSON of the floor-plan graph "
        "(rooms with polygon, label and area_m2; walls; openings), drawn on a page of its own",
    )

    @field_validator("floor_plan")
    @classmethod
    def _plan_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """The runtime's own check; the plan goes on to the graph as it was given."""
        if value is not None:
            try:
                check_floor_plan(value, "floor_plan")
            except InvalidParamsError as exc:
                raise ValueError(str(exc)) from None
        return value


class WorkflowRunRequest(BaseModel):
    """``POST /v1/workflows/{name}/run``; ``input`` may be left out for ``brochure``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"input": EXAMPLE_PHOTO, "params": {}}]}
    )

    input: str | None = Field(None, description=URL_DOC, examples=[EXAMPLE_PHOTO])
    params: dict[str, Any] = Field(default_factory=dict)


class StagingRequest(StagingParams):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"image": EXAMPLE_PHOTO, "style": "scandi-warm", "resolution": "1k"}]
        },
    )

    image: str = Field(description=URL_DOC, examples=[EXAMPLE_PHOTO])


class FloorPlanRequest(FloorPlanParams):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"video": EXAMPLE_BUNDLE, "units": "metric"}]},
    )

    video: str = Field(description="the walk-through capture bundle: " + URL_DOC)


class BrochureRequest(BrochureParams):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"listing": {"address": "1 Rue Claire"}, "photos": [EXAMPLE_PHOTO]}]
        },
    )


class TokenRequest(BaseModel):
    """``POST /v1/oauth/token``: ``client_credentials`` or ``jwt-bearer``."""

    grant_type: str = Field(
        description="client_credentials or urn:ietf:params:oauth:grant-type:jwt-bearer"
    )
    client_id: str | None = None
    client_secret: str | None = Field(None, json_schema_extra={"format": "password"})
    assertion: str | None = Field(None, description="a signed JWT (jwt-bearer grant)")
    federation_rule_id: str | None = None
    scope: str | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    code: str | None = Field(None, description="RFC 6749 error code, token endpoint only")


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None


class Usage(BaseModel):
    tokens: int


class RunResult(BaseModel):
    """The ``result`` of a run; graphs add their own fields (``width``, ``plan``, ``parts``)."""

    model_config = ConfigDict(extra="allow")

    url: str
    ms: int
    usage: Usage
    graph: str
    outputs: dict[str, str]
    renderer: str | None = None
    weights: str | None = None


class RunStatus(BaseModel):
    id: str
    graph: str
    status: Literal["queued", "running", "succeeded", "failed"]
    created_at: float
    events: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
