"""`${name}` templates and safe file names.

Rules for this file:
- A template is text with `${name}` placeholders; `$$` writes a literal `$`. That is the whole language: no
  expressions, no attribute or index access, no filters, so a flow file can never run code.
- Substituted values are data. They are inserted once and never scanned again, so a caller ID such as `${secret}`
  stays the literal text `${secret}`.
- Unknown names become "" unless the call site asks for `strict=True` (then `TemplateError` names the variable).
- `safe_filename()` is the only way a template result becomes part of a file path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["TemplateError", "render", "template_names", "safe_filename", "NAME_RE"]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One scanner for the whole syntax: `$$`, `${name}`, or a `$` that starts nothing valid.
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$")


class TemplateError(ValueError):
    """A template is malformed or (in strict mode) names a variable that is not set."""


def _scan(template: str, on_name: Callable[[str], str]) -> str:
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        out.append(template[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "$$":
            out.append("$")
        elif token == "$":
            # A lone `$` (e.g. "$5 fee") is literal text; only `${` opens a placeholder.
            out.append("$")
        else:
            name = match.group(1).strip()
            if not NAME_RE.fullmatch(name):
                raise TemplateError(
                    f"bad placeholder {token!r} in {template!r}: use ${{name}} with letters, digits and _ only"
                )
            out.append(on_name(name))
    out.append(template[pos:])
    return "".join(out)


def render(
    template: str,
    variables: Mapping[str, object],
    *,
    strict: bool = False,
    encode: Callable[[str], str] | None = None,
) -> str:
    """Substitute `${name}` from `variables`.

    `encode` is applied to each substituted value (not to the literal text), e.g. URL-encoding for lookups.
    """
    if "$" not in template:  # plain text (most values a flow sets): nothing to scan, nothing to build
        return template

    def value_of(name: str) -> str:
        if name in variables:
            value = variables[name]
            text = "" if value is None else str(value)
        elif strict:
            raise TemplateError(f"variable ${{{name}}} is not set; set it earlier in the flow or in `variables:`")
        else:
            text = ""
        return encode(text) if encode is not None else text

    return _scan(template, value_of)


def template_names(template: str) -> set[str]:
    """Names a template refers to (for validators and tools)."""
    names: set[str] = set()

    def collect(name: str) -> str:
        names.add(name)
        return ""

    _scan(template, collect)
    return names


_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]")


def safe_filename(name: str, *, max_length: int = 120, default: str = "unnamed") -> str:
    """Make `name` one harmless path component: letters, digits, `._+-` only; no `/`, no `..`, no control
    characters, no leading dot or dash (which would hide the file or look like an option)."""
    cleaned = _UNSAFE.sub("_", name)
    while ".." in cleaned:
        cleaned = cleaned.replace("..", "_")
    cleaned = cleaned.lstrip(".-")[:max_length].rstrip(".")
    return cleaned or default
