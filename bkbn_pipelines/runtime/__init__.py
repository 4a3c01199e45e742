"""The local graph runtime: Backbone graphs in-process with torch and diffusers."""

from __future__ import annotations

from ._graph import Graph, Node, RunContext, get_graph, graph_names, register, run_graph

__all__ = ["Graph", "Node", "RunContext", "get_graph", "graph_names", "register", "run_graph"]
