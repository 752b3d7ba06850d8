"""ivr/records.py: the plain records classic AGI builds before its first command, subclasses included."""

from __future__ import annotations

import copy
import pickle

import pytest

from ivr.records import FrozenRecord, Record


class Point(Record):
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y


class Point3(Point):
    __slots__ = ("z",)

    def __init__(self, x: int, y: int, z: int) -> None:
        super().__init__(x, y)
        self.z = z


class Tag(FrozenRecord):
    __slots__ = "name"  # a single slot written as a string

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)


class ColourTag(Tag):
    __slots__ = ("colour",)

    def __init__(self, name: str, colour: str) -> None:
        super().__init__(name)
        object.__setattr__(self, "colour", colour)


def test_a_record_compares_prints_and_copies_field_by_field() -> None:
    p = Point(1, 2)
    assert p == Point(1, 2) and p != Point(1, 3) and p.as_dict() == {"x": 1, "y": 2}
    assert repr(p) == "Point(x=1, y=2)" and p.replace(y=5) == Point(1, 5)
    with pytest.raises(TypeError):
        hash(p)


def test_a_subclass_keeps_its_parents_fields() -> None:
    p = Point3(1, 2, 3)
    assert Point3._fields == ("x", "y", "z")
    assert p.as_dict() == {"x": 1, "y": 2, "z": 3} and repr(p) == "Point3(x=1, y=2, z=3)"
    assert p != Point3(9, 2, 3) and p != Point3(1, 2, 9) and p == Point3(1, 2, 3)
    assert p.replace(z=4) == Point3(1, 2, 4) and p.replace(x=0).as_dict() == {"x": 0, "y": 2, "z": 3}
    assert p != Point(1, 2)  # another type is never equal


def test_a_frozen_subclass_keeps_its_parents_fields_in_hash_copy_and_pickle() -> None:
    t = ColourTag("vip", "red")
    assert ColourTag._fields == ("name", "colour") and Tag._fields == ("name",)
    assert hash(t) == hash(ColourTag("vip", "red")) and hash(t) != hash(ColourTag("other", "red"))
    assert t != ColourTag("other", "red") and t.replace(colour="blue").as_dict() == {"name": "vip", "colour": "blue"}
    assert copy.copy(t) == t and pickle.loads(pickle.dumps(t)) == t
    with pytest.raises(AttributeError):
        t.name = "x"  # type: ignore[misc]
