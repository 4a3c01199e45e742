"""The emulator's settings: a YAML file read into frozen pydantic models.

Every field has a default, so an empty file (or no file) gives a working emulator with
no organizations; ``docs/emulator.md`` documents each field and ``examples/emulator.yaml``
shows a complete file.  Secrets (API keys, client secrets, HS256 secrets) are
``SecretStr`` and never appear in reprs or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .._errors import ConfigError

__all__ = [
    "ApiKeyConfig",
    "EmulatorConfig",
    "FederationRuleConfig",
    "LatencyConfig",
    "OAuthClientConfig",
    "OrganizationConfig",
    "TierConfig",
    "load_config",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TierConfig(BaseModel):
    """Limits of a rate-limit tier, per organization and per window."""

    model_config = _FROZEN

    requests_per_minute: int = Field(60, ge=1)
    tokens_per_minute: int = Field(100_000, ge=1)


class OrganizationConfig(BaseModel):
    model_config = _FROZEN

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    tier: str = "default"


class ApiKeyConfig(BaseModel):
    """An API key (``bkbn_sk_...``) and the organization it belongs to."""

    model_config = _FROZEN

    key: SecretStr
    org: str

    @model_validator(mode="after")
    def _check_prefix(self) -> ApiKeyConfig:
        if not self.key.get_secret_value().startswith("bkbn_sk_"):
            raise ValueError("API keys start with 'bkbn_sk_'")
        return self


class OAuthClientConfig(BaseModel):
    """A client of the ``client_credentials`` grant."""

    model_config = _FROZEN

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    org: str


class FederationRuleConfig(BaseModel):
    """A Workload Identity Federation rule for the ``jwt-bearer`` grant.

    The assertion's signature is checked with ``public_key_pem`` (RS256, ES256...) or
    ``hs256_secret``; its ``iss`` must equal ``issuer``, its ``aud`` must contain
    ``audience`` and, when ``subject`` is set, its ``sub`` must equal it.
    """

    model_config = _FROZEN

    id: str = Field(min_length=1)
    org: str
    issuer: str
    audience: str
    subject: str | None = None
    public_key_pem: str | None = None
    hs256_secret: SecretStr | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256", "HS256")

    @model_validator(mode="after")
    def _one_key(self) -> FederationRuleConfig:
        if (self.public_key_pem is None) == (self.hs256_secret is None):
            raise ValueError("a federation rule needs exactly one of public_key_pem, hs256_secret")
        return self


class LatencyConfig(BaseModel):
    """The latency model: a fixed delay, then ``steps`` progress steps of ``step_ms``.

    ``max_side`` caps the long side of the images it makes (the requested resolution
    otherwise); results report the size actually made.
    """

    model_config = _FROZEN

    delay_ms: int = Field(0, ge=0)
    steps: int = Field(8, ge=1, le=1000)
    step_ms: int = Field(50, ge=0)
    max_side: int | None = Field(None, ge=16, le=8192)


class EmulatorConfig(BaseModel):
    """Everything the emulator needs; frozen once loaded."""

    model_config = _FROZEN

    organizations: tuple[OrganizationConfig, ...] = ()
    api_keys: tuple[ApiKeyConfig, ...] = ()
    oauth_clients: tuple[OAuthClientConfig, ...] = ()
    federation_rules: tuple[FederationRuleConfig, ...] = ()
    tiers: dict[str, TierConfig] = Field(default_factory=lambda: {"default": TierConfig()})
    rate_limit_window_s: float = Field(60.0, gt=0)
    renderer: Literal["runtime", "latency"] = "runtime"
    latency: LatencyConfig = LatencyConfig()
    runtime: dict[str, Any] = Field(default_factory=dict)
    allowed_input_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    s3_endpoint_url: str | None = None
    allowed_s3_buckets: tuple[str, ...] = ()
    input_fetch_timeout_s: float = Field(30.0, gt=0)
    heartbeat_s: float = Field(15.0, gt=0, le=15.0)
    token_lifetime_s: int = Field(900, ge=1)
    data_dir: Path | None = None
    max_concurrent_renders: int = Field(4, ge=1, le=256)
    max_runs: int = Field(1000, ge=1)
    max_events_per_run: int = Field(10_000, ge=10)
    faults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Faults per API key or client id, applied at start; needs test mode.",
    )

    @model_validator(mode="after")
    def _check_references(self) -> EmulatorConfig:
        orgs = {org.id: org for org in self.organizations}
        if len(orgs) != len(self.organizations):
            raise ValueError("organization ids must be unique")
        for org in self.organizations:
            if org.tier not in self.tiers:
                raise ValueError(f"organization {org.id!r} names unknown tier {org.tier!r}")
        owners = [
            *(("api_keys", k.org) for k in self.api_keys),
            *(("oauth_clients", c.org) for c in self.oauth_clients),
            *(("federation_rules", r.org) for r in self.federation_rules),
        ]
        for section, org in owners:
            if org not in orgs:
                raise ValueError(f"{section}: unknown organization {org!r}")
        keys = [k.key.get_secret_value() for k in self.api_keys]
        if len(set(keys)) != len(keys):
            raise ValueError("api_keys: the same key is listed twice")
        return self


def load_config(path: str | Path | None) -> EmulatorConfig:
    """Read a YAML config file; ``None`` gives the defaults.

    Raises :class:`ConfigError` naming the file and the field when the file is invalid.
    """
    if path is None:
        return EmulatorConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read emulator config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"emulator config {path} must be a mapping")
    try:
        return EmulatorConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid emulator config {path}: {problems}") from None
