"""The page record (engine/state.py Pages): location and guest kind share one 2-byte
record; the fields are views of it, `at` reads them by one gather of the words, and the
engine never hands a field's strided view to np.take (which would copy the whole field
first: 131 M pages a call on the 1,000-VM data center)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from engine.state import META_FIELDS, GuestKind, Loc, Pages


def test_the_fields_are_views_of_one_record_read_together_by_at() -> None:
    p = Pages.empty(100)
    rng = np.random.default_rng(3)
    loc = rng.integers(0, len(Loc), 100).astype(np.uint8)
    kind = rng.integers(0, len(GuestKind), 100).astype(np.uint8)
    p.location[:] = loc
    p.guest_kind[:] = kind
    assert np.array_equal(p.word, loc.astype(np.uint16) | kind.astype(np.uint16) << 8)
    idx = rng.integers(0, 100, 500)
    assert np.array_equal(p.at("location", idx), loc[idx])
    assert np.array_equal(p.at("guest_kind", idx), kind[idx])
    p.word[7] = Loc.SHARED | GuestKind.CACHE << 8  # a write of the word is a write of both
    assert p.location[7] == Loc.SHARED and p.guest_kind[7] == GuestKind.CACHE


def test_extend_and_from_arrays_keep_every_field_and_the_views() -> None:
    p = Pages.empty(10)
    p.location[3], p.guest_kind[4], p.content[5], p.touched[6] = 2, 3, 99, 7
    start = p.extend(5)
    assert start == 10 and len(p) == 15
    assert (p.location[3], p.guest_kind[4], p.content[5], p.touched[6]) == (2, 3, 99, 7)
    assert np.all(p.frame[10:] == -1) and np.all(p.location[10:] == 0)
    p.location[12] = Loc.PRIVATE  # still a view of the grown record
    assert p.at("location", np.array([12]))[0] == Loc.PRIVATE
    again = Pages.from_arrays({k: v.copy() for k, v in p.arrays().items()})
    for name, arr in p.arrays().items():
        assert np.array_equal(getattr(again, name), arr), name
    assert set(p.arrays()) >= set(META_FIELDS)


def test_the_engine_gathers_a_records_fields_through_at() -> None:
    """No np.take of a field's view (a copy of the whole field first) and no gather by
    indexing it with an index array (numpy's strided fancy indexing: 3.5x slower than
    `at`'s gather of the contiguous words; measured 7 against 2 ms for 300 k pages).
    Slices and stores through the views are fine."""
    root = Path(__file__).resolve().parents[2] / "engine"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            take = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "take" and node.args
                    and isinstance(node.args[0], ast.Attribute)
                    and node.args[0].attr in META_FIELDS)
            gather = (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                      and isinstance(node.value, ast.Attribute)
                      and node.value.attr in META_FIELDS
                      and not isinstance(node.slice, ast.Slice | ast.Constant))
            if take or gather:
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"gathers from a page-record field's view (use pages.at): {found}"
