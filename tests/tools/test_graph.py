"""`ivr graph`: what the picture says (edges, labels, styles, traffic), in every format."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from ivr.cli import main
from ivr.flow.model import Flow
from ivr.flowgraph.graph import build_graph
from ivr.flowgraph.traffic import TrafficError, load_traffic, parse_traffic
from ivr.tools.graph import GraphvizMissing, render

FIXTURES = Path(__file__).parent / "fixtures"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")

SCRAPE = """\
# HELP ivr_menu_choices_total Menu options chosen.
# TYPE ivr_menu_choices_total counter
ivr_menu_choices_total{flow="frontdoor",node="main_menu",option="1"} 40.0
ivr_menu_choices_total{flow="frontdoor",node="main_menu",option="2"} 10.0
ivr_menu_choices_total{flow="elsewhere",node="main_menu",option="2"} 999.0
# HELP ivr_node_exits_total Node exits by reason.
# TYPE ivr_node_exits_total counter
ivr_node_exits_total{flow="frontdoor",node="main_menu",reason="hangup"} 7.0
ivr_node_exits_total{flow="frontdoor",node="main_menu",reason="exhausted"} 3.0
ivr_node_exits_total{flow="frontdoor",node="crm",reason="error"} 5.0
"""


@pytest.fixture(scope="module")
def flow() -> Flow:
    return Flow.model_validate(yaml.safe_load((FIXTURES / "frontdoor.yaml").read_text()))


def _edges(flow: Flow) -> set[tuple[str, str, str, str]]:
    return {(e.src, e.dst, e.kind, e.label) for e in build_graph(flow).edges}


def test_graph_has_every_branch_of_the_flow(flow: Flow) -> None:
    edges = _edges(flow)
    assert ("main_menu", "sales", "option", "1: sales") in edges
    assert ("main_menu", "support_menu", "option", "2") in edges
    assert ("main_menu", "main_menu", "verb", "9: repeat") in edges
    assert ("main_menu", "dial_ext", "direct_dial", "dial 5XXX") in edges
    assert ("main_menu", "operator", "exhausted", "no input: exhausted") in edges
    assert ("main_menu", "goodbye", "exhausted", "invalid: exhausted") in edges
    assert ("main_menu", "main_menu", "no_input", "no input ×2") in edges
    assert ("hours", "after_hours", "closed", "closed (office)") in edges
    assert ("hours", "language", "else", "else") in edges
    assert ("dial_ext", "voicemail", "busy", "busy") in edges
    assert ("dial_ext", "voicemail", "no_answer", "no answer") in edges
    assert ("crm", "operator", "error", "lookup failed") in edges
    assert ("internet", "callback", "timeout", "queue timeout") in edges
    # inline option: a node of its own with its own branches
    assert ("main_menu", "main_menu.0", "option", "0") in edges
    assert ("main_menu.0", "goodbye", "busy", "busy") in edges
    # cross-flow link: one box for the other flow, the node named on the edge
    assert ("support_menu", "flow:other", "option", "2 → tv") in edges


def test_dot_styles_branches_apart_and_escapes_text(flow: Flow) -> None:
    source = render(flow, "dot")
    assert isinstance(source, str)
    exhausted = re.search(r'main_menu -> operator \[[^\]]*\]', source)
    assert exhausted and "dashed" in exhausted.group(0) and "#c00000" in exhausted.group(0)
    closed = re.search(r'hours -> after_hours \[[^\]]*\]', source)
    assert closed and "#7b2fbf" in closed.group(0)
    option = re.search(r'main_menu -> sales \[[^\]]*\]', source)
    assert option and "solid" in option.group(0)
    # prompt text with markup is escaped, not interpreted
    assert "&lt;now&gt; &amp; &quot;later&quot;" in source
    # the other flow is a folder box whose id is not read as node:port
    assert '"flow/other"' in source and "folder" in source
    # several self-loops of one menu collapse into one labelled loop
    assert len(re.findall(r"\bmain_menu -> main_menu\b", source)) == 1
    assert "9: repeat<BR/>no input ×2<BR/>invalid ×2" in source


def test_mermaid_is_text_with_safe_ids_and_labels(flow: Flow) -> None:
    text = render(flow, "mermaid")
    assert isinstance(text, str) and text.splitlines()[0] == "flowchart TD"
    assert '"1: sales"' in text and '"no input: exhausted"' in text
    assert "#quot;later#quot;" in text  # a quote cannot end the label early
    ids = {line.split()[0] for line in text.splitlines() if re.match(r"^    n\d+[\[\(\{>]", line)}
    assert len(ids) == len(build_graph(flow).nodes)
    link_styles = [line for line in text.splitlines() if line.strip().startswith("linkStyle")]
    assert len(link_styles) == len(build_graph(flow).edges)


@needs_dot
def test_svg_and_png_render(flow: Flow) -> None:
    svg = render(flow, "svg")
    assert isinstance(svg, bytes) and b"<svg" in svg and b"main_menu" in svg
    png = render(flow, "png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_missing_dot_is_a_clear_error(flow: Flow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        render(flow, "svg")
    assert "flowchart TD" in render(flow, "mermaid")  # needs no binary
    assert "digraph" in render(flow, "dot")


def test_unknown_format_is_refused(flow: Flow) -> None:
    with pytest.raises(ValueError, match="svg, png, dot, mermaid"):
        render(flow, "jpeg")  # type: ignore[arg-type]


def test_traffic_is_read_for_this_flow_only() -> None:
    traffic = parse_traffic(SCRAPE, "frontdoor")
    assert traffic.choices == {("main_menu", "1"): 40.0, ("main_menu", "2"): 10.0}
    assert traffic.hangups("main_menu") == 7.0
    assert traffic.count("exit", "crm", "error") == 5.0
    with pytest.raises(TrafficError):
        parse_traffic("this is { not metrics", "frontdoor")


def test_traffic_weights_edges_and_marks_hangups(flow: Flow) -> None:
    source = render(flow, "dot", parse_traffic(SCRAPE, "frontdoor"))
    busiest = re.search(r"main_menu -> sales \[[^\]]*\]", source)
    quieter = re.search(r"main_menu -> support_menu \[[^\]]*\]", source)
    unused = re.search(r"main_menu -> account \[[^\]]*\]", source)
    assert busiest and quieter and unused
    width = {
        name: float(re.search(r'penwidth="?([\d.]+)', m.group(0)).group(1))
        for name, m in (("busiest", busiest), ("quieter", quieter), ("unused", unused))
    }
    assert width["busiest"] > width["quieter"] > width["unused"]
    assert "1: sales (40)" in busiest.group(0)
    assert "7 hung up here" in source
    mermaid = render(flow, "mermaid", parse_traffic(SCRAPE, "frontdoor"))
    assert '"1: sales (40)"' in mermaid and "7 hung up here" in mermaid


def test_traffic_file_and_missing_file(tmp_path: Path) -> None:
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(SCRAPE)
    assert load_traffic(str(scrape), "frontdoor").choices[("main_menu", "1")] == 40.0
    with pytest.raises(TrafficError, match="could not read"):
        load_traffic(str(tmp_path / "nope.txt"), "frontdoor")


def test_cli_writes_mermaid_and_reads_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "frontdoor.yaml").write_text((FIXTURES / "frontdoor.yaml").read_text())
    scrape = tmp_path / "scrape.prom"
    scrape.write_text(SCRAPE)
    out = tmp_path / "fd.mmd"
    assert main(["graph", "frontdoor", "--flows-dir", str(flows), "-o", str(out), "--metrics", str(scrape)]) == 0
    assert '"1: sales (40)"' in out.read_text()
    assert main(["graph", str(flows / "frontdoor.yaml"), "--format", "dot"]) == 0
    assert "digraph frontdoor" in capsys.readouterr().out


def test_cli_unknown_flow_says_which_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "frontdoor.yaml").write_text((FIXTURES / "frontdoor.yaml").read_text())
    assert main(["graph", "nosuch", "--flows-dir", str(flows), "--format", "mermaid"]) == 1
    err = capsys.readouterr().err
    assert "no flow named 'nosuch'" in err and "(flows: frontdoor)" in err


async def test_traffic_from_the_engines_own_metrics() -> None:
    """Calls through the real engine move the real counters; the picture reads them back by node and option."""
    from ivr.flow.loader import load_flows
    from ivr.flowtest.caller import parse_digits
    from ivr.flowtest.runner import CallSetup, run_call
    from ivr.tools.graph import traffic_from_registry

    flows = load_flows(FIXTURES)
    before = traffic_from_registry("frontdoor")
    for script in ("1,1", "1,1", "1,1", "1,2,1", "1,h"):
        await run_call(flows, CallSetup("frontdoor", steps=parse_digits(script)))
    after = traffic_from_registry("frontdoor")

    def grew(metric: str, node: str, key: str) -> float:
        return (after.count(metric, node, key) or 0.0) - (before.count(metric, node, key) or 0.0)

    assert grew("choice", "main_menu", "1") == 3
    assert grew("choice", "main_menu", "2") == 1
    assert after.hangups("main_menu") - before.hangups("main_menu") == 1
    source = render(flows["frontdoor"], "dot", after)
    assert re.search(r"main_menu -> sales \[[^\]]*label=<1: sales \(\d+\)>", source)
    assert "hung up here" in source


def test_transfer_branches_weighted_by_transfer_results_and_ambiguous_exits_left_alone(flow: Flow) -> None:
    scrape = (
        SCRAPE
        + """\
# TYPE ivr_transfers_total counter
ivr_transfers_total{flow="frontdoor",target="${dialed}",result="busy"} 4.0
ivr_transfers_total{flow="frontdoor",target="${dialed}",result="noanswer"} 1.0
ivr_transfers_total{flow="frontdoor",target="${dialed}",result="answer"} 9.0
# TYPE ivr_node_exits_total counter
ivr_node_exits_total{flow="frontdoor",node="hours",reason="next"} 30.0
ivr_node_exits_total{flow="frontdoor",node="hours",reason="closed"} 6.0
"""
    )
    traffic = parse_traffic(scrape, "frontdoor")
    assert traffic.count("transfer", "${dialed}", "on_busy") == 4.0
    assert traffic.count("transfer", "${dialed}", "on_unavailable") is None
    source = render(flow, "dot", traffic)
    assert re.search(r"dial_ext -> voicemail \[[^\]]*label=<busy \(4\)>", source)
    assert re.search(r"dial_ext -> voicemail \[[^\]]*label=<no answer \(1\)>", source)
    assert re.search(r"dial_ext -> voicemail \[[^\]]*label=<unavailable \(0\)>", source)
    # the hours rule "closed" has its own exit reason; the caller rule and `else` share "next": no count on them
    assert re.search(r"hours -> after_hours \[[^\]]*label=<closed \(office\) \(6\)>", source)
    assert re.search(r"hours -> language \[[^\]]*label=<else>", source)
    assert "(30)" not in source
    # retry loops are not exits: never weighted
    assert "no input ×2<BR/>" in source and "no input ×2 (" not in source


def test_mermaid_escapes_hash_keys() -> None:
    tiny = Flow.model_validate(
        {
            "name": "tiny",
            "start": "m",
            "nodes": {
                "m": {"type": "menu", "greeting": ["beep"], "options": {"#": "bye", "*": "repeat"}},
                "bye": {"type": "hangup"},
            },
        }
    )
    text = render(tiny, "mermaid")
    assert '-->|"#35;"|' in text and '-.->|"*: repeat"|' in text
