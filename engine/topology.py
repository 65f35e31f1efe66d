"""Data-center network: a networkx graph of nodes and full-duplex links, latency-shortest
paths over the links that are up, and max-min fair rates for flows sharing those links.

Every physical link ``a-b`` becomes two directed links, ``a->b`` (index ``2k``) and ``b->a``
(index ``2k + 1``) for the k-th link given to :meth:`Topology.build`, each with the full
capacity: Ethernet is full-duplex, so traffic in opposite directions never competes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

NODE_KINDS = frozenset({"host", "switch", "storage", "gateway"})

# Relative slack for "this link is full": the water level is raised in float steps, so a
# saturated link ends a few ulps below its capacity; 1e-9 is far above that and far below
# anything a player could notice.
REL_TOL = 1e-9

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

_EMPTY_PATH: IndexArray = np.empty(0, dtype=np.int64)
_EMPTY_PATH.setflags(write=False)


class Topology:
    """Nodes, links and their current state. Build it with :meth:`Topology.build`."""

    def __init__(
        self,
        nodes: Sequence[tuple[str, str]],
        links: Sequence[tuple[str, str, float, float]],
    ) -> None:
        self.graph = nx.Graph()
        for node_id, kind in nodes:
            if node_id in self.graph:
                raise ValueError(f"duplicate node {node_id!r}")
            if kind not in NODE_KINDS:
                raise ValueError(
                    f"node {node_id!r} has unknown kind {kind!r}; expected one of "
                    f"{sorted(NODE_KINDS)}"
                )
            self.graph.add_node(node_id, kind=kind)
        self.link_names: list[str] = []
        self._directed: dict[tuple[str, str], int] = {}
        capacity: list[float] = []
        latency: list[float] = []
        for a, b, cap, lat in links:
            where = f"link {a!r}-{b!r}"
            for end in (a, b):
                if end not in self.graph:
                    raise ValueError(f"{where}: unknown node {end!r}")
            if a == b:
                raise ValueError(f"{where}: a link must join two different nodes")
            if self.graph.has_edge(a, b):
                raise ValueError(f"{where}: duplicate link (links are full-duplex, one per pair)")
            _check_capacity(where, cap)
            if not (math.isfinite(lat) and lat >= 0.0):
                raise ValueError(f"{where}: latency must be finite and >= 0 s, got {lat!r}")
            index = len(self.link_names)
            self.graph.add_edge(
                a, b, capacity_bytes_per_s=float(cap), latency_s=float(lat), link_index=index
            )
            self._directed[(a, b)], self._directed[(b, a)] = index, index + 1
            self.link_names += [f"{a}->{b}", f"{b}->{a}"]
            capacity += [float(cap), float(cap)]
            latency += [float(lat), float(lat)]
        self.link_capacity_bytes_per_s: FloatArray = np.array(capacity, dtype=np.float64)
        self.link_latency_s: FloatArray = np.array(latency, dtype=np.float64)
        self.link_up: npt.NDArray[np.bool_] = np.ones(len(self.link_names), dtype=np.bool_)
        self._paths: dict[tuple[str, str], IndexArray] = {}

    @classmethod
    def build(
        cls,
        nodes: Sequence[tuple[str, str]],
        links: Sequence[tuple[str, str, float, float]],
    ) -> Topology:
        """Nodes are ``(node_id, kind)``; links are ``(a, b, capacity_bytes_per_s,
        latency_s)``. Raises ValueError on an unknown node or kind, a duplicate node or
        link, a non-positive capacity or a negative latency."""
        return cls(nodes, links)

    def link_index(self, a: str, b: str) -> int:
        """Index of the directed link a->b."""
        try:
            return self._directed[(a, b)]
        except KeyError:
            raise ValueError(f"no link between {a!r} and {b!r}") from None

    def set_link_state(self, a: str, b: str, up: bool) -> None:
        """Take a physical link (both directions) down or bring it back up."""
        forward = self.link_index(a, b) & ~1
        if bool(self.link_up[forward]) != up:
            self.link_up[forward : forward + 2] = up
            self._paths.clear()

    def set_link_capacity(self, a: str, b: str, capacity_bytes_per_s: float) -> None:
        """Degrade or restore a physical link's capacity (both directions)."""
        forward = self.link_index(a, b) & ~1
        _check_capacity(f"link {a!r}-{b!r}", capacity_bytes_per_s)
        self.link_capacity_bytes_per_s[forward : forward + 2] = capacity_bytes_per_s
        self.graph.edges[a, b]["capacity_bytes_per_s"] = float(capacity_bytes_per_s)
        # Routes follow latency, not capacity, so the path cache stays valid.

    @property
    def effective_capacity_bytes_per_s(self) -> FloatArray:
        """Capacity per directed link, 0 where the link is down."""
        return np.where(self.link_up, self.link_capacity_bytes_per_s, 0.0)

    def path(self, src: str, dst: str) -> IndexArray:
        """Directed link indices along the lowest-latency path over links that are up.

        Empty when ``src == dst`` or when no path exists (see :meth:`has_path`). The array
        is shared with the cache, hence read-only.
        """
        key = (src, dst)
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        for node in key:
            if node not in self.graph:
                raise ValueError(f"unknown node {node!r}")
        up = self.link_up

        def weight(_u: str, _v: str, data: dict[str, Any]) -> float | None:
            # None hides the edge from Dijkstra: cheaper than building a filtered view.
            return float(data["latency_s"]) if up[data["link_index"]] else None

        try:
            hops: list[str] = nx.shortest_path(self.graph, src, dst, weight=weight)
        except nx.NetworkXNoPath:
            result = _EMPTY_PATH
        else:
            result = np.array(
                [self._directed[(u, v)] for u, v in zip(hops, hops[1:], strict=False)],
                dtype=np.int64,
            )
            result.setflags(write=False)
        self._paths[key] = result
        return result

    def has_path(self, src: str, dst: str) -> bool:
        return self.path(src, dst).size > 0 or src == dst

    def path_latency_s(self, src: str, dst: str) -> float:
        """One-way latency along :meth:`path`; ``inf`` when dst is unreachable."""
        if not self.has_path(src, dst):
            return math.inf
        return float(self.link_latency_s[self.path(src, dst)].sum())

    def rates(self, flows: Sequence[tuple[str, str]], demands: npt.ArrayLike) -> FloatArray:
        """Max-min fair rates (bytes/s) for ``(src, dst)`` flows with the given demand caps.

        An unreachable flow gets 0. A flow with ``src == dst`` crosses no link: it gets its
        demand, or 0 if that demand is unbounded (see :func:`max_min_fair`).
        """
        wanted = np.array(demands, dtype=np.float64).reshape(-1)
        if wanted.size != len(flows):
            raise ValueError(f"{len(flows)} flows but {wanted.size} demands")
        paths = [self.path(src, dst) for src, dst in flows]
        for i, ((src, dst), p) in enumerate(zip(flows, paths, strict=True)):
            if p.size == 0 and src != dst:
                wanted[i] = 0.0
        return max_min_fair(paths, wanted, self.effective_capacity_bytes_per_s)


def _check_capacity(where: str, capacity: float) -> None:
    if not (math.isfinite(capacity) and capacity > 0.0):
        raise ValueError(
            f"{where}: capacity must be a finite number of bytes/s > 0, got {capacity!r} "
            "(take a link down with set_link_state instead)"
        )


def max_min_fair(
    paths: Sequence[npt.ArrayLike],
    demands_bytes_per_s: npt.ArrayLike,
    capacities_bytes_per_s: npt.ArrayLike,
) -> FloatArray:
    """Max-min fair rates by progressive filling.

    ``paths[i]`` lists the link indices flow ``i`` crosses (a link listed twice is loaded
    twice); ``demands_bytes_per_s[i]`` caps its rate (``np.inf`` = elastic). A flow with an
    empty path is limited by no link, so it gets its demand; with an unbounded demand it
    gets 0, because such a flow has no path and cannot send. Flows crossing a link of
    capacity 0 (a link that is down) get 0.
    """
    demand = np.array(demands_bytes_per_s, dtype=np.float64).reshape(-1)
    capacity = np.array(capacities_bytes_per_s, dtype=np.float64).reshape(-1)
    n, m = len(paths), capacity.size
    if demand.size != n:
        raise ValueError(f"{n} paths but {demand.size} demands")
    if np.isnan(demand).any() or (demand < 0).any():
        raise ValueError("demands must be >= 0 (np.inf for an elastic flow)")
    if not np.isfinite(capacity).all() or (capacity < 0).any():
        raise ValueError("capacities must be finite and >= 0")
    per_flow = [np.asarray(p, dtype=np.int64).reshape(-1) for p in paths]
    lengths = np.array([p.size for p in per_flow], dtype=np.int64)
    # Incidence list in CSR order: one (flow, link) pair per link a flow crosses.
    links = np.concatenate(per_flow) if n else _EMPTY_PATH
    if links.size and (links.min() < 0 or links.max() >= m):
        raise ValueError(f"path refers to a link outside 0..{m - 1}")
    return max_min_fair_csr(links, lengths, demand, capacity)


def max_min_fair_csr(links: IndexArray, lengths: IndexArray, demand: FloatArray,
                     capacity: FloatArray) -> FloatArray:
    """max_min_fair over paths given as one array of link indices, flow after flow
    (`lengths[i]` of them for flow i): no Python object per flow, for 100,000 flows."""
    n, m = lengths.size, capacity.size
    flows = np.repeat(np.arange(n, dtype=np.int64), lengths)

    rate = np.zeros(n, dtype=np.float64)
    no_path = lengths == 0
    rate[no_path] = np.where(np.isfinite(demand[no_path]), demand[no_path], 0.0)
    frozen = no_path.copy()
    remaining = capacity.copy()
    full_below = REL_TOL * capacity
    # All unfrozen flows sit at the same water level. Each pass either caps some flows at
    # their demand or fills a link whose flows freeze on the next pass, so n + 1 passes do.
    for _ in range(n + 2):
        saturated = remaining <= full_below
        frozen[flows[saturated[links]]] = True
        keep = ~frozen[flows]
        flows, links = flows[keep], links[keep]
        if flows.size == 0:
            return rate
        count = np.bincount(links, minlength=m)
        used = count > 0
        step = float((remaining[used] / count[used]).min())
        # No link fills before the level rises by `step`, even if nobody stops early, so
        # every flow whose demand lies within `step` reaches it: stop them all in one pass.
        active = ~frozen
        raise_by = np.zeros(n, dtype=np.float64)
        raise_by[active] = np.minimum(demand[active] - rate[active], step)
        capped = active & (demand - rate <= step)
        rate += raise_by
        rate[capped] = demand[capped]
        frozen |= capped
        remaining -= np.bincount(links, weights=raise_by[flows], minlength=m)
    raise RuntimeError("max_min_fair did not converge")  # unreachable: see the loop bound
