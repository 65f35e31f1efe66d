from pathlib import Path
from typing import Any

import pytest

from engine import InputError, Simulation, invariants, load_scenario, parse_scenario
from engine.spec import VMSpec
from tests.conftest import ROOT, small_spec

BUNDLED = sorted(p for p in (ROOT / "scenarios").rglob("*.toml")
                 if not p.name.endswith(".sweep.toml"))  # sweeps: tests/app/test_sweep_dask


def _error(data: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as info:
        parse_scenario(data, "x.toml")
    return info.value


def test_wrong_unit_names_the_field() -> None:
    data = small_spec()
    data["vm"][1]["memory"] = "12 parsecs"
    err = _error(data)
    assert err.path == "vm[1].memory"
    assert "size" in err.expected
    assert str(err).startswith("x.toml: vm[1].memory:")


def test_unknown_field_is_an_error() -> None:
    data = small_spec()
    data["host"][0]["memroy"] = "1GiB"
    err = _error(data)
    assert err.path == "host[0].memroy"
    assert "unknown field" in err.expected


def test_vm_on_missing_host() -> None:
    data = small_spec()
    data["vm"][2]["host"] = "h9"
    err = _error(data)
    assert err.path == "vm[2].host"
    assert "'h9'" in err.expected and "h1" in err.expected


def test_link_to_missing_node_and_duplicates() -> None:
    data = small_spec()
    data["link"].append({"a": "tor", "b": "nowhere", "capacity": "1Gbit/s"})
    assert _error(data).path == "link[1].b"
    data = small_spec()
    data["vm"].append({"id": "a", "memory": "4MiB"})
    assert "duplicate" in _error(data).expected


def test_timeline_errors_point_into_the_timeline() -> None:
    data = small_spec(timeline=[{"at": "10s", "kind": "stop_vm", "vm": "zz"}])
    assert _error(data).path == "timeline[0].vm"
    data = small_spec(timeline=[{"at": "10s", "kind": "stop_vm"}])
    assert _error(data).path == "timeline[0].vm"
    data = small_spec(timeline=[{"at": "soon", "kind": "stop_vm", "vm": "a"}])
    assert _error(data).path == "timeline[0].at"


def test_inconsistent_sizes_and_mix() -> None:
    data = small_spec()
    data["vm"][0]["min"] = "9MiB"
    assert "min" in _error(data).expected
    data = small_spec()
    data["vm"][0]["content"] = {"zero": 0.5, "os": 0.5, "app": 0.5, "private": 0.0}
    assert "sum to 1" in _error(data).expected


def test_syntax_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname = 1")
    with pytest.raises(InputError, match="bad.toml: \\(syntax\\)"):
        load_scenario(bad)
    with pytest.raises(InputError, match="cannot read"):
        load_scenario(tmp_path / "none.toml")


def test_groups_expand_in_order() -> None:
    data = small_spec(
        host_group=[{"id": "r", "count": 4, "memory": "8MiB", "switches": ["tor"]}],
        vm_group=[{"id": "g", "count": 6, "memory": "1MiB", "hosts": ["r0", "r1", "r3"]}],
    )
    spec = parse_scenario(data)
    assert [h.id for h in spec.all_hosts()][-4:] == ["r0", "r1", "r2", "r3"]
    assert [(v.id, v.host) for v in spec.all_vms()][-3:] == [("g3", "r0"), ("g4", "r1"),
                                                            ("g5", "r3")]


def test_group_members_are_the_validated_specs_and_are_checked_where_they_differ() -> None:
    """A group's members after the first are copies of it with their own id and place:
    each equals the spec validated in full, and what differs between members (the id's
    length, a host named "*" among others) is still refused."""
    data = small_spec(
        host_group=[{"id": "r", "count": 5, "memory": "8MiB", "switches": ["tor", "tor2"]}],
        vm_group=[{"id": "g", "count": 7, "memory": "1MiB", "hosts": ["*"], "tenant": "t"}],
    )
    data["switch"].append({"id": "tor2", "kind": "switch"})
    data["link"].append({"a": "tor2", "b": "gw", "capacity": "10Gbit/s"})
    spec = parse_scenario(data)
    hosts = spec.all_hosts()
    assert [(h.id, h.switch) for h in hosts[-5:]] == [
        ("r0", "tor"), ("r1", "tor"), ("r2", "tor"), ("r3", "tor2"), ("r4", "tor2")]
    for vm in spec.all_vms()[-7:]:
        assert vm == VMSpec.model_validate(vm.model_dump())
    assert spec.all_vms() is not spec.all_vms()  # a fresh list each time: callers append
    longest = data | {"vm_group": [{"id": "g" * 63, "count": 11, "memory": "1MiB"}]}
    err = _error(longest)  # g...g10: 65 characters; a one-line error, not a crash
    assert err.path == "vm_group[0]" and "64 characters" in err.expected
    hosts = data | {"host_group": [{"id": "r" * 64, "count": 2, "memory": "8MiB"}]}
    assert _error(hosts).path == "host_group[0]"
    star = data | {"vm_group": [{"id": "g", "count": 2, "memory": "1MiB", "hosts": ["r0", "*"]}]}
    err = _error(star)
    assert err.path == "vm_group[0]" and '"*"' in err.expected
    fewer = spec.model_copy(update={"vm_groups": [spec.vm_groups[0].model_copy(
        update={"count": 2})]})
    assert [v.id for v in fewer.all_vms()][-3:] == [spec.all_vms()[-8].id, "g0", "g1"]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bundled_scenario_runs_50_ticks(path: Path) -> None:
    # The benchmark world has 131 M pages: here a tenth of its VMs on all of its hosts (the
    # full size is benchmarks/engine_bench.py's), its invariants checked once at the end.
    big = "bench" in path.parts
    tenth = [f"vm_group[{i}].count=25" for i in range(4)] if big else []
    if path.stem == "dc-10000x100000":  # 20 of its hosts, each with its ten VMs
        tenth = ["host_group[0].count=20", *(f"vm_group[{i}].count=20" for i in range(10))]
    sim = Simulation.from_spec(load_scenario(path, tenth))
    # Invariants after each of the first five ticks, then every fifth (a check reads every
    # page: on the sweep's 25 M pages, fifty of them were most of a 13 s test).
    for tick in range(1, 51):
        sim.step(1)
        if not big and (tick <= 5 or tick % 5 == 0):
            assert invariants.check(sim.world.state) == [], tick
    assert sim.tick == 50
    assert invariants.check(sim.world.state) == []
    assert sum(v.running for v in sim.snapshot().vms) > 0
