"""Flow drawing: a flow as boxes and arrows (`graph`), written as Graphviz DOT/SVG/PNG (`dot`) or Mermaid
(`mermaid`), optionally weighted by the traffic the service's metrics counted (`traffic`); `render` is the one entry
point, used by the `graph` command and handed by the service to the HTTP API.

Rules for this package: it reads flows (`ivr.flow.model`) and metrics text, nothing else of the service; it never
imports the admin tools, the flow tests, the API or the simulator (import-linter contracts in pyproject.toml).
"""
