"""The one error tree of ``bkbn_pipelines``.

Every error the package raises on purpose derives from :class:`BkbnError`::

    BkbnError
    ├── ConfigError                  bad or missing settings
    │   └── ModelNotFoundError       a model folder named in settings is missing
    ├── APIError                     talking to the Backbone Lab API
    │   ├── APIConnectionError       no answer: DNS, refused, reset, TLS
    │   │   └── APITimeoutError      connect, read or overall deadline passed
    │   ├── APIStreamError           the event stream broke its rules
    │   │   └── StreamEndedError     the stream ended without `result` or `error`
    │   ├── RunFailedError           the run ended with an `error` event
    │   ├── OAuthError               the token endpoint refused a grant
    │   └── APIStatusError           an HTTP error status, one class per status
    │       ├── BadRequestError          400 invalid_request_error
    │       ├── AuthenticationError      401 authentication_error
    │       ├── PermissionDeniedError    403 permission_error
    │       ├── NotFoundError            404 not_found_error
    │       ├── ConflictError            409
    │       ├── RequestTooLargeError     413 request_too_large
    │       ├── RateLimitError           429 rate_limit_error
    │       ├── InternalServerError      500 api_error (and other 5xx)
    │       └── OverloadedError          529 overloaded_error
    ├── GraphError                   the local graph runtime
    │   ├── UnknownGraphError        no graph of that name or version
    │   ├── InvalidParamsError       a parameter is missing or out of range
    │   ├── CaptureBundleError       a walk-through capture cannot be used
    │   └── RunCancelledError        the run was cancelled
    ├── MediaError                   a photo or file cannot be used
    │   ├── FetchError               download refused or failed
    │   └── PhotoRejectedError       decoded, but unusable (bomb, truncated, ...)
    ├── StorageError                 the media store failed
    ├── CatalogueError               the listing catalogue is unusable
    └── OutputRejectedError          a blocking asset check rejected a listing's output

Errors that concern one listing photo carry ``listing_id`` and ``photo`` and name
both in their message.  No error message ever contains a credential.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BkbnError",
    "CaptureBundleError",
    "CatalogueError",
    "ConfigError",
    "ConflictError",
    "FetchError",
    "GraphError",
    "InternalServerError",
    "InvalidParamsError",
    "MediaError",
    "ModelNotFoundError",
    "NotFoundError",
    "OAuthError",
    "OutputRejectedError",
    "OverloadedError",
    "PermissionDeniedError",
    "PhotoRejectedError",
    "RateLimitError",
    "RequestTooLargeError",
    "RunCancelledError",
    "RunFailedError",
    "StorageError",
    "StreamEndedError",
    "UnknownGraphError",
    "status_error_class",
]


class BkbnError(Exception):
    """Root of every error raised by ``bkbn_pipelines``."""


class ConfigError(BkbnError):
    """A setting is missing or invalid; the message names the setting."""


class ModelNotFoundError(ConfigError):
    """A model folder named in settings does not exist or is not in diffusers format."""


class APIError(BkbnError):
    """An error talking to the Backbone Lab API.

    Attributes are always present, ``None`` where they do not apply.
    """

    status_code: int | None = None
    error_type: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        body: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        details = [
            f"{key}={value}"
            for key, value in (
                ("status", self.status_code),
                ("type", self.error_type),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message


class APIConnectionError(APIError):
    """The request did not get an answer."""


class APITimeoutError(APIConnectionError):
    """A connect, read or overall deadline passed."""


class APIStreamError(APIError):
    """The event stream broke the rules: malformed event, event too large."""


class StreamEndedError(APIStreamError):
    """The stream ended before a ``result`` or ``error`` event."""


class RunFailedError(APIError):
    """The run ended with an ``error`` event; ``error_type`` says which."""


class OAuthError(APIError):
    """The token endpoint refused the grant (``invalid_client``, ``invalid_grant``...)."""


class APIStatusError(APIError):
    """The API answered with an error status."""


class BadRequestError(APIStatusError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(APIStatusError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(APIStatusError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(APIStatusError):
    status_code = 404
    error_type = "not_found_error"


class ConflictError(APIStatusError):
    status_code = 409
    error_type = "conflict_error"


class RequestTooLargeError(APIStatusError):
    status_code = 413
    error_type = "request_too_large"


class RateLimitError(APIStatusError):
    status_code = 429
    error_type = "rate_limit_error"


class InternalServerError(APIStatusError):
    status_code = 500
    error_type = "api_error"


class OverloadedError(APIStatusError):
    status_code = 529
    error_type = "overloaded_error"


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    cls.status_code: cls  # type: ignore[misc]
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RequestTooLargeError,
        RateLimitError,
        InternalServerError,
        OverloadedError,
    )
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP status: exact match, else 5xx, else the base."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


class GraphError(BkbnError):
    """An error in the local graph runtime; ``error_type`` maps it to the API's table."""

    error_type = "api_error"


class UnknownGraphError(GraphError):
    error_type = "not_found_error"


class InvalidParamsError(GraphError):
    error_type = "invalid_request_error"


class CaptureBundleError(InvalidParamsError):
    """The walk-through capture lacks what floor-plan inference needs."""


class RunCancelledError(GraphError):
    error_type = "cancelled"


class MediaError(BkbnError):
    """A photo or file cannot be used. Names the listing and the photo when known."""

    def __init__(
        self, message: str, *, listing_id: str | None = None, photo: str | None = None
    ) -> None:
        self.reason = message
        self.listing_id = listing_id
        self.photo = photo
        where = []
        if listing_id is not None:
            where.append(f"listing {listing_id!r}")
        if photo is not None:
            where.append(f"photo {photo!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class FetchError(MediaError):
    """A download was refused (address, redirect, size, type) or failed."""


class PhotoRejectedError(MediaError):
    """The photo was fetched but cannot be used: truncated, a bomb, not an image."""


class StorageError(BkbnError):
    """The media store could not read or write an object."""


class CatalogueError(BkbnError):
    """The catalogue export is unusable: missing columns, ids that cannot be slugged."""


class OutputRejectedError(BkbnError):
    """A blocking asset check rejected a listing's output (it never feeds the brochure)."""
