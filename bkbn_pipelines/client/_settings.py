"""Client settings: arguments first, then the environment, then the defaults.

``NOT_GIVEN`` marks an argument the caller left out, so that ``None`` can still be
passed on purpose (``deadline=None``: no overall deadline).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
from pydantic import SecretStr

from .._contract import API_VERSION, DEFAULT_BASE_URL
from .._errors import ConfigError
from ._auth import ApiKeyAuth, Assertion, ClientCredentials, WorkloadIdentity

__all__ = ["DEFAULT_TIMEOUT", "NOT_GIVEN", "ClientSettings", "NotGiven", "resolve_settings"]


class NotGiven:
    """The type of :data:`NOT_GIVEN`; falsy, and the same object everywhere."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()

#: connect 5 s; read 60 s between two chunks (heartbeats keep a slow stream alive);
#: write 30 s; 30 s to get a connection from the pool.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=30.0)

Auth = ApiKeyAuth | ClientCredentials | WorkloadIdentity


@dataclass(frozen=True)
class ClientSettings:
    """Resolved, frozen settings of one client.  Secrets stay inside ``auth``."""

    base_url: str
    version: str
    auth: Auth = field(repr=False)
    max_retries: int
    timeout: httpx.Timeout
    deadline: float | None
    max_connections: int

    @property
    def auth_mode(self) -> str:
        if isinstance(self.auth, ApiKeyAuth):
            return "api_key"
        if isinstance(self.auth, ClientCredentials):
            return "client_credentials"
        return "workload_identity"


def _pick(value: Any, env: str, default: Any = None) -> Any:
    if not isinstance(value, NotGiven):
        return value
    found = os.environ.get(env)
    return found if found not in (None, "") else default


def _auth(
    api_key: Any,
    client_id: Any,
    client_secret: Any,
    federation_rule_id: Any,
    assertion: Any,
) -> Auth:
    explicit = [
        not isinstance(v, NotGiven) and v is not None
        for v in (api_key, client_id, federation_rule_id)
    ]
    # Modes named by an argument win over modes found in the environment.
    order = [0, 1, 2]
    order.sort(key=lambda i: not explicit[i])
    for mode in order:
        if mode == 0:
            key = _pick(api_key, "BKBN_API_KEY")
            if key:
                return ApiKeyAuth(key if isinstance(key, SecretStr) else SecretStr(str(key)))
        elif mode == 1:
            cid = _pick(client_id, "BKBN_CLIENT_ID")
            if cid:
                secret = _pick(client_secret, "BKBN_CLIENT_SECRET")
                if not secret:
                    raise ConfigError("BKBN_CLIENT_ID is set but BKBN_CLIENT_SECRET is not")
                if not isinstance(secret, SecretStr):
                    secret = SecretStr(str(secret))
                return ClientCredentials(str(cid), secret)
        else:
            rule = _pick(federation_rule_id, "BKBN_FEDERATION_RULE_ID")
            if rule:
                source = _pick(assertion, "BKBN_ASSERTION_FILE")
                if not source:
                    raise ConfigError(
                        "BKBN_FEDERATION_RULE_ID is set but no assertion: set "
                        "BKBN_ASSERTION_FILE or pass assertion="
                    )
                return WorkloadIdentity(str(rule), source)
    raise ConfigError(
        "no credentials: set BKBN_API_KEY, or BKBN_CLIENT_ID and BKBN_CLIENT_SECRET, "
        "or BKBN_FEDERATION_RULE_ID and BKBN_ASSERTION_FILE"
    )


def resolve_settings(
    *,
    api_key: str | SecretStr | NotGiven | None = NOT_GIVEN,
    base_url: str | NotGiven = NOT_GIVEN,
    version: str | NotGiven = NOT_GIVEN,
    client_id: str | NotGiven | None = NOT_GIVEN,
    client_secret: str | SecretStr | NotGiven | None = NOT_GIVEN,
    federation_rule_id: str | NotGiven | None = NOT_GIVEN,
    assertion: Assertion | NotGiven | None = NOT_GIVEN,
    max_retries: int = 2,
    timeout: float | httpx.Timeout | NotGiven = NOT_GIVEN,
    deadline: float | None = None,
    max_connections: int = 10,
) -> ClientSettings:
    url = str(_pick(base_url, "BKBN_BASE_URL", DEFAULT_BASE_URL)).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"BKBN_BASE_URL must be an http(s) URL, got {url!r}")
    if isinstance(timeout, NotGiven):
        resolved_timeout = DEFAULT_TIMEOUT
    elif isinstance(timeout, httpx.Timeout):
        resolved_timeout = timeout
    else:
        resolved_timeout = httpx.Timeout(timeout)
    if max_retries < 0:
        raise ConfigError("max_retries must be 0 or more")
    if max_connections < 1:
        raise ConfigError("max_connections must be 1 or more")
    return ClientSettings(
        base_url=url,
        version=str(_pick(version, "BKBN_VERSION", API_VERSION)),
        auth=_auth(api_key, client_id, client_secret, federation_rule_id, assertion),
        max_retries=max_retries,
        timeout=resolved_timeout,
        deadline=deadline,
        max_connections=max_connections,
    )
