"""Random valid (and invalid) command sequences never break an invariant."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine import Simulation, invariants, parse_scenario
from tests.conftest import small_spec

VM_IDS = ["a", "b", "c", "q"]
HOSTS = ["h1", "h2"]
MiB = 1024**2


class EngineMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16))
    def build(self, seed: int) -> None:
        self.sim = Simulation.from_spec(parse_scenario(small_spec()), seed=seed)
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

    @rule(host=st.sampled_from(HOSTS), mib=st.integers(1, 12),
          writes=st.floats(0, 2000), resident=st.floats(0, 1))
    def place(self, host: str, mib: int, writes: float, resident: float) -> None:
        self.placed += 1
        self.sim.submit({"kind": "place_vm", "vm": {
            "id": f"new{self.placed}", "host": host, "memory": mib * MiB,
            "content": {"resident": resident},
            "workload": {"reads_per_s": 500, "writes_per_s": writes, "zero_writes": 0.1}}})

    @invariant()
    def holds(self) -> None:
        if hasattr(self, "sim"):
            assert invariants.check(self.sim.world.state) == []


EngineMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25,
                                           deadline=None)
TestEngineMachine = EngineMachine.TestCase
