"""Credentials: API keys, OAuth clients, federation rules and the tokens they earn.

Secrets are kept only as SHA-256 digests.  An API key is checked against the digest
of every known key with :func:`hmac.compare_digest`, whether or not an earlier one
matched, so a wrong key costs the same time as a right one.  Access tokens are opaque
random strings, looked up by digest, that expire after the configured lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

import jwt

from ._config import EmulatorConfig, FederationRuleConfig, OAuthClientConfig
from ._http import ApiProblem, new_id

__all__ = ["CredentialStore", "OAuthProblem", "Principal"]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the organization and the credential that identified it.

    ``credential`` is ``key:<first 12 hex of the key's digest>``, ``client:<client_id>``
    or ``rule:<federation rule id>``; faults and statistics are kept per credential.
    """

    org: str
    credential: str


@dataclass
class _Token:
    principal: Principal
    expires_at: float


@dataclass
class _GrantCount:
    accepted: int = 0
    refused: int = 0


class OAuthProblem(ApiProblem):
    """An RFC 6749 section 5.2 error: ``code`` is ``invalid_client``, ``invalid_grant``..."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(
            status,
            description,
            extra={"code": code},
            headers={"www-authenticate": 'Bearer error="invalid_client"'}
            if code == "invalid_client"
            else None,
        )
        self.code = code


@dataclass
class CredentialStore:
    """Thread-safe registry of keys, clients, rules and live tokens."""

    token_lifetime_s: int
    _keys: list[tuple[bytes, Principal]] = field(default_factory=list)
    _clients: dict[str, tuple[bytes, Principal]] = field(default_factory=dict)
    _rules: dict[str, FederationRuleConfig] = field(default_factory=dict)
    _tokens: dict[bytes, _Token] = field(default_factory=dict)
    grants: dict[str, _GrantCount] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> CredentialStore:
        store = cls(token_lifetime_s=config.token_lifetime_s)
        for key in config.api_keys:
            store.add_key(key.key.get_secret_value(), key.org)
        for client in config.oauth_clients:
            store.add_client(client)
        for rule in config.federation_rules:
            store.add_rule(rule)
        return store

    # -- registration -------------------------------------------------------------

    def add_key(self, key: str, org: str) -> Principal:
        digest = _digest(key)
        principal = Principal(org=org, credential=f"key:{digest.hex()[:12]}")
        with self._lock:
            self._keys.append((digest, principal))
        return principal

    def add_client(self, client: OAuthClientConfig) -> Principal:
        principal = Principal(org=client.org, credential=f"client:{client.client_id}")
        with self._lock:
            self._clients[client.client_id] = (
                _digest(client.client_secret.get_secret_value()),
                principal,
            )
        return principal

    def add_rule(self, rule: FederationRuleConfig) -> None:
        with self._lock:
            self._rules[rule.id] = rule

    def principal_for_key(self, key: str) -> Principal | None:
        """The key's principal, or ``None``; every stored digest is compared."""
        digest = _digest(key)
        found = None
        with self._lock:
            candidates = list(self._keys)
        for stored, principal in candidates:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found

    # -- tokens -------------------------------------------------------------------

    def authenticate(self, api_key: str | None, bearer: str | None) -> Principal:
        """The caller's principal; raises a 401 :class:`ApiProblem` otherwise."""
        if api_key:
            principal = self.principal_for_key(api_key)
            if principal is None:
                raise ApiProblem(401, "invalid API key")
            return principal
        if bearer:
            if bearer.startswith("bkbn_sk_"):
                principal = self.principal_for_key(bearer)
                if principal is None:
                    raise ApiProblem(401, "invalid API key")
                return principal
            with self._lock:
                token = self._tokens.get(_digest(bearer))
            if token is None:
                raise ApiProblem(401, "invalid or unknown access token")
            if token.expires_at <= time.time():
                raise ApiProblem(401, "access token expired; request a new one")
            return token.principal
        raise ApiProblem(
            401, "missing credentials: send an x-api-key header or authorization: Bearer"
        )

    def _issue(self, principal: Principal) -> dict:
        token = new_id("bkbn_at_", 40)
        with self._lock:
            now = time.time()
            self._tokens = {d: t for d, t in self._tokens.items() if t.expires_at > now}
            self._tokens[_digest(token)] = _Token(principal, now + self.token_lifetime_s)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime_s,
        }

    def has_live_token(self, credential: str) -> bool:
        now = time.time()
        with self._lock:
            return any(
                t.principal.credential == credential and t.expires_at > now
                for t in self._tokens.values()
            )

    def expire_tokens(self, credential: str | None = None) -> int:
        """Make the tokens of ``credential`` (or all) expired now; returns how many."""
        now = time.time()
        count = 0
        with self._lock:
            for token in self._tokens.values():
                if credential is None or token.principal.credential == credential:
                    if token.expires_at > now:
                        count += 1
                    token.expires_at = now
        return count

    def count_grant(self, credential: str, accepted: bool) -> None:
        with self._lock:
            counts = self.grants.setdefault(credential, _GrantCount())
            if accepted:
                counts.accepted += 1
            else:
                counts.refused += 1

    # -- grants -------------------------------------------------------------------

    def client_principal(self, client_id: str | None, client_secret: str | None) -> Principal:
        if not client_id or not client_secret:
            raise OAuthProblem(400, "invalid_request", "client_id and client_secret are required")
        with self._lock:
            entry = self._clients.get(client_id)
        # Compare against a dummy digest when the client is unknown: same work either way.
        stored, principal = entry or (b"\0" * 32, None)
        if not hmac.compare_digest(stored, _digest(client_secret)) or principal is None:
            raise OAuthProblem(401, "invalid_client", "unknown client or wrong client secret")
        return principal

    def rule_principal(self, rule_id: str | None, assertion: str | None) -> Principal:
        if not rule_id or not assertion:
            raise OAuthProblem(
                400, "invalid_request", "federation_rule_id and assertion are required"
            )
        with self._lock:
            rule = self._rules.get(rule_id)
        if rule is None:
            raise OAuthProblem(401, "invalid_client", "unknown federation rule")
        key = (
            rule.hs256_secret.get_secret_value()
            if rule.hs256_secret is not None
            else rule.public_key_pem
        )
        algorithms = [
            a for a in rule.algorithms if (a == "HS256") == (rule.hs256_secret is not None)
        ]
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=algorithms,
                audience=rule.audience,
                issuer=rule.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthProblem(400, "invalid_grant", "the assertion has expired") from None
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the failed check, never the token itself.
            raise OAuthProblem(400, "invalid_grant", f"assertion rejected: {exc}") from None
        if rule.subject is not None and claims.get("sub") != rule.subject:
            raise OAuthProblem(400, "invalid_grant", "assertion subject not allowed by the rule")
        return Principal(org=rule.org, credential=f"rule:{rule.id}")

    def issue_for(self, principal: Principal) -> dict:
        return self._issue(principal)
