"""The Backbone Lab API served locally, over the local graph runtime or a latency model.

``bkbn emulator`` runs it; :func:`create_app` builds the ASGI app from an
:class:`EmulatorConfig`; :mod:`bkbn_pipelines.emulator.testing` runs it in a thread
for tests.  docs/emulator.md describes the configuration, test mode and faults.
"""

from __future__ import annotations

from ._app import create_app
from ._config import (
    ApiKeyConfig,
    EmulatorConfig,
    FederationRuleConfig,
    LatencyConfig,
    OAuthClientConfig,
    OrganizationConfig,
    TierConfig,
    load_config,
)
from ._faults import FailRule, FaultSpec, LatencyOverride, RateLimitBurst, StreamFault

__all__ = [
    "ApiKeyConfig",
    "EmulatorConfig",
    "FailRule",
    "FaultSpec",
    "FederationRuleConfig",
    "LatencyConfig",
    "LatencyOverride",
    "OAuthClientConfig",
    "OrganizationConfig",
    "RateLimitBurst",
    "StreamFault",
    "TierConfig",
    "create_app",
    "load_config",
]
