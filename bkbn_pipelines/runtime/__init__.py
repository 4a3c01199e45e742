"""The local graph runtime: Backbone graphs in-process with numpy, torch and diffusers.

``LocalRuntime(RuntimeSettings(...)).run("staging", [photo], {"style": ...})`` yields
the same events as the API's stream.  docs/runtime.md describes every graph, its
nodes and parameters, and the settings that point at model weights.
"""

from __future__ import annotations

from ._graph import Graph, Node, RunContext, get_graph, graph_names, register, run_graph
from ._runtime import LocalRuntime
from ._settings import RuntimeSettings

__all__ = [
    "Graph",
    "LocalRuntime",
    "Node",
    "RunContext",
    "RuntimeSettings",
    "get_graph",
    "graph_names",
    "register",
    "run_graph",
]
