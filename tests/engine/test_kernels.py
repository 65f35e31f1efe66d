"""The compiled walks (engine/kernels.py) give exactly what the numpy passes give: the same
batches from any start and budget, and worlds that run to the same digest either way."""

import copy
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from engine import Simulation, invariants, kernels, parallel, parse_scenario
from engine import prefetch as prefetch_module
from engine.errors import InputError
from engine.memory import fault_loop, kind_bits, ksm, ksm_front, ksm_scan
from engine.prefetch import prefetch
from engine.state import GuestKind, Loc
from tests.conftest import small_spec


def _second_first(first: Any, second: Any) -> tuple[Any, Any]:
    later = second()
    return first(), later


def _last_first(fn: Any, bounds: list[int]) -> list[tuple[int, Any]]:
    got = [(lo, fn(lo, hi)) for lo, hi in reversed(list(pairwise(bounds)))]
    return got[::-1]


@pytest.fixture(params=["one thread", "two threads", "halves in reverse"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The loops' work on one thread, or cut in halves or pieces from a few items on: on
    two threads, or one after the other in reverse order (so a part that wrote into
    another's part of an output would show, not be overwritten as it would in order)."""
    if request.param != "one thread":
        monkeypatch.setattr(kernels, "MIN_SPLIT", 4)
        monkeypatch.setenv("OVERCOMMIT_THREADS", "2")
    if request.param == "halves in reverse":
        monkeypatch.setattr(parallel, "pair", _second_first)
        monkeypatch.setattr(parallel, "spread", _last_first)
    return str(request.param)


def _ksm_world(smart: bool, resident: float = 0.8) -> Simulation:
    """Both hosts run ksmd over three VMs each: shared, unique and never touched pages."""
    data = small_spec()
    for host in data["host"]:
        host["memory"] = "40MiB"
    data["policy"]["sharing"] = {"mode": "ksm", "ksm_pages_to_scan": 150,
                                 "ksm_sleep": "100ms", "share_force_salting": 0,
                                 "ksm_smart_scan": smart}
    mix: dict[str, Any] = {"zero": 0.05, "os": 0.3, "app": 0.25, "private": 0.4,
                           "resident": resident}
    data["vm"] = [{"id": f"v{i}", "host": f"h{1 + i % 2}", "memory": f"{3 + i % 3}MiB",
                   "app": "web", "content": mix,
                   "workload": {"kind": "synthetic", "reads_per_s": 200, "writes_per_s": 2}}
                  for i in range(6)]
    return Simulation.from_spec(parse_scenario(data))


def test_kernels_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernels.KERNELS_ENV, "numpy")
    assert kernels.kernels_setting() == "numpy" and not kernels.compiled()
    monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
    assert kernels.kernels_setting() == "numba" and kernels.compiled()  # numba: test extra
    monkeypatch.delenv(kernels.KERNELS_ENV)
    assert kernels.kernels_setting() is None and kernels.compiled()
    for bad in ("fast", "NUMBA", "1"):  # refused at the CLI; a library caller gets numba
        monkeypatch.setenv(kernels.KERNELS_ENV, bad)
        with pytest.raises(InputError, match="OVERCOMMIT_KERNELS"):
            kernels.kernels_setting()
        assert kernels.compiled()
    monkeypatch.setattr(kernels, "_AVAILABLE", False)  # numba not installed: numpy passes
    monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
    assert not kernels.compiled()


def _batches_both_ways(sim: Simulation, monkeypatch: pytest.MonkeyPatch, start: Any,
                       budget: Any, smart: bool) -> list[Any]:
    """A tick's batches and their pages' first step from the same state: the numpy passes
    (ksm_scan.batches, then ksm_front.front), then the compiled walk that does both
    (ksm_front.batch_candidates). Each result with the ages, unstable flags, scan marks and
    counters it left."""
    state = sim.world.state
    sharing = state.sharing
    hosts = np.array([0, 1])
    layout = ksm._Layout(state, hosts)
    total = layout.total[hosts]
    names = ("ksm_age", "ksm_unstable", "ksm_scanned_at")

    def marks() -> dict[str, Any]:
        return {name: None if getattr(sharing, name) is None else getattr(sharing, name).copy()
                for name in names}

    before, counters = marks(), _copy(sharing.hosts)
    outs = []
    args = (state, layout, hosts, np.asarray(start, np.int64), total - start,
            np.asarray(budget, np.int64), smart)
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        if mode == "numpy":
            n, used, trailing, pages, page_host, page_vm, loc = ksm_scan.batches(*args)
            cand = ksm_front.front(state, pages, page_host, page_vm, loc)
        else:
            n, used, trailing, cand = ksm_front.batch_candidates(*args)
        outs.append(((n, used, trailing, *cand), marks(), _copy(sharing.hosts)))
        for name, saved in before.items():
            setattr(sharing, name, None if saved is None else saved.copy())
        for name, column in counters.items():
            sharing.hosts[name][:] = column
    return outs


def _copy(columns: dict[str, Any]) -> dict[str, Any]:
    return {name: column.copy() for name, column in columns.items()}


def _same(a: Any, b: Any) -> None:
    for x, y in zip(a[0], b[0], strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    for name, x in a[1].items():
        y = b[1][name]
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    for name, column in a[2].items():
        np.testing.assert_array_equal(column, b[2][name], err_msg=name)


@pytest.mark.parametrize("smart", [True, False])
def test_the_compiled_walk_gives_the_numpy_batches(monkeypatch: pytest.MonkeyPatch,
                                                   smart: bool,
                                                   threads: str) -> None:
    # Pages in every location, ages and skips of every value, pages in unstable trees; each
    # host from random starts (VM edges among them) with budgets from none to more than is
    # left, and exactly what is left (the budget-th page the last position, or not).
    sim = _ksm_world(smart)
    sim.step(2)
    state = sim.world.state
    rng = np.random.default_rng(7)
    n = len(state.pages)
    state.pages.location[:] = rng.choice(np.arange(len(Loc), dtype=np.uint8), n,
                                         p=[0.2, 0.4, 0.2, 0.05, 0.05, 0.05, 0.05])
    state.sharing.ksm_unstable[:] = rng.random(n) < 0.3
    if smart:
        ksm_scan.ages(state)[:] = rng.integers(0, 256, n, dtype=np.uint8)
    layout = ksm._Layout(state, np.array([0, 1]))
    edges = np.cumsum(np.asarray(state.vms["n_pages"], np.int64))
    cases = 0
    for trial in range(30):
        total = layout.total[:2]
        start = rng.integers(0, total) if trial % 3 else np.minimum(edges[:2], total - 1)
        budget = rng.choice([0, 1, 7, 150, 600, 5000], 2)
        outs = _batches_both_ways(sim, monkeypatch, start, budget, smart)
        _same(*outs)
        n_cov, used, trailing = outs[0][0][:3]
        whole = used < budget
        if whole.any():  # once more with the budget of exactly what was handed over
            exact = np.where(whole, used, budget)
            _same(*_batches_both_ways(sim, monkeypatch, start, exact, smart))
            _same(*_batches_both_ways(sim, monkeypatch, start, exact + whole, smart))
            cases += int(trailing.any())
    assert cases > 0  # some walks ended on positions with nothing to hand over


def _same_world_both_ways(monkeypatch: pytest.MonkeyPatch, make: Any,
                          ticks: int) -> tuple[Simulation, Simulation]:
    """The world `make` builds, run `ticks` ticks with the numpy passes and with the
    compiled loops: (numpy run, compiled run), checked to reach the same digest."""
    runs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        sim = make()
        sim.step(ticks)
        runs.append(sim)
    assert runs[1].digest() == runs[0].digest()
    return runs[0], runs[1]


@pytest.mark.parametrize("smart", [True, False])
def test_a_world_runs_to_the_same_digest_either_way(monkeypatch: pytest.MonkeyPatch,
                                                    smart: bool,
                                                    threads: str) -> None:
    _, numba_run = _same_world_both_ways(monkeypatch, lambda: _ksm_world(smart), 120)
    hosts = numba_run.world.state.sharing.hosts
    assert hosts["full_scans"].min() >= 3
    assert min(h.pages_sharing for h in numba_run.snapshot().hosts) > 100
    if smart:  # smart scan skipped pages, and the walks went past them
        assert hosts["ksm_pages_skipped"].min() > 1000
    else:
        assert numba_run.world.state.sharing.ksm_age is None


def _both_modes(monkeypatch: pytest.MonkeyPatch, lookup: Any) -> list[Any]:
    outs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        outs.append(lookup())
    return outs


def test_the_compiled_lookups_find_the_numpy_slots(monkeypatch: pytest.MonkeyPatch,
                                                   threads: str) -> None:
    # Tables with crowded runs (keys that share home slots), deleted slots inside runs, and
    # lookups of keys present, deleted and never put.
    from engine.hashtable import FrameKeys, RegionMap, U64Map, fix_key

    rng = np.random.default_rng(5)
    spread = rng.integers(0, 2**63, 3000, dtype=np.uint64)
    crowded = np.arange(1, 400, dtype=np.uint64) << np.uint64(52)  # a few homes, long runs
    keys = fix_key(np.concatenate([spread, crowded]))
    table = U64Map(64)
    table.put(keys, np.arange(keys.size, dtype=np.int64), keys)
    table.delete(keys[::3])
    probe = np.concatenate([keys, fix_key(rng.integers(0, 2**63, 2000, dtype=np.uint64)),
                            fix_key(np.arange(400, 500, dtype=np.uint64) << np.uint64(52))])
    a, b = _both_modes(monkeypatch, lambda: table.find(probe))
    np.testing.assert_array_equal(a, b)
    assert (a >= 0).sum() > 1500 and (a < 0).sum() > 2000

    frames = FrameKeys(1 << 20, 64)
    f = rng.choice(1 << 20, 5000, replace=False)
    frames.set(f, fix_key(rng.integers(0, 2**63, f.size, dtype=np.uint64)))
    frames.clear(np.sort(f[::4]))
    a, b = _both_modes(monkeypatch, lambda: frames.get(np.concatenate([f, f + 1])))
    np.testing.assert_array_equal(a, b)
    assert (a > 0).sum() > 3000

    regions = RegionMap(np.array([64, 128, 256]))
    region = rng.integers(0, 3, keys.size)
    regions.put_in(keys, np.arange(keys.size, dtype=np.int64), region)
    regions.delete_in(keys[::5], region[::5])
    look_region = rng.integers(0, 3, probe.size)
    look_region[:keys.size] = region
    a, b = _both_modes(monkeypatch, lambda: regions.locate_in(probe, look_region))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a[0] >= 0).sum() > 2000 and (a[1] >= 0).sum() > 2000
    # Regions of different sizes filled to their limit: long runs that wrap at each
    # region's own end.
    sizes = np.array([16, 64, 32, 256, 16, 128])
    full = RegionMap(sizes)
    n_in = (sizes * RegionMap.LOAD).astype(np.int64) - 1
    region = np.repeat(np.arange(sizes.size), n_in)
    keys = fix_key(rng.integers(0, 2**63, region.size, dtype=np.uint64))
    full.put_in(keys, np.arange(keys.size, dtype=np.int64), region)
    assert (full.size == sizes).all()
    look = np.concatenate([keys, fix_key(rng.integers(0, 2**63, 500, dtype=np.uint64))])
    look_region = np.concatenate([region, rng.integers(0, sizes.size, 500)])
    a, b = _both_modes(monkeypatch, lambda: full.locate_in(look, look_region))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a[0][:keys.size] >= 0).all() and (a[1][keys.size:] >= 0).all()


def test_the_compiled_hints_are_the_numpy_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    # ESX hints for slots hit several times in one batch (the last stays), pages never
    # written (tag 7) and written at ticks of every tag, over slots already taken.
    from engine.hashtable import HintTable

    rng = np.random.default_rng(12)
    slot = rng.integers(0, 300, 2000)
    pages = rng.integers(0, 1 << 28, slot.size)
    written = rng.integers(0, 50, slot.size).astype(np.int32)
    tables = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        table = HintTable(np.array([256, 64]))
        table.write(slot[:100], pages[:100] + 7, written[:100])
        table.write(slot, pages, written)
        tables.append(table.entry.copy())
    np.testing.assert_array_equal(*tables)
    last = {int(s): int(p) for s, p in zip(slot, pages, strict=True)}
    assert all(int(tables[1][s]) & ((1 << 29) - 1) == p + 1 for s, p in last.items())


def test_the_compiled_first_step_gives_the_numpy_candidates(monkeypatch: pytest.MonkeyPatch,
                                                            threads: str) -> None:
    # After some full scans (pages tracked, left in unstable trees, aged), pages moved to
    # every location and some written: some tracked pages are gone, some new, some private
    # again, some unchanged since their last scan and some not. A pass over every position
    # of both hosts, none skipped (smart scan's skips: the test above): the same
    # candidates, marks and counters either way.
    sim = _ksm_world(True)
    sim.step(40)
    state = sim.world.state
    rng = np.random.default_rng(11)
    n = len(state.pages)
    moved = rng.random(n) < 0.3
    state.pages.location[moved] = rng.choice(np.arange(len(Loc), dtype=np.uint8),
                                             int(moved.sum()))
    state.pages.written_before[rng.random(n) < 0.2] = state.tick + 1
    outs = _batches_both_ways(sim, monkeypatch, np.zeros(2, np.int64), np.full(2, 10**9), False)
    _same(*outs)
    cand = ksm_front.Candidates(*outs[0][0][3:])
    assert cand.unchanged.sum() > 100 and cand.volatile.sum() > 100 and cand.pages.size > 1000
    for name in ("ksm_scanned_at", "ksm_unstable", "ksm_age"):  # the pass changed them
        assert not np.array_equal(outs[1][1][name], getattr(state.sharing, name)), name


def test_the_compiled_picks_give_the_numpy_picks(monkeypatch: pytest.MonkeyPatch,
                                                 threads: str) -> None:
    # Page-cache reads (hits, and misses filling free, used or cached pages but never one
    # read this tick) and balloon victims (by class and recency) picked as one loop
    # (memory/pick_loop.py): the same pages, so the same world either way.
    from engine.scenario import load_scenario

    runs = {}
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        sim = Simulation.from_spec(load_scenario("scenarios/paper/esx-fig2-balloon.toml"))
        sim.step(30)
        runs[mode] = sim
    assert runs["numba"].digest() == runs["numpy"].digest()
    state = runs["numba"].world.state
    assert int(state.vms["file_misses"].sum()) > 10_000  # the caches filled and were read
    assert int((state.pages.location == Loc.BALLOONED).sum()) > 10_000


def test_the_compiled_picks_follow_class_and_recency(monkeypatch: pytest.MonkeyPatch,
                                                     threads: str) -> None:
    # Pages of every location and guest kind, touched in this period, the last one, an
    # older one or never; wants from none to more than a VM has: the same balloon victims
    # (with their classes and locations) and the same page-cache picks either way.
    from engine.memory import guest
    from engine.workloads import filecache

    sim = Simulation.from_spec(parse_scenario(small_spec()))
    sim.step(3)
    state = sim.world.state
    rng = np.random.default_rng(21)
    n = len(state.pages)
    state.pages.location[:] = rng.choice(np.arange(len(Loc), dtype=np.uint8), n)
    state.pages.guest_kind[:] = rng.choice(np.arange(len(GuestKind), dtype=np.uint8), n)
    # An untouched page is a free one (invariants.py), as the fill walks assume.
    state.pages.guest_kind[state.pages.location == Loc.UNTOUCHED] = GuestKind.FREE
    codes = np.array([0, state.touch_code, state.previous_code, 77], np.uint8)
    state.pages.touched[:] = rng.choice(codes, n)
    # The page-cache picks go by each VM's kinds and locations counted (which VMs are
    # walked, and where a walk may stop): counted anew for the pages drawn.
    vms = state.vms
    n_vms = len(vms)
    owner = vms.vm_of_pages(np.arange(n))
    vms["kind_count"][:] = np.bincount(owner * len(GuestKind) + state.pages.guest_kind,
                                       minlength=n_vms * len(GuestKind)).reshape(n_vms, -1)
    vms["loc_count"][:] = np.bincount(owner * len(Loc) + state.pages.location,
                                      minlength=n_vms * len(Loc)).reshape(n_vms, -1)
    kind_bits.refresh(state, 0, n)  # the pages free or cached, for the walks
    picked_hot = False
    for trial in range(20):
        want = rng.choice([0, 1, 5, 40, 300, 700, 1000, 1500, 5000], n_vms)
        outs = []
        for mode in ("numpy", "numba"):
            monkeypatch.setenv(kernels.KERNELS_ENV, mode)
            victims = guest.pick_balloon(state, np.random.default_rng(trial), want)
            hits = want // 2
            hit, fill = filecache.pick_reads(state, np.random.default_rng(trial), hits,
                                             want - hits)
            outs.append((*victims, hit, fill))
        for x, y in zip(*outs, strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        classes = np.bincount(outs[0][1], minlength=4)
        picked_hot |= bool(classes[guest.ANON_HOT]) and classes[guest.ANON_COLD] < classes.sum()
    assert picked_hot  # some VMs' picks reached the recent anonymous pages
    assert outs[0][0].size > 100 and outs[0][4].size > 100


def test_the_compiled_release_frees_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of KSM-merged VMs unmapped in random batches (shared frames losing one or more
    # of their pages, private ones freed, on both hosts, low and high frames, unsorted
    # with duplicates, or ascending): the same refcounts, stacks, free counts and sharing
    # tables either way.
    from engine.memory import frames as frame_alloc
    from tests.conftest import alike_ksm_sim

    # One world loaded for both: a load lays the tables out as its mode's set does.
    before = alike_ksm_sim(30, memory="7MiB").world.state  # into the low frames too
    outs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        state = copy.deepcopy(before)
        rng = np.random.default_rng(4)
        mapped = np.flatnonzero(state.pages.frame >= 0)
        for trial in range(12):
            pages = rng.choice(mapped, rng.integers(1, 300), replace=False)
            mapped = np.setdiff1d(mapped, pages)
            drop = state.pages.frame[pages].astype(np.int64)
            if trial % 3 == 0:
                drop = np.sort(drop)
            state.pages.frame[pages] = -1
            frame_alloc.release(state, drop)
        stable, keyed = state.sharing.stable, state.sharing.frame_keys
        # The tables slot for slot, deleted marks and counts too (forget_loop.py).
        outs.append((state.frames.refcount.copy(), state.frames.free_stack_delta.copy(),
                     state.hosts.free_low.copy(), state.hosts.free_count.copy(),
                     stable.keys.copy(), stable.vals.copy(), keyed.slot_frame.copy(),
                     keyed.slot_key.copy(), keyed.bits.copy(),
                     np.array([stable.live, stable.deleted, keyed.live, keyed.deleted]),
                     state.sharing.hosts["shared_frames"].copy()))
    for x, y in zip(*outs, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (outs[0][3] - before.hosts.free_count > 100).all()  # both hosts freed frames
    assert (outs[0][2] > before.hosts.free_low).all()  # low ones too
    # and shared frames lost their last page
    assert (outs[0][-1] < before.sharing.hosts["shared_frames"]).all()


def test_the_compiled_layout_gives_the_numpy_touches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Random VMs (some with nothing drawn, empty hot sets or working sets, sweeps that
    # wrap once, several times, or start past their span) and numbers right up to 1: the
    # same pages in the same order as the numpy passes.
    from engine.workloads import layout_loop, synthetic

    rng = np.random.default_rng(11)
    wrapped_twice = False
    for trial in range(40):
        n = int(rng.integers(1, 30))
        ws = rng.integers(0, 50, n) * (rng.random(n) < 0.9)
        hot = np.minimum(rng.integers(0, 20, n), ws)
        offset = np.cumsum(np.full(n, 64)) - 64 + rng.integers(0, 5, n)
        n_hot = np.where(hot > 0, rng.integers(0, 40, n), 0)
        n_ws = np.where(ws > 0, rng.integers(0, 40, n), 0)
        n_swept = rng.integers(0, 120, n) * (rng.random(n) < 0.5)
        start = rng.integers(0, 3 * np.maximum(ws, 1))
        u_hot, u_ws = rng.random(int(n_hot.sum())), rng.random(int(n_ws.sum()))
        if trial % 4 == 0 and u_hot.size:
            u_hot[-1] = np.nextafter(1.0, 0.0)  # the largest number random() gives
        want = np.concatenate([synthetic._uniform(u_hot, n_hot, offset, hot),
                               synthetic._uniform(u_ws, n_ws, offset, ws),
                               synthetic._sweep(n_swept, offset, start, ws)])
        got = layout_loop.lay_out(n_hot, u_hot, n_ws, u_ws, n_swept, offset, hot, ws, start)
        np.testing.assert_array_equal(got, want)
        wrapped_twice |= bool((n_swept > 2 * np.maximum(ws, 1)).any())
    assert wrapped_twice


@pytest.mark.parametrize("bits", [np.random.PCG64, np.random.MT19937])
def test_the_generator_draws_the_same_touches_on_two_threads(monkeypatch: pytest.MonkeyPatch,
                                                              threads: str, bits: Any) -> None:
    # The reads' hot numbers drawn ahead (on the helper, from a copy of the stream's state)
    # and the rest in order here: the same touches as the numpy passes, which draw every
    # number in order on one thread, and the stream left at the same state. (A generator
    # that cannot be moved ahead has them drawn here first.)
    from engine.workloads import synthetic
    from engine.workloads.phase import active_vms

    data = small_spec()
    data["vm"] = [{"id": f"v{i}", "host": f"h{1 + i % 2}", "memory": "2MiB",
                   "workload": {"reads_per_s": 400 + 50 * i, "writes_per_s": 80,
                                "hot_access": 0.1 * (i % 10),
                                "order": "sequential" if i % 3 == 0 else "uniform"}}
                  for i in range(12)]
    state = Simulation.from_spec(parse_scenario(data)).world.state
    active = active_vms(state)
    cursor = state.vms["seq_cursor"].copy()
    outs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        rng = np.random.Generator(bits(8))
        rng.random(3)
        touches = synthetic.generate(state, rng, active)
        outs.append((touches.read_pages, touches.write_pages, state.vms["seq_cursor"].copy(),
                     rng.random(5)))
        state.vms["seq_cursor"] = cursor
    for want, got in zip(*outs, strict=True):
        np.testing.assert_array_equal(got, want)
    reads = outs[0][0]
    assert reads.size > 3000 and np.unique(reads).size > 1000  # hot, uniform and swept


def test_numbers_drawn_ahead_are_the_numbers_drawn_in_order() -> None:
    from engine.rng import uniform_ahead

    in_order = np.random.default_rng(4)
    first, rest = in_order.random(700), in_order.random(9)
    rng = np.random.default_rng(4)
    ahead = uniform_ahead(rng, 700)
    assert ahead is not None
    rest_first = rng.random(9)  # the stream went on past the 700 before they were drawn
    np.testing.assert_array_equal(ahead.random(700), first)
    np.testing.assert_array_equal(rest_first, rest)
    # Half of a 64-bit output held for a 32-bit draw, which advance() would drop: no.
    rng.integers(0, 10, dtype=np.int32)
    state = rng.bit_generator.state
    assert state["has_uint32"] and uniform_ahead(rng, 5) is None
    assert rng.bit_generator.state == state
    assert uniform_ahead(np.random.Generator(np.random.MT19937(1)), 5) is None


@pytest.mark.parametrize("writes", [False, True])
def test_the_compiled_touch_front_gives_the_numpy_answers(monkeypatch: pytest.MonkeyPatch,
                                                          threads: str, writes: bool) -> None:
    # Pages of every location and guest kind, touched with duplicates: the same words,
    # faulting positions and pages of another kind as the numpy passes, and only the
    # touches that do not fault marked (and, writes, stamped).
    from engine.memory import touch_loop
    from engine.state import N_KIND, N_LOC, WORD_SHIFT

    monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
    rng = np.random.default_rng(5)
    n_pages = 3000
    loc = rng.integers(0, N_LOC, n_pages)
    guest = rng.integers(0, N_KIND, n_pages)
    word = ((loc << WORD_SHIFT["location"]) | (guest << WORD_SHIFT["guest_kind"])).astype(
        np.uint16)
    for trial in range(6):
        touched = rng.integers(0, 5, n_pages).astype(np.uint8)
        written_before = rng.integers(0, 50, n_pages).astype(np.int32)
        pages = rng.integers(0, n_pages, int(rng.integers(0, 9000)))
        kind, code, stamp = int(rng.integers(0, N_KIND)), 7 + trial, 60 + trial
        w = word[pages]
        at = (w >> WORD_SHIFT["location"]) & 0xFF
        faults = (at != Loc.PRIVATE) & (writes | (at != Loc.SHARED))
        want_touched, want_written = touched.copy(), written_before.copy()
        want_touched[pages[~faults]] = code
        if writes:
            want_written[pages[~faults]] = stamp
        want_changed = pages[~faults & (((w >> WORD_SHIFT["guest_kind"]) & 0xFF) != kind)]
        got = touch_loop.front(pages, word, touched, code, kind,
                               written_before if writes else None, stamp)
        np.testing.assert_array_equal(got[0], w)
        np.testing.assert_array_equal(got[1], np.flatnonzero(faults))
        np.testing.assert_array_equal(got[2], want_changed)
        np.testing.assert_array_equal(touched, want_touched)
        np.testing.assert_array_equal(written_before, want_written)
        assert faults.any() and (~faults).any() and want_changed.size


@pytest.mark.parametrize("low_only", [False, True])
def test_the_compiled_allocation_gives_the_numpy_frames(monkeypatch: pytest.MonkeyPatch,
                                                        low_only: bool) -> None:
    # Requests in runs of one host and scattered, more than a host has free (its high
    # stack, then its low one, then none): the same frames, refcounts and free counts.
    from engine.memory import frames as frame_alloc
    from tests.conftest import alike_ksm_sim

    saved = alike_ksm_sim(30, memory="7MiB").save_state()
    outs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        state = Simulation.from_state(copy.deepcopy(saved)).world.state
        rng = np.random.default_rng(8)
        n_hosts = len(state.hosts)
        got = []
        for trial in range(10):
            free = int(state.hosts.free_count.max())
            if trial % 2:
                host = np.repeat(rng.integers(0, n_hosts, 6), rng.integers(0, free // 3, 6))
            else:
                host = rng.integers(0, n_hosts, int(rng.integers(0, free // 2)))
            got.append(frame_alloc.allocate(state, host, low_only=low_only))
        outs.append((*got, state.hosts.free_count.copy(), state.hosts.free_low.copy(),
                     state.frames.refcount.copy()))
    for x, y in zip(*outs, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (np.concatenate(outs[0][:-3]) < 0).any()  # hosts ran out
    assert (outs[0][-2] < Simulation.from_state(copy.deepcopy(saved)).world.state.hosts
            .free_low).any()  # low frames were taken


def test_warm_up_compiles_what_the_ticks_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # After warm_up, ticks of worlds with KSM and with ESX sharing compile nothing more:
    # the samples have the types the engine calls each loop with.
    monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
    kernels.warm_up()
    compiled = {id(k): len(k._compiled.signatures) for k in kernels._KERNELS}
    assert sum(compiled.values()) >= 4
    _ksm_world(True).step(30)
    esx = small_spec()
    esx["vm"] = [{"id": f"v{i}", "host": "h1", "memory": "4MiB", "app": "web",
                  "workload": {"kind": "synthetic", "reads_per_s": 200, "writes_per_s": 20}}
                 for i in range(3)]
    Simulation.from_spec(parse_scenario(esx)).step(30)
    assert {id(k): len(k._compiled.signatures) for k in kernels._KERNELS} == compiled


def _faulting_world(sim: Simulation, rng: np.random.Generator) -> tuple[Any, Any]:
    """`sim`'s pages put in every place a touch faults from: mapped pages swapped,
    ballooned, compressed (keeping their frame as the cache's) or paged out by the guest,
    next to untouched and shared ones; a VM 2 pages short of its max; a host nearly out
    of frames.
    Returns (pages to fault in, shared pages to copy), each with duplicates."""
    from engine.memory import frames as frame_alloc

    state = sim.world.state
    p, vms, hosts = state.pages, state.vms, state.hosts
    loc = p.location.copy()
    mapped = np.flatnonzero(loc == Loc.PRIVATE)
    moved = rng.choice(mapped, mapped.size // 2, replace=False)
    where = rng.integers(0, 4, moved.size)
    to_disk = moved[where != 2]  # swapped, ballooned or paged out: the frame goes back
    frame_alloc.release(state, p.frame[to_disk].astype(np.int64))
    p.frame[to_disk] = -1
    p.location[moved] = np.array([Loc.SWAPPED, Loc.BALLOONED, Loc.COMPRESSED,
                                  Loc.UNTOUCHED])[where]
    p.guest_swapped[moved[where == 3]] = True
    p.guest_kind[moved[where == 1]] = 3  # the balloon driver's
    vms["max_pages"][1] = vms["loc_count"][1, Loc.PRIVATE] + vms["loc_count"][1, Loc.SHARED] + 2
    hosts.free_low[1] = min(int(hosts.free_low[1]), 2)
    hosts.free_count[1] = hosts.free_low[1] + 40
    untouched = np.flatnonzero(p.location == Loc.UNTOUCHED)
    faulting = np.concatenate([moved, rng.choice(untouched, 1000)])
    shared = np.flatnonzero(p.location == Loc.SHARED)
    return (rng.choice(faulting, faulting.size + 200),
            rng.choice(shared, shared.size // 2 + 100))


def test_the_compiled_faults_serve_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faults of every kind (first touches, swap-ins, pops, unzips, guest page-ins) and
    # copies of shared pages, with a VM at its max and a host running out of frames:
    # the same frames, fields, stacks and counters either way.
    from engine.memory import touch
    from tests.conftest import alike_ksm_sim

    saved = alike_ksm_sim(30, memory="7MiB", content={
        "zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 0.6}).save_state()
    outs = []
    # The compiled faults on one thread, and on two (hosts by parity, fault_loop.fault_in
    # and cow_break), the copies too few to be cut unless told they cost more.
    for mode, threads, cost in (("numpy", "1", None), ("numba", "1", None), ("numba", "2", None),
                                ("numba", "2", kernels.MIN_SPLIT)):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        monkeypatch.setenv(parallel.THREADS_ENV, threads)
        if cost is not None:
            monkeypatch.setattr(fault_loop, "_COST_OF_A_FAULT", cost)
        sim = Simulation.from_state(copy.deepcopy(saved))
        state = sim.world.state
        faulting, shared = _faulting_world(sim, np.random.default_rng(6))
        assert np.unique(faulting).size >= kernels.MIN_SPLIT // fault_loop._COST_OF_A_FAULT
        before, firsts = state.vms["loc_count"].copy(), state.vms["first_touches"].copy()
        served = touch._fault_in(state, faulting, 2), touch._cow_break(state, shared)
        outs.append((served, sim.digest()))
        moved = state.vms["loc_count"] - before
        assert served == (False, False)  # refused: past the VM's max, and no frames
        # VM 1 had room for 2 first touches (its data came back regardless); host h2 ran
        # out while serving VM 2, before VM 3's pages (in page order) came up.
        assert (moved[:3, Loc.PRIVATE] > 0).all() and moved[3, Loc.PRIVATE] == 0
        first = state.vms["first_touches"] - firsts
        assert first[1] == 2 and first[0] > 2
        for where in (Loc.SWAPPED, Loc.BALLOONED, Loc.COMPRESSED, Loc.SHARED):
            assert moved[:, where].sum() < 0  # pages of each place were served
        assert (state.vms["pops"] > 0).any() and (state.vms["cow_breaks"] > 0).any()
    assert outs[0] == outs[1] == outs[2] == outs[3]


def _sum_with_hints(values: Any, order: Any) -> int:
    total = 0
    for i in range(order.size):
        if i + 2 < order.size:
            prefetch(values, order[i + 2])
        total += values[order[i]]
    return total


def test_a_loop_that_prefetches_compiles_with_the_hint_and_sums_as_python() -> None:
    """A Kernel whose loop names engine.prefetch.prefetch is compiled with the intrinsic in
    its place (the plain function cannot be called from a compiled loop), and the hint
    changes no result."""
    if not kernels.compiled():
        pytest.skip("numba is not installed")
    values = np.arange(1000, dtype=np.int64) * 3
    order = np.random.default_rng(5).integers(0, 1000, 500)
    as_python = _sum_with_hints(values, order)  # the plain prefetch: does nothing
    loop = kernels.Kernel(_sum_with_hints, lambda: [])
    try:
        assert loop(values, order) == as_python == int(values[order].sum())
        assert globals()["prefetch"] is prefetch_module.compiled()
    finally:
        globals()["prefetch"] = prefetch_module.prefetch
        kernels._KERNELS.remove(loop)


def _entries(table: Any) -> list[tuple[int, int, int]]:
    """A U64Map's (key, value, aux) entries, sorted: what it holds, whatever the slots."""
    keys, vals, aux = table.items()
    return sorted(zip(keys.tolist(), vals.tolist(), aux.tolist(), strict=True))


def _esx_spec(hint_table: float) -> dict[str, Any]:
    """ESX scanning fast on both hosts over alike VMs that write: shared frames found by
    hints and by the stable table, hints gone stale, and (a tiny table) overwritten."""
    data = small_spec()
    for host in data["host"]:
        host["memory"] = "40MiB"
    data["policy"]["sharing"] = {"mode": "esx", "scan": "rate", "pages_per_s_per_vm": 400,
                                 "pages_per_s_per_host": 1200, "share_force_salting": 0,
                                 "hint_table": hint_table, "ksm_pages_to_scan": 150,
                                 "ksm_sleep": "100ms"}
    mix: dict[str, Any] = {"zero": 0.05, "os": 0.3, "app": 0.25, "private": 0.4,
                           "resident": 0.8}
    data["vm"] = [{"id": f"v{i}", "host": f"h{1 + i % 2}", "memory": f"{3 + i % 3}MiB",
                   "app": "web", "content": mix,
                   "workload": {"kind": "synthetic", "reads_per_s": 200, "writes_per_s": 40}}
                  for i in range(6)]
    return data


def _esx_world(hint_table: float) -> Simulation:
    return Simulation.from_spec(parse_scenario(_esx_spec(hint_table)))


@pytest.mark.parametrize("hint_table", [1.0, 0.002])
def test_the_compiled_esx_scan_shares_as_numpy(monkeypatch: pytest.MonkeyPatch,
                                               hint_table: float, threads: str) -> None:
    """The two ESX loops (memory/esx_pass.py) leave the world the array passes leave: the
    same digest (pages, frames, stacks, hint table, counters, the stable table's entries;
    a compiled rebuild of that table may put them in other slots)."""
    numpy_run, numba_run = _same_world_both_ways(monkeypatch, lambda: _esx_world(hint_table),
                                                 90)
    a, b = numpy_run.world.state.sharing.stable, numba_run.world.state.sharing.stable
    assert _entries(a) == _entries(b)
    hosts = numba_run.world.state.sharing.hosts
    for counter in ("hint_hits", "hint_stale", "hint_misses", "compares"):
        assert hosts[counter].min() > 0, counter
    assert hosts["shared_frames"].min() > 20
    if hint_table < 0.01:  # a tiny table: new hints go over other keys' live ones
        assert hosts["hint_overwrites"].min() > 0


@pytest.mark.parametrize("when", ["as the helper takes it", "at the last moment"])
def test_esx_decides_beside_ksm_and_lands_before_ksm_writes(monkeypatch: pytest.MonkeyPatch,
                                                            when: str, threads: str) -> None:
    """ESX's decisions may be made any time from the start of the sharing phase until
    KSM's first write (memory/sharing.py start_esx): on the helper thread beside KSM's
    pass, or as late as that write. Made that late, with each of KSM's writes to the
    stable table and the frames checking that none is pending, the world is the one the
    numpy passes make one scan after the other, and both hosts' scans shared pages."""
    from types import SimpleNamespace

    from engine.hashtable import U64Map
    from engine.memory import share_ops, sharing

    pending: list[str] = []
    if when == "at the last moment":
        def beside(fn: Any, *args: Any) -> Any:
            pending.append(fn.__qualname__)

            def wait() -> None:
                if pending:
                    pending.clear()
                    fn(*args)
            return wait

        monkeypatch.setattr(sharing, "parallel", SimpleNamespace(beside=beside))
    made: list[str] = []

    def guarded(name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            assert not pending, f"{name} with ESX's decisions pending"
            made.append(name)
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(share_ops, "merge", guarded("merge", share_ops.merge))
    monkeypatch.setattr(share_ops, "promote", guarded("promote", share_ops.promote))
    monkeypatch.setattr(U64Map, "put", guarded("put", U64Map.put))
    spec = _esx_spec(1.0)
    spec["host"][1]["sharing"] = "ksm"
    _, numba_run = _same_world_both_ways(
        monkeypatch, lambda: Simulation.from_spec(parse_scenario(spec)), 90)
    assert {"merge", "promote", "put"} <= set(made)
    snap = numba_run.snapshot()
    by_id = {h.id: h for h in snap.hosts}
    assert by_id["h2"].pages_sharing > 10  # KSM's merges
    hosts = numba_run.world.state.sharing.hosts
    assert hosts["hint_hits"][0] > 0 and hosts["hint_hits"][1] == 0  # ESX's, on h1 only
    assert hosts["shared_frames"].min() > 10


def test_a_compiled_rebuild_keeps_every_entry_findable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A U64Map grown and rebuilt (deleted slots dropped) by the compiled insertion
    (hash_probes.insert_fresh) holds the entries the numpy rounds hold, each found through
    its filter bit; keys deleted stay absent."""
    from engine.hashtable import U64Map, fix_key

    keys = fix_key(np.random.default_rng(11).integers(0, 2**63, 30_000).astype(np.uint64))
    keys = np.unique(keys)
    tables = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        table = U64Map(16)
        for part in np.array_split(np.arange(keys.size), 7):  # grows, rebuilding
            table.put(keys[part], part.astype(np.int64), keys[part] ^ np.uint64(5))
        table.delete(keys[::3])
        table.keep_only(np.ones(len(table), np.bool_))  # rebuilt in place
        tables.append(table)
    for table in tables:
        assert table.deleted == 0 and len(table) == keys.size - keys[::3].size
        found, vals, aux = table.get(keys)
        kept = np.ones(keys.size, np.bool_)
        kept[::3] = False
        assert np.array_equal(found, kept)
        assert np.array_equal(vals[kept], np.flatnonzero(kept))
        assert np.array_equal(aux[kept], keys[kept] ^ np.uint64(5))
    assert _entries(tables[0]) == _entries(tables[1])


def _io_world(remap: bool) -> Simulation:
    """One 32-bit DMA VM doing 2,000 I/Os a second over 1 MiB (256 pages, so each page's
    count passes 255 in a few dozen ticks where nothing remaps) on a host whose high
    memory fills first, beside a VM that fills the low memory."""
    data = small_spec()
    data["policy"]["sharing"] = {"mode": "off"}
    data["policy"]["memory"]["io_remap"] = remap
    data["host"][0].update(memory="64MiB", low_memory="16MiB")
    data["vm"][0].update(dma32=True, content={"resident": 0.9},
                         workload={"reads_per_s": 100, "writes_per_s": 10,
                                   "io_pages_per_s": 2000, "io_set": "1MiB"})
    data["vm"][1].update(content={"resident": 1.0})
    return Simulation.from_spec(parse_scenario(data), check=True)


@pytest.mark.parametrize("remap", [True, False])
def test_the_compiled_io_loop_bounces_and_remaps_as_numpy(monkeypatch: pytest.MonkeyPatch,
                                                          remap: bool) -> None:
    """Bounces, I/O counts (to their ceiling of 255 where nothing remaps), touch marks
    and remaps: the same digest either way."""
    numpy_run, numba_run = _same_world_both_ways(monkeypatch, lambda: _io_world(remap), 60)
    state = numba_run.world.state
    assert state.vms["bounces"][0] > (1000 if remap else 10_000)
    if remap:
        assert state.vms["remaps"][0] > 0
    else:
        assert state.pages.io_count.max() == 255


@pytest.mark.parametrize("per_vm", [1, 20, 100])
def test_the_compiled_sample_count_counts_as_numpy(threads: str, per_vm: int) -> None:
    """Each VM's sampled pages holding the current code, counted by memory/sample_loop.py
    (VMs in pieces, the marks of pages ahead asked for across VMs): numpy's count."""
    from engine.memory.sample_loop import count_touched

    rng = np.random.default_rng(per_vm)
    touched = rng.integers(0, 4, 5000).astype(np.uint8)
    sample = rng.integers(0, touched.size, (37, per_vm))
    got = count_touched(sample, touched, 2)
    np.testing.assert_array_equal(got, np.count_nonzero(touched[sample] == 2, axis=1))
    assert 0 < got.sum() < sample.size


def test_the_compiled_remap_merges_and_promotes_as_numpy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """share_ops.promote and merge (memory/share_loop.py, or numpy passes): private pages,
    some of them zero pages, made shared frames; others joining those frames with their
    references counted here, or counted already (as the KSM pass does); the same world
    either way, frames freed onto the same stacks."""
    from engine.memory import share_ops
    from tests.conftest import alike_ksm_sim

    base = alike_ksm_sim(4)
    state = base.world.state
    p = state.pages
    vm = np.flatnonzero(state.vms["host"] == 0)
    private = np.concatenate([
        np.flatnonzero(p.location[int(o):int(o + n)] == Loc.PRIVATE) + int(o)
        for o, n in zip(state.vms["page_offset"][vm], state.vms["n_pages"][vm], strict=True)])
    pages = np.random.default_rng(6).permutation(private)[:600]
    p.content[pages[:60]] = 0  # zero pages among those made shared, and so joining
    made, joining, counted = pages[:200], pages[200:450], pages[450:]
    # Each joining page has the content of the made page whose frame it joins.
    join_to = np.random.default_rng(7).integers(0, made.size, joining.size)
    count_to = np.random.default_rng(8).integers(0, made.size, counted.size)
    p.content[joining] = p.content[made[join_to]]
    p.content[counted] = p.content[made[count_to]]
    keys = np.arange(1, made.size + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) | 2
    digests = {}
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        sim = copy.deepcopy(base)
        s = sim.world.state
        share_ops.promote(s, made, keys)
        targets = s.pages.frame[made].astype(np.int64)
        onto = targets[join_to]
        share_ops.merge(s, joining, onto)
        onto_counted = targets[count_to]
        np.add.at(s.frames.refcount, onto_counted, 1)  # counted before, as the KSM pass does
        share_ops.merge(s, counted, onto_counted, counted=True)
        assert (s.pages.location[pages] == Loc.SHARED).all()
        assert invariants.check(s) == []
        digests[mode] = sim.digest()
    assert digests["numba"] == digests["numpy"]


def test_settled_answers_compiled_once_on_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within kernels.settled() (a tick) compiled() keeps the answer found when the block
    began; another thread, and the caller after the block, read the environment."""
    import threading

    monkeypatch.setenv(kernels.KERNELS_ENV, "numpy")
    with kernels.settled():
        assert not kernels.compiled()
        monkeypatch.setenv(kernels.KERNELS_ENV, "numba")
        assert not kernels.compiled()
        other: list[bool] = []
        thread = threading.Thread(target=lambda: other.append(kernels.compiled()))
        thread.start()
        thread.join()
        assert other == [kernels.available()]
        with kernels.settled():  # nested: its own answer, then the outer one again
            assert kernels.compiled() == kernels.available()
        assert not kernels.compiled()
    assert kernels.compiled() == kernels.available()


def _migrating_world(options: list[dict[str, Any]] | None = None) -> Simulation:
    """Six VMs leaving an overcommitted host over a slow link: Xen pre-copies (one with
    free-page hints, one with PML, a hybrid one) beside a QEMU one with XBZRLE, from a
    host that balloons and swaps, so the batches meet skipped, ballooned, swapped and
    free pages.
    Other `options` for the six: the QEMU ones start a few ticks after the others."""
    data = small_spec()
    data["host"][0].update(memory="40MiB")
    data["host"][1].update(memory="96MiB")
    for host in data["host"]:
        host["nic"] = "50Mbit/s"
    data["vm"] = [{"id": f"v{i}", "host": "h1", "memory": "8MiB", "app": "web",
                   "content": {"zero": 0.1, "os": 0.2, "private": 0.6, "app": 0.1,
                               "resident": 1.0},
                   "workload": {"reads_per_s": 800, "writes_per_s": 300 + 100 * i}}
                  for i in range(6)]
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    sim.step(20)
    out = sim.world.state.vms["loc_count"]
    assert out[:, Loc.SWAPPED].min() > 0 and out[:, Loc.BALLOONED].min() > 0
    options = options or [
        {"algorithm": "xen"}, {"algorithm": "xen", "free_page_hints": True},
        {"algorithm": "xen", "pml": True}, {"algorithm": "qemu", "xbzrle": True},
        {"algorithm": "xen", "mode": "hybrid", "postcopy_after": "4s"},
        {"algorithm": "xen", "max_rate": "20Mbit/s"}]
    for i, opts in enumerate(options):  # the QEMU ones a few ticks after the Xen ones
        if opts["algorithm"] == "xen":
            assert sim.submit({"kind": "migrate", "vm": f"v{i}", "to": "h2", **opts}).ok
    sim.step(8)
    for i, opts in enumerate(options):
        if opts["algorithm"] == "qemu":
            assert sim.submit({"kind": "migrate", "vm": f"v{i}", "to": "h2", **opts}).ok
    return sim


def _counted_loops(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The rows each call of precopy_loop's step and steps was given, by name."""
    from engine.migration import precopy_loop

    calls: dict[str, list[int]] = {"step": [], "steps": []}

    def counted(name: str) -> Any:
        real = getattr(precopy_loop, name)

        def counting(*args: Any) -> Any:
            calls[name].append(int(args[3].size))
            return real(*args)

        return counting

    for name in calls:
        monkeypatch.setattr(precopy_loop, name, counted(name))
    return calls


def test_the_compiled_xen_step_sends_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Xen's peeks and sends made in one loop (migration/precopy_loop.py), and the steps up
    # to an event: the same world as xen.peek, send.send and precopy_tick's steps make,
    # every migration done, and the loops did the steps.
    calls = _counted_loops(monkeypatch)
    numpy_run, numba_run = _same_world_both_ways(monkeypatch, _migrating_world, 60)
    # Xen rows stepped together: beside the QEMU row with XBZRLE (numpy's) one step at
    # a time, then up to each step with an event.
    assert max(calls["step"]) >= 3 and max(calls["steps"]) >= 3
    report = numba_run.report()
    assert report == numpy_run.report()  # the service (swap reads keep disks busy) too
    assert [m["status"] for m in report["migrations"]] == ["done"] * 6
    xen_reads = [m["swap_read_s"] for m in report["migrations"] if m["algorithm"] == "xen"]
    assert min(xen_reads) > 0  # swapped pages read back, the same seconds either way
    assert report["migrations"][-1]["xbzrle"]["cache_hits"] > 0
    rounds = [r for m in numba_run.world.state.migrations for r in m.rounds]
    assert sum(r.pages_skipped for r in rounds) > 0  # pages dirtied again were skipped


def test_the_compiled_qemu_steps_send_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # QEMU's sends and bandwidth windows in the loops (a full first pass in address order,
    # zero pages as headers, free-page hints, auto-converge's syncs, a switch to
    # post-copy), beside a Xen row: the same world either way.
    options = [{"algorithm": "qemu"}, {"algorithm": "qemu", "free_page_hints": True},
               {"algorithm": "qemu", "auto_converge": True},
               {"algorithm": "qemu", "mode": "hybrid", "postcopy_after": "3s"},
               {"algorithm": "qemu"}, {"algorithm": "xen"}]
    calls = _counted_loops(monkeypatch)
    numpy_run, numba_run = _same_world_both_ways(
        monkeypatch, lambda: _migrating_world(options), 60)
    assert max(calls["steps"]) >= 6 and not calls["step"]
    report = numba_run.report()
    assert report == numpy_run.report()
    by_vm = {m["vm"]: m for m in report["migrations"]}
    assert [by_vm[f"v{i}"]["status"] for i in range(6)] == ["done"] * 6
    assert min(by_vm[f"v{i}"]["swap_read_s"] for i in range(5)) > 0
    assert min(by_vm[f"v{i}"]["duplicate_pages"] for i in range(3)) > 0  # zero pages
    assert by_vm["v2"]["cpu_throttle_percentage"] > 0  # auto-converge's syncs
    assert by_vm["v3"]["passes"] == 0 and by_vm["v3"]["network_faults"] > 0


def test_the_compiled_inflation_balloons_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Balloons taking pages of every place (private, shared and the zero page among them,
    # swapped, compressed, never touched) and every class (free, cache, cold and hot
    # anonymous memory): the same frames, fields, stacks and counters either way
    # (balloon.inflate: memory/inflate_loop.py or guest.unmap and set_kind).
    from engine.memory import balloon
    from engine.memory.guest import balloon_class_loc
    from tests.conftest import alike_ksm_sim

    saved = alike_ksm_sim(30, memory="7MiB", content={
        "zero": 0.2, "os": 0.4, "app": 0.2, "private": 0.2, "resident": 0.6}).save_state()
    outs = []
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        sim = Simulation.from_state(copy.deepcopy(saved))
        state = sim.world.state
        _faulting_world(sim, np.random.default_rng(6))
        p = state.pages
        p.guest_kind[np.flatnonzero(p.location == Loc.PRIVATE)[::7]] = GuestKind.CACHE
        before = state.vms["loc_count"].copy()
        classes = balloon_class_loc(state, np.arange(len(p)))[0]
        got = balloon.inflate(state, np.random.default_rng(2), state.vms["n_pages"] // 2)
        moved = state.vms["loc_count"] - before
        for where in (Loc.PRIVATE, Loc.SHARED, Loc.SWAPPED, Loc.COMPRESSED, Loc.UNTOUCHED):
            assert moved[:, where].sum() < 0  # pages of each place were ballooned
        assert np.unique(classes[p.location == Loc.BALLOONED]).size >= 4
        outs.append((got.tolist(), sim.digest()))
    assert outs[0] == outs[1]


def test_the_xen_loop_sorts_a_peek_pages_by_their_bytes() -> None:
    # The newly dirtied pages a peek logs, sorted by a byte at a time above the VM's first
    # page (precopy_loop._sorted_from): np.sort's order for spans of one, two and three bytes.
    from engine.migration.precopy_loop import _sorted_from

    rng = np.random.default_rng(4)
    for span in (1, 200, 60_000, 5_000_000):
        for n in (1, 2, 37, 3000):
            lo = int(rng.integers(0, 1 << 40))
            values = lo + rng.integers(0, span, n)
            scratch = np.zeros(2 * n + 256, np.int64)
            scratch[:n] = values
            np.testing.assert_array_equal(_sorted_from(scratch, n, lo), np.sort(values))


def test_the_xen_loop_scratch_is_each_threads_own() -> None:
    # The console steps worlds on several threads at once: the room the Xen loop sorts a
    # peek's newly dirtied pages in is each thread's own (a shared one would mix two
    # worlds' dirty logs; a race too rare for two stepped worlds to show it reliably).
    import threading
    from types import SimpleNamespace

    from engine.migration import precopy_loop

    sim = _migrating_world()
    table = sim.world.state.migrations
    writes = SimpleNamespace(pages=np.zeros(5000, np.int64), key=np.zeros(5000),
                             next=np.zeros(table.n, np.int64))

    def scratch() -> Any:
        precopy_loop._table_args(sim.world, table, writes)
        return precopy_loop._SCRATCH.pages

    mine = scratch()
    theirs: list[Any] = []
    other = threading.Thread(target=lambda: theirs.append(scratch()))
    other.start()
    other.join()
    assert mine.size >= 2 * 5000 + 256 and theirs[0].size >= 2 * 5000 + 256
    assert not np.shares_memory(mine, theirs[0])
    assert scratch() is mine  # kept from call to call on a thread


def test_the_compiled_read_blocks_give_numpys_content(monkeypatch: pytest.MonkeyPatch) -> None:
    # The blocks a tick's page-cache misses read, from their uniform numbers, hashed into
    # content ids: the same ids either way, over datasets from one block to 2^40.
    from engine.memory.content import read_blocks_content

    if not kernels.available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(4)
    pages = np.array([1, 7, 4096, 1 << 40], np.int64)
    keys = rng.integers(0, 1 << 63, pages.size, dtype=np.uint64)
    u = np.concatenate([rng.random(5000), [0.0, np.nextafter(1.0, 0.0)]])
    vm = rng.integers(0, pages.size, u.size)
    got = {}
    for mode in ("numpy", "numba"):
        monkeypatch.setenv(kernels.KERNELS_ENV, mode)
        got[mode] = read_blocks_content(u, vm, pages, keys)
    np.testing.assert_array_equal(got["numba"], got["numpy"])
    assert np.unique(got["numpy"]).size > 2000 and (got["numpy"] > 0).all()
