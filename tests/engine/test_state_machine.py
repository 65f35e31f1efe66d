"""Random valid (and invalid) command sequences never break an invariant."""

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine import Simulation, invariants, parse_scenario
from tests.conftest import small_spec

VM_IDS = ["a", "b", "c", "q"]
HOSTS = ["h1", "h2"]
MiB = 1024**2


class EngineMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16), compression=st.booleans(),
                sharing=st.sampled_from(["esx", "ksm", "off"]))
    def build(self, seed: int, compression: bool, sharing: str) -> None:
        data = small_spec()
        data["policy"]["memory"]["compression"] = compression
        data["policy"]["sharing"] = {"mode": sharing, "ksm_pages_to_scan": 500,
                                     "ksm_sleep": "100ms"}
        self.sim = Simulation.from_spec(parse_scenario(data), seed=seed)
        self.placed = 0

    @rule(n=st.integers(1, 4))
    def step(self, n: int) -> None:
        self.sim.step(n)

    @rule(vm=st.sampled_from(VM_IDS), host=st.sampled_from(HOSTS))
    def start(self, vm: str, host: str) -> None:
        self.sim.submit({"kind": "start_vm", "vm": vm, "host": host})

    @rule(vm=st.sampled_from(VM_IDS))
    def stop(self, vm: str) -> None:
        self.sim.submit({"kind": "stop_vm", "vm": vm})

    @rule(vm=st.sampled_from(VM_IDS), shares=st.integers(0, 10_000))
    def shares(self, vm: str, shares: int) -> None:
        self.sim.submit({"kind": "set_shares", "vm": vm, "shares": shares})

    @rule(vm=st.sampled_from(VM_IDS), mib=st.integers(0, 10))
    def set_min(self, vm: str, mib: int) -> None:
        self.sim.submit({"kind": "set_min", "vm": vm, "min": mib * MiB})

    @rule(vm=st.sampled_from(VM_IDS), mib=st.integers(0, 10))
    def set_max(self, vm: str, mib: int) -> None:
        self.sim.submit({"kind": "set_max", "vm": vm, "max": mib * MiB})

    @rule(vm=st.sampled_from(VM_IDS), mib=st.one_of(st.none(), st.integers(0, 6)))
    def swap_target(self, vm: str, mib: int | None) -> None:
        self.sim.submit({"kind": "set_swap_target", "vm": vm,
                         **({} if mib is None else {"target": mib * MiB})})

    @rule(vm=st.sampled_from(VM_IDS), mib=st.one_of(st.none(), st.integers(0, 5)))
    def balloon_target(self, vm: str, mib: int | None) -> None:
        self.sim.submit({"kind": "set_balloon_target", "vm": vm,
                         **({} if mib is None else {"target": mib * MiB})})

    @rule(vm=st.sampled_from(VM_IDS), host=st.sampled_from(HOSTS),
          mode=st.sampled_from(["precopy", "postcopy", "hybrid"]),
          algorithm=st.sampled_from(["xen", "qemu"]))
    def migrate(self, vm: str, host: str, mode: str, algorithm: str) -> None:
        self.sim.submit({"kind": "migrate", "vm": vm, "to": host, "mode": mode,
                         "algorithm": algorithm, "max_rate": "50Mbit/s"})

    @rule(host=st.sampled_from(HOSTS), up=st.booleans())
    def host_up(self, host: str, up: bool) -> None:
        self.sim.submit({"kind": "set_host_up", "host": host, "up": up})

    @rule(host=st.sampled_from(HOSTS), mib=st.integers(1, 12),
          writes=st.floats(0, 2000), resident=st.floats(0, 1),
          boot=st.sampled_from(["instant", "timed", "zero_fill"]))
    def place(self, host: str, mib: int, writes: float, resident: float, boot: str) -> None:
        self.placed += 1
        timed = {"mode": "timed", "duration": "4s", "zero_fill": boot == "zero_fill"}
        self.sim.submit({"kind": "place_vm", "vm": {
            "id": f"new{self.placed}", "host": host, "memory": mib * MiB,
            "guest_os": "windows", "content": {"resident": resident},
            "boot": "instant" if boot == "instant" else timed,
            "workload": {"reads_per_s": 500, "writes_per_s": writes, "zero_writes": 0.1}}})

    @rule(vm=st.sampled_from(VM_IDS), mib=st.integers(1, 4), idle_s=st.integers(1, 5))
    def phases(self, vm: str, mib: int, idle_s: int) -> None:
        # Busy over a working set, then idle with a smaller one (freeing pages), repeated.
        self.sim.submit({"kind": "set_workload", "vm": vm, "repeat": True, "phases": [
            {"duration": "3s", "working_set": mib * MiB, "writes_per_s": 800},
            {"duration": idle_s, "kind": "idle", "working_set": "512KiB"}]})

    @invariant()
    def holds(self) -> None:
        if hasattr(self, "sim"):
            assert invariants.check(self.sim.world.state) == []


# benchmarks/fuzz.py --examples N runs the machine much longer (OVERCOMMIT_FUZZ_EXAMPLES).
EngineMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("OVERCOMMIT_FUZZ_EXAMPLES", "60")), stateful_step_count=30,
    deadline=None)
TestEngineMachine = EngineMachine.TestCase
