"""Tests for engine.topology: routing by latency, link state, and max-min fair rates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.topology import Topology, max_min_fair

INF = math.inf
TOL = 1e-7


def line(*names: str, capacity: float = 10.0, latency: float = 1e-3) -> Topology:
    """Hosts joined in a chain: names[0] - names[1] - ... with equal links."""
    nodes = [(name, "host") for name in names]
    links = [(a, b, capacity, latency) for a, b in zip(names, names[1:], strict=False)]
    return Topology.build(nodes, links)


def triangle() -> Topology:
    """a-b direct (1 ms, 10 B/s) and a detour a-c-b (2 ms each, 4 B/s then 6 B/s)."""
    return Topology.build(
        [("a", "host"), ("b", "host"), ("c", "switch")],
        [("a", "b", 10.0, 1e-3), ("a", "c", 4.0, 2e-3), ("c", "b", 6.0, 2e-3)],
    )


def assert_max_min_fair(
    paths: Sequence[np.ndarray], demands: np.ndarray, caps: np.ndarray, rates: np.ndarray
) -> None:
    """Check feasibility and the bottleneck characterisation of max-min fairness: an
    allocation is max-min fair iff every flow meets its demand or crosses a saturated link
    on which no other flow gets more. Together these pin the allocation down uniquely."""
    assert rates.shape == demands.shape
    assert rates.dtype == np.float64
    assert np.all(rates >= 0.0)
    assert np.all(rates <= demands * (1 + TOL))
    load = np.zeros_like(caps)
    for p, r in zip(paths, rates, strict=True):
        np.add.at(load, p, r)
    assert np.all(load <= caps * (1 + TOL) + TOL), (load, caps)
    saturated = load >= caps * (1 - TOL) - TOL
    top = np.zeros_like(caps)
    for p, r in zip(paths, rates, strict=True):
        np.maximum.at(top, p, r)
    for i, (p, r, d) in enumerate(zip(paths, rates, demands, strict=True)):
        if len(p) == 0:
            assert r == (d if math.isfinite(d) else 0.0), f"flow {i} without a path"
            continue
        if r >= d * (1 - TOL):
            continue
        bottlenecks = [link for link in p if saturated[link] and r >= top[link] * (1 - TOL)]
        assert bottlenecks, f"flow {i} (rate {r}, demand {d}) could grow: {rates}"


def mmf(paths: list[list[int]], demands: list[float], caps: list[float]) -> np.ndarray:
    arrays = [np.array(p, dtype=np.int64) for p in paths]
    rates = max_min_fair(arrays, np.array(demands), np.array(caps))
    assert_max_min_fair(arrays, np.array(demands), np.array(caps), rates)
    return rates


# --- textbook cases -----------------------------------------------------------------------


def test_single_link_split_equally_among_elastic_flows() -> None:
    topo = line("a", "b", capacity=9.0)
    rates = topo.rates([("a", "b")] * 3, [INF] * 3)
    np.testing.assert_allclose(rates, [3.0, 3.0, 3.0])


def test_parking_lot_gives_everyone_half() -> None:
    # Links a-b and b-c, capacity C. The long flow a->c shares each link with one short
    # flow; both links fill together at C/2 per flow, so nobody can grow past C/2.
    topo = line("a", "b", "c", capacity=8.0)
    rates = topo.rates([("a", "c"), ("a", "b"), ("b", "c")], [INF] * 3)
    np.testing.assert_allclose(rates, [4.0, 4.0, 4.0])


def test_small_demand_is_met_and_the_rest_is_shared() -> None:
    # Capacity 10: the flow asking for 1 gets it; the two elastic ones split 9.
    np.testing.assert_allclose(mmf([[0], [0], [0]], [1.0, INF, INF], [10.0]), [1.0, 4.5, 4.5])


def test_several_demands_below_the_fair_share_are_all_met() -> None:
    # Fair share of 10 over 4 flows is 2.5, so demands 1 and 2 are met; that leaves 7 for
    # the others: 3 is met too, and the elastic flow gets the remaining 4.
    rates = mmf([[0]] * 4, [1.0, 2.0, 3.0, INF], [10.0])
    np.testing.assert_allclose(rates, [1.0, 2.0, 3.0, 4.0])


def test_two_links_of_different_capacity() -> None:
    # Link 0 has capacity 10 (flows A and B), link 1 capacity 4 (A alone). Raising both:
    # link 1 fills when A = 4 (link 0 would need 5 each). A freezes at 4; B alone takes
    # what is left of link 0: 10 - 4 = 6.
    np.testing.assert_allclose(mmf([[0, 1], [0]], [INF, INF], [10.0, 4.0]), [4.0, 6.0])


def test_bottleneck_levels_cascade() -> None:
    # Link X (cap 3): f0, f1, f2. Link Y (cap 10): f2, f3. X fills first at 1 per flow, so
    # f0..f2 freeze at 1; Y then has 10 - 1 = 9 for f3 alone.
    rates = mmf([[0], [0], [0, 1], [1]], [INF] * 4, [3.0, 10.0])
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 9.0])


def test_flow_stopping_at_its_demand_frees_room_on_the_tightest_link() -> None:
    # Link X (cap 4): A (demand 1) and B. Link Y (cap 9): B, C, D. First level: X offers 2
    # each, Y 3 each, so everyone rises by 2 but A stops at 1. X is then not full (1 + 2),
    # so B keeps rising with C and D: X has 1 left for B, Y has 3 left for three flows ->
    # both fill at 3. Treating X as full after the first step would wrongly give B = 2.
    rates = mmf([[0], [0, 1], [1], [1]], [1.0, INF, INF, INF], [4.0, 9.0])
    np.testing.assert_allclose(rates, [1.0, 3.0, 3.0, 3.0])


def test_opposite_directions_do_not_compete() -> None:
    topo = line("a", "b", capacity=10.0)
    np.testing.assert_allclose(topo.rates([("a", "b"), ("b", "a")], [INF, INF]), [10.0, 10.0])
    np.testing.assert_allclose(topo.rates([("a", "b"), ("a", "b")], [INF, INF]), [5.0, 5.0])
    assert topo.path("a", "b").tolist() == [topo.link_index("a", "b")]
    assert topo.link_names[topo.path("b", "a")[0]] == "b->a"


def test_zero_capacity_link_gives_zero_without_wasting_the_others() -> None:
    # A crosses the dead link 0 and link 1; it can send nothing, so B gets all of link 1.
    np.testing.assert_allclose(mmf([[0, 1], [1]], [INF, INF], [0.0, 10.0]), [0.0, 10.0])


def test_flow_without_path() -> None:
    # An empty path meets no link: a bounded demand is granted, an unbounded one gets 0.
    np.testing.assert_allclose(mmf([[], [], [0]], [3.0, INF, INF], [5.0]), [3.0, 0.0, 5.0])


def test_no_flows() -> None:
    assert max_min_fair([], np.empty(0), np.array([1.0])).shape == (0,)


# --- link state ---------------------------------------------------------------------------


def test_downed_link_without_alternative_gives_zero() -> None:
    topo = line("a", "b", capacity=10.0)
    topo.set_link_state("b", "a", up=False)
    assert not topo.link_up.any()
    assert not topo.has_path("a", "b")
    assert topo.path("a", "b").size == 0
    assert topo.path_latency_s("a", "b") == math.inf
    # Even a modest finite demand is not granted: an unreachable flow cannot send.
    np.testing.assert_allclose(topo.rates([("a", "b"), ("a", "b")], [INF, 1.0]), [0.0, 0.0])
    topo.set_link_state("a", "b", up=True)
    np.testing.assert_allclose(topo.rates([("a", "b")], [INF]), [10.0])


def test_downed_link_reroutes_and_comes_back() -> None:
    topo = triangle()
    assert [topo.link_names[i] for i in topo.path("a", "b")] == ["a->b"]
    np.testing.assert_allclose(topo.rates([("a", "b")], [INF]), [10.0])

    topo.set_link_state("a", "b", up=False)
    assert [topo.link_names[i] for i in topo.path("a", "b")] == ["a->c", "c->b"]
    assert topo.path_latency_s("a", "b") == pytest.approx(4e-3)
    # The detour's narrowest link (a-c, 4 B/s) limits the flow.
    np.testing.assert_allclose(topo.rates([("a", "b")], [INF]), [4.0])
    assert topo.effective_capacity_bytes_per_s[topo.link_index("a", "b")] == 0.0

    topo.set_link_state("a", "b", up=True)
    assert [topo.link_names[i] for i in topo.path("a", "b")] == ["a->b"]


def test_degraded_capacity_lowers_rates() -> None:
    topo = line("a", "b", "c", capacity=10.0)
    topo.set_link_capacity("c", "b", 3.0)
    assert topo.graph.edges["b", "c"]["capacity_bytes_per_s"] == 3.0
    np.testing.assert_allclose(topo.rates([("a", "c"), ("a", "b")], [INF, INF]), [3.0, 7.0])
    with pytest.raises(ValueError, match="capacity"):
        topo.set_link_capacity("a", "b", 0.0)


# --- routing ------------------------------------------------------------------------------


def test_path_follows_lowest_latency_not_fewest_hops() -> None:
    topo = Topology.build(
        [("a", "host"), ("b", "host"), ("s", "switch")],
        [("a", "b", 10.0, 5e-3), ("a", "s", 10.0, 1e-3), ("s", "b", 10.0, 1e-3)],
    )
    assert [topo.link_names[i] for i in topo.path("a", "b")] == ["a->s", "s->b"]
    assert [topo.link_names[i] for i in topo.path("b", "a")] == ["b->s", "s->a"]
    assert topo.path_latency_s("a", "b") == pytest.approx(2e-3)
    assert topo.path_latency_s("a", "a") == 0.0
    assert topo.has_path("a", "a") and topo.path("a", "a").size == 0


def test_paths_are_deterministic_under_ties() -> None:
    def build() -> Topology:
        return Topology.build(
            [("a", "host"), ("b", "host"), ("s1", "switch"), ("s2", "switch")],
            [
                ("a", "s1", 1.0, 1e-3),
                ("a", "s2", 1.0, 1e-3),
                ("s1", "b", 1.0, 1e-3),
                ("s2", "b", 1.0, 1e-3),
            ],
        )

    first = build().path("a", "b").tolist()
    assert all(build().path("a", "b").tolist() == first for _ in range(5))


def test_graph_attributes() -> None:
    topo = triangle()
    assert topo.graph.nodes["c"]["kind"] == "switch"
    edge = topo.graph.edges["c", "a"]
    assert edge["latency_s"] == 2e-3 and edge["capacity_bytes_per_s"] == 4.0
    assert topo.link_names[edge["link_index"]] == "a->c"
    assert topo.link_capacity_bytes_per_s.tolist() == [10.0, 10.0, 4.0, 4.0, 6.0, 6.0]


@pytest.mark.parametrize(
    ("nodes", "links", "message"),
    [
        ([("a", "host")], [("a", "z", 1.0, 0.0)], "unknown node 'z'"),
        (
            [("a", "host"), ("b", "host")],
            [("a", "b", 1.0, 0.0), ("b", "a", 2.0, 0.0)],
            "duplicate link",
        ),
        ([("a", "host"), ("b", "host")], [("a", "b", 0.0, 0.0)], "capacity"),
        ([("a", "host"), ("b", "host")], [("a", "b", -5.0, 0.0)], "capacity"),
        ([("a", "host"), ("b", "router")], [], "unknown kind"),
        ([("a", "host"), ("a", "switch")], [], "duplicate node"),
    ],
)
def test_build_rejects_bad_input(
    nodes: list[tuple[str, str]], links: list[tuple[str, str, float, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Topology.build(nodes, links)


def test_unknown_node_or_link() -> None:
    topo = triangle()
    with pytest.raises(ValueError, match="unknown node"):
        topo.path("a", "nowhere")
    with pytest.raises(ValueError, match="no link"):
        topo.set_link_state("b", "b", up=False)


# --- properties ---------------------------------------------------------------------------

demand_st = st.one_of(st.just(INF), st.floats(0.0, 30.0))


@st.composite
def link_problems(draw: st.DrawFn) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    m = draw(st.integers(1, 6))
    caps = draw(
        st.lists(
            st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0, 10.0]) | st.floats(0.1, 50),
            min_size=m,
            max_size=m,
        )
    )
    n = draw(st.integers(1, 10))
    paths = [
        np.array(draw(st.lists(st.integers(0, m - 1), unique=True, max_size=m)), dtype=np.int64)
        for _ in range(n)
    ]
    demands = draw(st.lists(demand_st, min_size=n, max_size=n))
    return paths, np.array(demands), np.array(caps)


@given(link_problems())
def test_max_min_fair_properties(problem: tuple[list[np.ndarray], np.ndarray, np.ndarray]) -> None:
    paths, demands, caps = problem
    assert_max_min_fair(paths, demands, caps, max_min_fair(paths, demands, caps))


@st.composite
def networks(draw: st.DrawFn) -> tuple[Topology, list[tuple[str, str]], np.ndarray]:
    n = draw(st.integers(2, 6))
    names = [f"n{i}" for i in range(n)]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1))
    links = [
        (a, b, draw(st.sampled_from([1.0, 2.0, 5.0, 10.0])), draw(st.sampled_from([1e-3, 2e-3])))
        for a, b in chosen
    ]
    topo = Topology.build([(name, "host") for name in names], links)
    for a, b in chosen:
        if draw(st.booleans()) and draw(st.booleans()):
            topo.set_link_state(a, b, up=False)
    flows = draw(
        st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), min_size=1, max_size=12)
    )
    demands = np.array(draw(st.lists(demand_st, min_size=len(flows), max_size=len(flows))))
    return topo, flows, demands


@settings(deadline=None)
@given(networks())
def test_network_rates_properties(net: tuple[Topology, list[tuple[str, str]], np.ndarray]) -> None:
    topo, flows, demands = net
    rates = topo.rates(flows, demands)
    caps = topo.effective_capacity_bytes_per_s
    paths = [topo.path(src, dst) for src, dst in flows]
    # Routes never use a link that is down.
    for p in paths:
        assert topo.link_up[p].all()
    effective = demands.copy()
    for i, ((src, dst), p) in enumerate(zip(flows, paths, strict=True)):
        if p.size == 0 and src != dst:
            assert rates[i] == 0.0
            effective[i] = 0.0
    assert_max_min_fair(paths, effective, caps, rates)
