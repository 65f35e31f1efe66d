"""Input the engine must refuse at the edge, or survive: units of any type, budgets, the
timeline's order, --set of any field, saves that break an invariant, long runs that must
not grow."""

from __future__ import annotations

import datetime
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import InputError, Simulation, parse_scenario
from engine.commands import Migrate
from engine.persistence import from_plain
from engine.scenario import apply_overrides
from engine.text import printable
from engine.units import UnitError, parse_bytes, parse_rate, parse_seconds
from tests.conftest import small_spec

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.datetimes() | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=5)


@settings(max_examples=150, deadline=None)
@given(value=anything | st.from_regex(r"\s*[0-9.eE+-]{0,400}\s*[A-Za-zµ/]{0,8}"))
def test_units_raise_only_unit_errors(value: Any) -> None:
    for parse in (parse_bytes, parse_rate, parse_seconds):
        try:
            result = parse(value)
        except UnitError:
            continue
        assert result >= 0 and (isinstance(result, int) or math.isfinite(result))


def test_units_refuse_what_used_to_crash() -> None:
    for value in ([1], {"a": 1}, datetime.date(2024, 1, 1), "1e400", 1e400, None):
        with pytest.raises(UnitError):
            parse_bytes(value)  # type: ignore[arg-type]
    assert parse_bytes("2PiB") == 2 * 1024**5


def test_printable_strips_escapes() -> None:
    assert printable("\x1b[2Jname\x1b]0;title\x07 \x9b31mx\u202e") == "name x"
    assert printable("a\nb\tc", keep_newlines=True) == "a\nb\tc"
    assert printable("a\nb") == "a b"


def _data(**scenario: Any) -> dict[str, Any]:
    data = small_spec()
    data["scenario"].update(scenario)
    return data


def test_a_scenario_over_the_page_budget_says_to_choose_a_larger_page() -> None:
    data = _data()
    data["host"][0].update(memory="200TiB", swap_space="200TiB")
    data["vm"][0].update(memory="100TiB")
    with pytest.raises(InputError) as err:
        parse_scenario(data, "big.toml")
    assert "page_size" in err.value.expected


def test_a_load_spike_past_the_tick_budget_is_rejected_not_run() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    verdict = sim.submit({"kind": "set_workload", "vm": "a", "reads_per_s": 9e7})
    assert not verdict.ok and "per tick" in verdict.reason
    assert sim.submit({"kind": "set_workload", "vm": "a", "reads_per_s": 5e3}).ok


def test_timeline_entries_apply_in_time_order() -> None:
    data = small_spec()
    data["timeline"] = [
        {"at": "3s", "kind": "set_shares", "vm": "a", "shares": 111},
        {"at": "1s", "kind": "set_shares", "vm": "a", "shares": 999},
    ]
    spec = parse_scenario(data)
    assert [e.at for e in spec.timeline] == [1.0, 3.0]
    assert spec.timeline_reordered() == [0, 1]
    sim = Simulation.from_spec(spec)
    sim.step(2)
    assert sim.world.state.vms["shares"][0] == 999  # the later-listed, earlier entry
    sim.step(2)
    assert sim.world.state.vms["shares"][0] == 111


def test_set_reaches_fields_the_file_leaves_out() -> None:
    data = small_spec()
    data["vm"][0].pop("content", None)
    apply_overrides(data, ["vm[0].content.resident=0.25",
                           "policy.migration.xen_max_rounds=7"], "x.toml")
    spec = parse_scenario(data)
    assert spec.vms[0].content.resident == 0.25
    assert spec.policy.migration.xen_max_rounds == 7
    with pytest.raises(InputError, match="no entry"):
        apply_overrides(small_spec(), ["vm[9].memory=1"], "x.toml")
    with pytest.raises(InputError, match="expected one of"):
        apply_overrides(small_spec(), ["vm[0].content.colour=1"], "x.toml")


def test_a_save_that_breaks_a_refcount_is_refused_with_the_violation_named() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(3)
    meta, arrays = sim.save_state()
    refcount = arrays["frames.refcount"]
    refcount[np.flatnonzero(refcount)[0]] = 0
    Simulation.from_state((meta, arrays))  # an in-memory copy is trusted, not checked
    with pytest.raises(InputError) as err:
        from_plain(meta, arrays, "s.toml")
    assert err.value.path == "(invariants)"
    assert "refcount 0 but 1 pages map it" in err.value.expected


def test_finished_migrations_give_back_their_page_arrays() -> None:
    sim = Simulation.from_spec(parse_scenario(small_spec()))
    hosts = ["h2", "h1"] * 3
    for to in hosts:
        assert sim.submit(Migrate(vm="a", to=to)).ok
        for _ in range(200):
            sim.step(1)
            if not sim.world.state.migrations[-1].active:
                break
    table = sim.world.state.migrations
    assert [m.status for m in table] == ["done"] * len(hosts)
    # Nothing lives in the arenas any more: the next migration's pages reuse the space.
    assert [table.pages.live, table.lists.live, table.cache.live, table.dirty.live] == [0] * 4
    assert all(r["transferred_bytes"] > 0 for r in sim.migrations())
