"""The dialplan contract lives in one module: no other module of ivr spells one of its IVR_* names, and the
shipped dialplan uses no IVR_* variable the contract does not define (besides its own scratch variable)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ivr import dialplan

ROOT = Path(__file__).resolve().parents[1]
NAMES = {getattr(dialplan, name) for name in dialplan.__all__ if isinstance(getattr(dialplan, name), str)}
CHANNEL_VARIABLES = {value for value in NAMES if value.startswith("IVR_")}
DIALPLAN_OWN = {"IVR_FALLBACK_QUEUE"}  # [ivr-outbound-fallback]'s scratch copy of the filtered queue name


def test_no_module_spells_a_contract_name() -> None:
    found = []
    for path in sorted((ROOT / "ivr").rglob("*.py")):
        if path == ROOT / "ivr" / "dialplan.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in CHANNEL_VARIABLES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r} (use ivr.dialplan)")
    assert not found, "\n".join(found)


def test_the_shipped_dialplan_uses_only_contract_names() -> None:
    text = (ROOT / "dialplans" / "extensions_ivr.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    used = set(re.findall(r"\bIVR_[A-Z_]+\b", code))
    assert used - CHANNEL_VARIABLES - DIALPLAN_OWN == set()
    for status in (dialplan.OK, dialplan.PARKED, dialplan.AGENT):
        assert f'"${{{dialplan.STATUS}}}" = "{status}"' in code  # the values the dialplan ends a call on
    for context in (dialplan.ENTER_CONTEXT, dialplan.PARK_COMEBACK_CONTEXT, dialplan.OUTBOUND_CONTEXT):
        assert f"[{context}]" in code
