"""``/_test``: keys, faults and counters for tests; refused (403) unless in test mode.

These endpoints need no credentials and are left out of the OpenAPI document.
docs/emulator.md describes each body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ._config import FederationRuleConfig, OAuthClientConfig, TierConfig
from ._faults import FaultSpec
from ._http import ApiProblem, new_id

if TYPE_CHECKING:
    from ._service import Emulator

__all__ = ["test_router"]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]+$", description="default: a new org")
    tier: str | None = Field(None, description="a tier of the config")
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    oauth_client: bool = False


class Target(BaseModel):
    """Which credential: exactly one of these (none means every credential, where allowed)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    client_id: str | None = None
    federation_rule_id: str | None = None


class FaultRequest(Target):
    faults: FaultSpec = FaultSpec()


class NewRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    org: str
    issuer: str
    audience: str
    subject: str | None = None
    public_key_pem: str | None = None
    hs256_secret: SecretStr | None = None


def test_router(emu: Emulator) -> APIRouter:
    def test_mode_only() -> None:
        if not emu.test_mode:
            raise ApiProblem(403, "test endpoints need an emulator started with --test-mode")

    router = APIRouter(
        prefix="/_test", include_in_schema=False, dependencies=[Depends(test_mode_only)]
    )

    def credential(target: Target, required: bool) -> str | None:
        given = [v for v in (target.api_key, target.client_id, target.federation_rule_id) if v]
        if len(given) > 1 or (required and not given):
            raise ApiProblem(400, "name exactly one of api_key, client_id, federation_rule_id")
        if target.api_key is not None:
            principal = emu.credentials.principal_for_key(target.api_key.get_secret_value())
            if principal is None:
                raise ApiProblem(404, "unknown api_key")
            return principal.credential
        if target.client_id:
            return f"client:{target.client_id}"
        if target.federation_rule_id:
            return f"rule:{target.federation_rule_id}"
        return None

    @router.post("/keys")
    async def new_key(body: NewKey) -> dict[str, Any]:
        org = body.org or new_id("org_", 12)
        tier = emu.tiers.get(org) or emu.tier_of(org)
        if body.tier is not None:
            if body.tier not in emu.config.tiers:
                raise ApiProblem(400, f"unknown tier {body.tier!r}")
            tier = emu.config.tiers[body.tier]
        changes = {
            k: v
            for k, v in (
                ("requests_per_minute", body.requests_per_minute),
                ("tokens_per_minute", body.tokens_per_minute),
            )
            if v is not None
        }
        emu.tiers[org] = TierConfig(**{**tier.model_dump(), **changes})
        key = new_id("bkbn_sk_test_", 32)
        emu.credentials.add_key(key, org)
        answer: dict[str, Any] = {"api_key": key, "org": org}
        if body.oauth_client:
            client = OAuthClientConfig(
                client_id=new_id("client_", 16), client_secret=new_id("secret_", 32), org=org
            )
            emu.credentials.add_client(client)
            answer["client_id"] = client.client_id
            answer["client_secret"] = client.client_secret.get_secret_value()
        return answer

    @router.post("/federation-rules")
    async def new_rule(body: NewRule) -> dict[str, Any]:
        if body.org not in emu.tiers:
            emu.tiers[body.org] = emu.tier_of(body.org)
        try:
            rule = FederationRuleConfig(**{**body.model_dump(), "id": body.id or new_id("rule_")})
        except ValueError as exc:
            raise ApiProblem(400, str(exc)) from None
        emu.credentials.add_rule(rule)
        return {"federation_rule_id": rule.id}

    @router.post("/faults")
    async def set_faults(body: FaultRequest) -> dict[str, Any]:
        name = credential(body, required=True)
        assert name is not None
        emu.faults.set(name, body.faults)
        return {"credential": name, "faults": body.faults.model_dump()}

    @router.post("/expire-tokens")
    async def expire_tokens(body: Target | None = None) -> dict[str, Any]:
        name = credential(body or Target(), required=False)
        return {"expired": emu.credentials.expire_tokens(name)}

    @router.get("/stats")
    async def stats(org: str | None = None) -> dict[str, Any]:
        if org is not None:
            return {"org": org, **emu.stats.for_org(org)}
        grants = {
            name.partition(":")[2]: {"accepted": c.accepted, "refused": c.refused}
            for name, c in emu.credentials.grants.items()
        }
        return {
            "orgs": {o: emu.stats.for_org(o) for o in sorted(emu.stats.orgs())},
            "grants": grants,
        }

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        emu.faults.clear()
        emu.limiter.reset()
        emu.stats.clear()
        emu.credentials.grants.clear()
        return {"reset": True}

    return router
