import shutil
from pathlib import Path

from ivr.agi.router import Router
from ivr.flow.engine import FlowEngine
from ivr.flow.handler import FlowResolver, build_flow_router
from ivr.flow.repository import FlowRepository

ROOT = Path(__file__).resolve().parents[2]


def test_resolver_follows_repository_versions(tmp_path):
    flows_dir = tmp_path / "flows"
    shutil.copytree(ROOT / "config" / "flows", flows_dir)
    repo = FlowRepository(flows_dir)
    repo.load()
    made = []

    def factory(flows):
        made.append(flows.version)
        return FlowEngine(flows)

    router = build_flow_router(repo, factory)
    assert isinstance(router, Router) and isinstance(router.fallback, FlowResolver)
    assert router.resolve("main") is not None
    assert router.resolve("/callback/") is not None
    assert router.resolve("nosuch") is None
    resolver = router.fallback
    first = resolver.engine_for(repo.current)
    assert resolver.engine_for(repo.current) is first and made == [repo.version]
    # a valid edit -> new version -> a new engine for new calls; the old one keeps its own flows
    main = flows_dir / "main.yaml"
    main.write_text(main.read_text().replace("description: Call-center front door", "description: Front door v2"))
    result = repo.reload("manual")
    assert result.ok and result.changed
    second = resolver.engine_for(repo.current)
    assert second is not first and second.version == repo.version != first.version
    assert first.flows["main"].description != second.flows["main"].description


def test_fixed_engine_serves_its_own_flows():
    from ivr.flow.loader import load_flows
    flows = load_flows(ROOT / "config" / "flows")
    engine = FlowEngine(flows)
    router = build_flow_router({}, engine)
    assert router.resolve("main") is not None and router.resolve("other") is None
