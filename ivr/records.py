"""Plain record classes for the models a classic AGI call builds before its first command.

Rules for this file:
- What `@dataclass` would generate, written once here: field-wise `==` and `repr`, `replace()`, `as_dict()`, and
  read-only fields for `FrozenRecord`. Each record lists its fields in `__slots__` (in order) and writes its own
  keyword-friendly `__init__` (typed, so mypy checks every construction).
- Why not `@dataclass`: importing `dataclasses` (it imports `inspect`, `ast`, `dis`, `tokenize`) costs ~6 ms and
  decorating the ~17 classes of the AGI protocol, the call's channel results, context and report ~4-5 ms more
  (code generated and `exec`'d per class), all before a classic AGI call's first command, where issue 12's whole
  budget is 25 ms. Decision D9 (docs/decisions.md) made the same choice for the compiled flows.
- A subclass may add fields (its own `__slots__`): `__init_subclass__` gathers every class's slots along the MRO,
  base first, into `_fields`, which `==`, `repr`, `hash`, `replace()` and `as_dict()` read, so no field is lost.
- No imports beyond typing: the AGI protocol core (sans-IO) and the flow engine both use it.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """A mutable record: equal field by field, printed as `Name(field=value, ...)`, unhashable (like a dataclass)."""

    __slots__: tuple[str, ...] = ()
    _fields: ClassVar[tuple[str, ...]] = ()  # every field, base classes' first (set per class by __init_subclass__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in fields and name not in ("__weakref__", "__dict__"):
                    fields.append(name)
        cls._fields = tuple(fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"

    def as_dict(self) -> dict[str, Any]:
        """The fields, by name, in order (values as they are: not copied, nested records not converted)."""
        return {n: getattr(self, n) for n in self._fields}

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes` (what `dataclasses.replace` does)."""
        return type(self)(**{**self.as_dict(), **changes})


class FrozenRecord(Record):
    """A read-only record (its `__init__` sets fields with `object.__setattr__`), hashable by its fields."""

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only; use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, n) for n in self._fields))

    def __getstate__(self) -> dict[str, Any]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:  # copy and pickle: fields set as __init__ does
        for name, value in state.items():
            object.__setattr__(self, name, value)
