import hashlib
import subprocess
import sys

import numpy as np

from engine import Simulation, parse_scenario
from engine.simulation import _raw_bytes
from tests.conftest import ROOT, TUTORIAL, small_spec


def test_same_seed_same_digest_different_seed_differs() -> None:
    a = Simulation.from_file(TUTORIAL, seed=11)
    b = Simulation.from_file(TUTORIAL, seed=11)
    c = Simulation.from_file(TUTORIAL, seed=12)
    for sim in (a, b, c):
        sim.step(30)
    assert a.digest() == b.digest()
    assert a.digest() != c.digest()


def test_the_digest_hashes_the_bytes_tobytes_would_give_without_copying() -> None:
    """Digests hash each array's memory in place (engine/simulation.py _raw_bytes): the
    same bytes as tobytes() for any dtype, shape and layout, a view when contiguous."""
    rec = np.dtype([("location", np.uint8), ("guest_kind", np.uint8)])
    arrays = [np.arange(12, dtype=np.int64), np.array(7, np.int32), np.array(True),
              np.array([True, False, True]), np.zeros(0, np.uint64), np.zeros((0, 3), np.int8),
              np.arange(12.0).reshape(3, 4).T, np.arange(20, dtype=np.int16)[::3],
              np.ones(5, rec), np.ones(5, rec)["guest_kind"], np.arange(4, dtype=">u8")]
    for a in arrays:
        raw = _raw_bytes(a)
        assert bytes(raw) == a.tobytes(), a
        assert hashlib.sha256(raw).digest() == hashlib.sha256(a.tobytes()).digest()
    big = np.arange(1000, dtype=np.int64)
    assert np.shares_memory(np.frombuffer(_raw_bytes(big), np.uint8), big)


def test_save_load_continues_bit_identically() -> None:
    straight = Simulation.from_file(TUTORIAL)
    straight.step(100)
    first = Simulation.from_file(TUTORIAL)
    first.step(40)
    resumed = Simulation.from_state(first.save_state())
    resumed.step(60)
    assert resumed.tick == 100
    assert resumed.digest() == straight.digest()
    assert resumed.report() == straight.report()


def test_pending_commands_survive_a_save() -> None:
    spec = parse_scenario(small_spec())
    a = Simulation.from_spec(spec)
    b = Simulation.from_spec(spec)
    for sim in (a, b):
        assert sim.submit({"kind": "start_vm", "vm": "q", "host": "h2"}).ok
    b = Simulation.from_state(b.save_state())
    a.step(5)
    b.step(5)
    assert a.snapshot().vm("q").running and b.snapshot().vm("q").running
    assert a.digest() == b.digest()


def test_engine_import_leaves_ui_unimported() -> None:
    code = ("import sys, engine, engine.simulation; "
            "bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_phase_runs_once_a_tick() -> None:
    """The pipeline lists every phase once: a phase listed twice runs twice a tick (its
    events and its cost doubled) and the per-phase benchmark adds the two together."""
    from engine.pipeline import TICK_PHASES
    names = [name for name, _ in TICK_PHASES]
    phases = [phase for _, phase in TICK_PHASES]
    assert len(set(names)) == len(names)
    assert len(set(phases)) == len(phases)
