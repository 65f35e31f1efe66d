"""Commands: the only way operators and scripts change the world.

A command is a pydantic model tagged by `kind`. `Simulation.submit` checks it against the
current world and answers accepted or rejected-with-a-reason at once; accepted commands
are applied at the start of the next tick (and checked again then, since the world may
have moved on).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from engine.ranges import Range
from engine.spec import (
    PhaseSpec,
    SharingMode,
    VMSpec,
    WorkloadChange,
)
from engine.spec_types import (
    MAX_PHASES,
    Bytes,
    Frozen,
    Ident,
    PositiveRate,
    Rate,
    Seconds,
    Shares,
)
from engine.workloads.library import expand

# A free-memory threshold: a share of host memory strictly between 0 and 1.
Threshold = Annotated[float, Range(0.0, 1.0, lo_open=True, hi_open=True)]


class StartVM(Frozen):
    """Power on a defined, stopped VM on a host (overcommit allowed)."""

    kind: Literal["start_vm"] = "start_vm"
    vm: Ident
    host: Ident


class PlaceVM(Frozen):
    """Define a new VM (a customer request) and power it on `vm.host`."""

    kind: Literal["place_vm"] = "place_vm"
    vm: VMSpec


class StopVM(Frozen):
    kind: Literal["stop_vm"] = "stop_vm"
    vm: Ident


class SetShares(Frozen):
    kind: Literal["set_shares"] = "set_shares"
    vm: Ident
    shares: Shares


class SetMin(Frozen):
    kind: Literal["set_min"] = "set_min"
    vm: Ident
    min: Bytes


class SetMax(Frozen):
    kind: Literal["set_max"] = "set_max"
    vm: Ident
    max: Bytes


class SetSharing(Frozen):
    """Switch a host's page-sharing mechanism (shared pages stay shared)."""

    kind: Literal["set_sharing"] = "set_sharing"
    host: Ident
    mode: SharingMode


class SetSalting(Frozen):
    """Change policy.sharing.share_force_salting for the whole data center."""

    kind: Literal["set_salting"] = "set_salting"
    level: Literal[0, 1, 2]


class SetBalloonTarget(Frozen):
    """Force a VM's balloon size (None gives control back to the allocation policy)."""

    kind: Literal["set_balloon_target"] = "set_balloon_target"
    vm: Ident
    target: Bytes | None = None


class SetSwapTarget(Frozen):
    """Force how much of a VM the hypervisor swaps out (None: back to the policy)."""

    kind: Literal["set_swap_target"] = "set_swap_target"
    vm: Ident
    target: Bytes | None = None


class SetIdleTax(Frozen):
    """Set the idle memory tax rate of one host, or of every host when host is omitted."""

    kind: Literal["set_idle_tax"] = "set_idle_tax"
    host: Ident | None = None
    tax: Annotated[float, Range(0.0, 0.99)]


class SetBalloonDriver(Frozen):
    kind: Literal["set_balloon_driver"] = "set_balloon_driver"
    vm: Ident
    enabled: bool


class SetThresholds(Frozen):
    """Free-memory state thresholds as fractions of host memory: high, soft, hard, low."""

    kind: Literal["set_thresholds"] = "set_thresholds"
    high: Threshold
    soft: Threshold
    hard: Threshold
    low: Threshold

    @model_validator(mode="after")
    def _decreasing(self) -> SetThresholds:
        if not self.high > self.soft > self.hard > self.low:
            raise ValueError("thresholds must decrease: high > soft > hard > low")
        return self


class SetWorkload(WorkloadChange):
    """Change a running workload: any workload field (load spikes, a toucher's working
    set, idle -> busy, another preset...); fields left out keep their values. `phases`
    replaces the VM's phase schedule (restarted now; [] drops it) and `repeat` its cycling.
    While a phase runs, the fields it sets win over the VM's own workload. Reads, writes
    or file reads given to an idle workload wake it (workload_kind synthetic) unless
    `workload_kind` is given."""

    kind: Literal["set_workload"] = "set_workload"  # type: ignore[assignment]
    vm: Ident
    workload_kind: Literal["synthetic", "idle"] | None = None
    phases: list[PhaseSpec] | None = Field(default=None, max_length=MAX_PHASES)
    repeat: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        # The preset's `kind` is the workload's, not this command's tag.
        if not isinstance(data, dict) or not data.get("preset"):
            return data
        fields = dict(expand({"preset": data["preset"]}))
        preset_kind = fields.pop("kind", None)
        merged = {**fields, **data}
        if preset_kind is not None and data.get("workload_kind") is None:
            merged["workload_kind"] = preset_kind
        return merged

    def change(self) -> WorkloadChange:
        """The workload fields this command sets (workload_kind is the workload's kind)."""
        data = self.model_dump(exclude_none=True, exclude={"kind", "vm", "workload_kind",
                                                           "phases", "repeat"})
        if self.workload_kind is not None:
            data["kind"] = self.workload_kind
        return WorkloadChange.model_validate(data)


class Migrate(Frozen):
    """Live-migrate a VM to another host.

    mode: precopy (iterate, then stop and copy), postcopy (switch at once, pull pages on
    demand), hybrid (pre-copy passes, then post-copy). algorithm: xen (dynamic rate,
    Clark et al.) or qemu (fixed bandwidth, downtime limit). A pre-copy or hybrid switches
    to post-copy `postcopy_after` seconds after it started or after `postcopy_after_passes`
    passes (a hybrid by default after the policy's passes, one). Unset numbers take the
    policy; `max_postcopy_rate` 0 is unlimited.
    """

    kind: Literal["migrate"] = "migrate"
    vm: Ident
    to: Ident
    mode: Literal["precopy", "postcopy", "hybrid"] = "precopy"
    algorithm: Literal["xen", "qemu"] = "xen"
    max_rate: PositiveRate | None = None
    min_rate: PositiveRate | None = None
    downtime_limit: Seconds | None = None
    auto_converge: bool = False
    xbzrle: bool = False
    prepaging: bool = True
    pml: bool = False  # hardware dirty logging (batched exits) instead of write protection
    free_page_hints: bool = False  # the guest reports free pages, which are not sent
    stun: bool = False  # paravirtual: pause the processes that dirty faster than we send
    max_postcopy_rate: Rate | None = None
    postcopy_after: Seconds | None = None
    postcopy_after_passes: Annotated[int, Range(1, 1000, "int")] | None = None


class CancelMigration(Frozen):
    kind: Literal["cancel_migration"] = "cancel_migration"
    vm: Ident


class SwitchToPostcopy(Frozen):
    """Turn a running pre-copy into post-copy at the next tick."""

    kind: Literal["switch_to_postcopy"] = "switch_to_postcopy"
    vm: Ident


class SetLink(Frozen):
    """Take a link down or up, or degrade its capacity (both directions)."""

    kind: Literal["set_link"] = "set_link"
    a: Ident
    b: Ident
    up: bool = True
    capacity: PositiveRate | None = None


class SetHostUp(Frozen):
    """Fail a host (its VMs stop; a post-copy touching it loses its VM) or bring it back."""

    kind: Literal["set_host_up"] = "set_host_up"
    host: Ident
    up: bool


Command = Annotated[
    StartVM | PlaceVM | StopVM | SetShares | SetMin | SetMax | SetSharing | SetSalting
    | SetBalloonTarget | SetSwapTarget | SetIdleTax | SetBalloonDriver | SetThresholds
    | SetWorkload | Migrate | CancelMigration | SwitchToPostcopy | SetLink | SetHostUp,
    Field(discriminator="kind"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


class TimelineEntry(Frozen):
    """A command scheduled at simulated time `at`."""

    at: Seconds
    command: Command


def parse_command(data: dict[str, Any]) -> Command:
    """Plain data (e.g. from JSON or a TOML table) -> a validated command."""
    return COMMAND_ADAPTER.validate_python(data)


def describe_command(command: Command) -> str:
    """One line for logs: the kind and its arguments, sizes in human units."""
    from engine.units import format_bytes

    fields = command.model_dump(exclude={"kind"}, exclude_none=True)
    if isinstance(command, PlaceVM):
        return f"place {command.vm.id} on {command.vm.host}"
    parts = []
    for key, value in fields.items():
        if key in ("target", "min", "max", "working_set", "hot_set") and isinstance(value, int):
            value = format_bytes(value)
        parts.append(f"{key}={value}")
    return f"{command.kind.replace('_', ' ')} " + " ".join(parts)


def command_to_plain(command: Command) -> dict[str, Any]:
    return command.model_dump(mode="json", exclude_none=True)


class Accepted:
    """Answer of `Simulation.submit`: the command will apply at the next tick."""

    ok = True
    reason = ""

    def __repr__(self) -> str:
        return "Accepted()"


class Rejected:
    ok = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Rejected({self.reason!r})"


Verdict = Accepted | Rejected
