"""Frozen pydantic models of the parts of a scenario (the whole scenario is in scenario.py).

Every size, rate and duration accepts a human unit ("512MiB", "1Gbit/s", "250ms") or a
bare number in bytes, bytes/s or seconds. Models forbid unknown keys so a typo is an error,
not a silently ignored setting. Later mechanisms add optional fields with defaults, so old
files keep loading.

Every number has a finite range (engine/ranges.py): use the shared types below (Bytes,
Rate, Seconds, Fraction, Count, PerSecond, Price...) or `Annotated[int, Range(...)]` for a
field of its own; tests/engine/test_ranges.py refuses an int or float field without one.
Free text is stripped of control characters here, at the edge (engine/text.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from engine.ranges import (
    MAX_BYTES,
    MAX_SEED,
    MAX_SIGNED,
    MAX_TICK_S,
    MIN_TICK_S,
    GiB,
    MiB,
    Range,
)
from engine.spec_types import (
    IDENT_MAX,
    MAX_PHASES,
    Bytes,
    Count,
    Fraction,
    Frozen,
    Ident,
    Line,
    Paragraphs,
    PerSecond,
    PositiveRate,
    PositiveSeconds,
    Price,
    Rate,
    Region,
    Seconds,
    Shares,
    Signed,
    Watts,
)


class ScenarioMeta(Frozen):
    name: Line
    description: Paragraphs = ""
    seed: Annotated[int, Range(0, MAX_SEED, "int")] = 0
    tick_s: Annotated[float, Range(MIN_TICK_S, MAX_TICK_S, "duration")] = 1.0
    duration: PositiveSeconds | None = None
    page_size: Annotated[int, Range(512, GiB, "size")] = 4096
    # What the console shows before a campaign level starts: the situation and the goal.
    briefing: Paragraphs = ""

    @model_validator(mode="after")
    def _positive(self) -> ScenarioMeta:
        if self.page_size & (self.page_size - 1):
            raise ValueError("page_size must be a power of two of at least 512 bytes")
        return self


class SwitchSpec(Frozen):
    id: Ident
    kind: Literal["switch", "gateway", "storage"] = "switch"


class LinkSpec(Frozen):
    a: Ident
    b: Ident
    capacity: PositiveRate
    latency: Seconds = 50e-6


class HostSpec(Frozen):
    id: Ident
    memory: Annotated[int, Range(MiB, MAX_BYTES, "size")]
    low_memory: Bytes = 4 * 1024**3
    cpus: Annotated[int, Range(1, 4096, "int")] = 8
    cpu_ghz: Annotated[float, Range(0, 100, unit="GHz", lo_open=True)] = 2.0
    switch: Ident | None = None
    nic: PositiveRate = 125_000_000.0
    nic_latency: Seconds = 50e-6
    swap_disk: PositiveRate = 100_000_000.0
    idle_w: Watts = 150.0
    peak_w: Watts = 300.0
    capital_per_hour: Price = 0.10
    swap_space: Bytes = 64 * 1024**3
    swap_latency: Seconds = 0.005
    sharing: Literal["esx", "ksm", "off"] | None = None  # overrides policy.sharing.mode


def member_ids_fit(group_id: str, count: int) -> None:
    """A group's members are named id0 ... id<count - 1>: the longest must be an id too
    (the expansion validates the first member only, engine/scenario.py)."""
    last = f"{group_id}{count - 1}"
    if len(last) > IDENT_MAX:
        raise ValueError(f"member ids up to {last[:20]}... run past {IDENT_MAX} characters; "
                         "use a shorter id")


class HostGroupSpec(HostSpec):
    """`count` hosts named id0, id1, ...; spread over `switches` in contiguous blocks."""

    count: Annotated[int, Range(1, 100_000, "int")]
    switches: list[Ident] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _members_fit(self) -> HostGroupSpec:
        member_ids_fit(self.id, self.count)
        return self


class ContentMix(Frozen):
    """What a VM's touched pages hold at power-on, as fractions summing to 1.

    zero: zero-filled pages; os: pages of the guest OS image (identical in VMs with the same
    image); app: pages of the application (identical in VMs running the same app);
    dup: pages that repeat within the VM, `dup_copies` copies of each on average (library
    and page-cache copies; derived from the image and app, so identical VMs repeat the same
    ones); private: unique pages. `resident` is the fraction of configured memory touched at
    start.

    compose = "images" ignores the fractions and builds the content from the image library
    (engine/workloads/images.toml): the image of `guest_os`, of `app` and of every name in
    `images` (more applications), laid out from guest address 0 in that order, each with
    its own zero and private pages; see engine/workloads/images.py.
    """

    zero: Fraction = 0.2
    os: Fraction = 0.2
    app: Fraction = 0.1
    dup: Fraction = 0.0
    private: Fraction = 0.5
    resident: Fraction = 0.5
    dup_copies: Annotated[float, Range(1.0, 1e6)] = 2.0
    compose: Literal["mix", "images"] = "mix"
    images: list[Ident] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _sums_to_one(self) -> ContentMix:
        total = self.zero + self.os + self.app + self.dup + self.private
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"zero + os + app + dup + private must sum to 1, got {total:.4g}")
        return self


class WorkloadSpec(Frozen):
    """The synthetic generator every workload builds on.

    Reads and writes per second touch pages of a working set: `working_set` bytes starting
    `offset` bytes into a `region` of guest memory (heap: after the OS and application
    images, which is guest address 0 for calibrated content mixes; memory: from address
    0; os, app: inside the images, for a workload that rewrites its binaries or its
    kernel's data). `hot_access` of the accesses go to the hot subset (the first `hot_set`
    bytes of the working set). A write gives the page new unique content, or zero with
    probability `zero_writes`. `order` is uniform random or a sequential sweep.

    `phases` change the workload over time (engine/workloads/schedule.py): each phase
    starts `at` seconds after the workload starts (the end of the VM's boot), or when the
    phase before it has run its `duration`, and sets the fields it names on top of this
    workload; with `repeat` the list starts over after the last phase's duration (idle and
    busy cycles).
    """

    kind: Literal["synthetic", "idle"] = "synthetic"
    preset: Ident | None = None  # a named workload (engine/workloads/library.py)
    reads_per_s: PerSecond = 200.0
    writes_per_s: PerSecond = 50.0
    working_set: Bytes | None = None
    hot_set: Bytes | None = None
    hot_access: Fraction = 0.8
    order: Literal["uniform", "sequential"] = "uniform"
    zero_writes: Fraction = 0.0
    cpu_util: Fraction = 0.3  # share of its time the workload computes (the rest it waits)
    # Share of a page's bytes a write changes (XBZRLE deltas); None: the policy's default.
    changed_fraction: Fraction | None = None
    net: Rate = 0.0
    # A cache-sensitive part: reads of a file data set through the guest's page cache.
    dataset: Bytes | None = None
    file_reads_per_s: PerSecond = 0.0
    # Closed loop: the workload runs as fast as its faults let it (dbench); open loop: it
    # receives a fixed rate and faults add latency (a web server).
    closed_loop: bool = False
    # Device I/O (network or disk buffers): pages per second, within the first `io_set`
    # bytes of the working set. Through a 32-bit DMA device (vm.dma32) high pages bounce.
    io_pages_per_s: PerSecond = 0.0
    io_set: Bytes = 4 * 1024**2
    # A daily demand curve: rates follow a cosine between `daily_trough` (a share of the
    # peak) and the peak at `daily_peak_hour` (hours of simulated time, modulo 24).
    daily_peak_hour: Annotated[float, Range(0, 24, unit="h", hi_open=True)] | None = None
    daily_trough: Fraction = 1.0
    region: Region = "heap"
    offset: Bytes = 0
    phases: list[PhaseSpec] = Field(default_factory=list, max_length=MAX_PHASES)
    repeat: bool = False

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return _expand_preset(data)

    @model_validator(mode="after")
    def _phase_times(self) -> WorkloadSpec:
        last_end: float | None = 0.0
        last_start = 0.0
        for i, phase in enumerate(self.phases):
            start = phase.at if phase.at is not None else last_end
            if start is None:
                raise ValueError(f"phases[{i}] needs `at`: the phase before it has no "
                                 "duration")
            if start < last_start:
                raise ValueError(f"phases[{i}] starts at {start:g} s, before the phase "
                                 f"before it ({last_start:g} s)")
            last_start = start
            last_end = None if phase.duration is None else start + phase.duration
        if self.repeat and (not self.phases or last_end is None or last_end <= 0):
            raise ValueError("repeat needs phases whose last one has a duration")
        return self

    def with_changes(self, change: WorkloadChange) -> WorkloadSpec:
        """This workload with the fields `change` names replaced (phases kept)."""
        data = self.model_dump(exclude={"phases", "repeat"})
        data.update(change.model_dump(exclude_none=True, exclude={"at", "duration"}))
        return WorkloadSpec.model_validate(data)


def _expand_preset(data: Any) -> Any:
    from engine.workloads.library import expand

    preset = data.get("preset") if isinstance(data, dict) else None
    if preset is not None and not isinstance(preset, str):
        raise ValueError(f"preset: expected a preset name, got {type(preset).__name__}")
    expanded = expand(data)
    if isinstance(expanded, dict) and isinstance(data, dict) and data.get("preset"):
        expanded["preset"] = data["preset"]
    return expanded


class WorkloadChange(Frozen):
    """Some fields of a workload (a phase, or a set_workload command): the ones given
    replace the workload's; None keeps it. A `preset` sets that preset's fields."""

    kind: Literal["synthetic", "idle"] | None = None
    preset: Ident | None = None
    reads_per_s: PerSecond | None = None
    writes_per_s: PerSecond | None = None
    working_set: Bytes | None = None
    hot_set: Bytes | None = None
    hot_access: Fraction | None = None
    order: Literal["uniform", "sequential"] | None = None
    zero_writes: Fraction | None = None
    cpu_util: Fraction | None = None
    net: Rate | None = None
    dataset: Bytes | None = None
    file_reads_per_s: PerSecond | None = None
    closed_loop: bool | None = None
    io_pages_per_s: PerSecond | None = None
    io_set: Bytes | None = None
    daily_peak_hour: Annotated[float, Range(0, 24, unit="h", hi_open=True)] | None = None
    daily_trough: Fraction | None = None
    region: Region | None = None
    offset: Bytes | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return _expand_preset(data)


class PhaseSpec(WorkloadChange):
    """One phase of a workload schedule: the fields it changes, and when it runs."""

    at: Seconds | None = None  # since the workload started; default: when the last ends
    duration: Seconds | None = None  # default: until the next phase's `at` (or for ever)


class BootSpec(Frozen):
    """How a VM powers on (engine/memory/boot.py).

    instant: its memory is laid out at power-on, at once (the calibrated content mixes
    assume this). timed: the guest boots over `duration` (default: its OS image's boot
    time), writing its memory at that pace: with `zero_fill` (default: the OS image's;
    Windows zeroes all memory) every page first, then the OS and application images; the
    host's reclamation and sharing react meanwhile, and a VM that cannot get memory stalls.
    `touch`: share of memory the boot writes besides the images (kernel data; default the
    OS image's). `boot = "timed"` is short for `boot = { mode = "timed" }`.
    """

    mode: Literal["instant", "timed"] = "instant"
    duration: Seconds | None = None
    zero_fill: bool | None = None
    touch: Fraction | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data


WorkloadSpec.model_rebuild()


class SLASpec(Frozen):
    """A VM's contract: per measurement window, availability (share of the window it was
    up: not paused, blocked or lost) and performance (share of its demand served) must
    reach their targets, else the customer is credited a share of that window's bill."""

    availability: Fraction = 0.999
    performance: Fraction = 0.95
    window: PositiveSeconds = 3600.0
    availability_credit: Fraction = 0.25
    performance_credit: Fraction = 0.10
    base_latency: Seconds = 0.001  # an operation's latency with no faults


SharingMode = Literal["esx", "ksm", "off"]


class SharingPolicy(Frozen):
    """Transparent page sharing (MECHANISMS sections 2 and 3).

    mode: ESX content-based sharing (random scan, hash table with hints), Linux KSM
    (linear scan, stable and unstable trees) or off; hosts may override it.
    share_force_salting: 0 = salts ignored, every VM may share with every other; 1 = VMs
    share only with VMs of equal salt (a VM's salt defaults to its tenant); 2 = only an
    explicitly set salt counts, otherwise each VM is its own salt (VMware's default: no
    inter-VM sharing unless salted together). ESX scan: `rate` caps pages/s per VM and per
    host (ESX 2.x: 50 and 200); `whole_vm` scans each VM once per `whole_vm_period`
    (ESX 4: 60 min) within `max_scan_per_ghz` of host CPU.
    """

    mode: SharingMode = "esx"
    share_force_salting: Literal[0, 1, 2] = 1
    scan: Literal["rate", "whole_vm"] = "rate"
    pages_per_s_per_vm: Annotated[float, Range(0, 1e6, unit="pages/s")] = 50.0
    pages_per_s_per_host: Annotated[float, Range(0, 1e7, unit="pages/s")] = 200.0
    whole_vm_period: PositiveSeconds = 3600.0
    max_scan_per_ghz: Rate = 4_000_000.0
    # ESX's hint table has a fixed size: `hint_table` slots per machine frame of the host
    # (rounded up to a power of two). A new hint overwrites the slot's old one, so memory
    # never grows with run length; ESX sizes its whole table (shared frames and hints) to
    # machine memory, 16 bytes a frame. A smaller table forgets hints sooner: pairs of
    # identical pages scanned far apart in time are then found later.
    hint_table: Annotated[float, Range(0.0, 1.0, lo_open=True)] = 1.0
    ksm_pages_to_scan: Annotated[int, Range(0, 1_000_000, "int", unit="pages")] = 100
    # Linux allows 0 ms; here a batch needs a positive period, else ksmd never sleeps.
    ksm_sleep: Annotated[float, Range(1e-3, 60.0, "duration")] = 0.02
    ksm_max_page_sharing: Annotated[int, Range(2, 65_536, "int")] = 256
    ksm_use_zero_pages: bool = False
    # Linux 6.7's smart scan (on by default there): a page that has not merged in three
    # scans is skipped for 1, 2, 4, then 8 scans at a time as it keeps not merging; skipped
    # pages, like pages not present, do not count in a batch's pages_to_scan.
    ksm_smart_scan: bool = True


class MemoryPolicy(Frozen):
    """Allocation and reclamation (MECHANISMS sections 4-7).

    idle_tax: tau of the adjusted shares-per-page ratio (0 = pure shares). Targets are
    recomputed every `balance_period`, and at once after a parameter change. Active memory
    is sampled every `sample_period` (slow and fast EWMA gains per period). Free-memory
    thresholds are fractions of host memory; leaving a state upwards needs `hysteresis`
    more free memory than entering it. `states = "vsphere6"` uses the minFree sliding
    scale instead.
    """

    idle_tax: Annotated[float, Range(0.0, 0.99)] = 0.75  # 1 would make idle memory free
    balance_period: PositiveSeconds = 15.0
    sample_period: PositiveSeconds = 30.0
    ewma_slow: Fraction = 0.125
    ewma_fast: Fraction = 0.75
    balloon_max: Fraction = 0.65
    balloon_max_rate: Annotated[float, Range(0, 1e8, unit="pages/s", lo_open=True)] = 16384.0
    balloon_min_rate: Annotated[float, Range(0, 1e8, unit="pages/s", lo_open=True)] = 64.0
    # A driver's first rate, from which it adapts (the three balloon rates: 4 KiB pages/s).
    balloon_start_rate: Annotated[float, Range(0, 1e8, unit="pages/s", lo_open=True)] = 1024.0
    thresholds: tuple[Fraction, Fraction, Fraction, Fraction] = (0.06, 0.04, 0.02, 0.01)
    hysteresis: Fraction = 0.02
    states: Literal["esx", "vsphere6"] = "esx"
    overhead_per_vm: Bytes = 32 * 1024**2
    # Overhead is machine memory (engine/memory/overhead.py): frames taken at power-on,
    # released at power-off. False keeps the old accounting (reserved in targets and
    # admission only, no frames taken).
    overhead_per_vcpu: Bytes = 0
    overhead_frames: bool = True
    # vSphere's compression cache: before swapping a page that compresses to 2 KB or less,
    # keep it compressed in memory, two to a frame, up to `compression_cache` of the VM.
    compression: bool = False
    compression_cache: Fraction = 0.10
    compressible: Fraction = 0.6  # share of non-zero pages that compress to <= 2 KB
    decompress_cost: Seconds = 20e-6
    io_remap: bool = True  # move I/O-hot pages into low memory (ESX section 7)
    remap_threshold: Annotated[int, Range(1, 255, "int")] = 8  # bounce copies before a remap

    @model_validator(mode="after")
    def _ordered(self) -> MemoryPolicy:
        if not all(a > b > 0 for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError("thresholds must be decreasing positive fractions "
                             "(high, soft, hard, low)")
        return self


class MigrationPolicy(Frozen):
    """Live migration defaults (MECHANISMS sections 9-10); a migrate command may override.

    Xen (Clark et al.): rounds at a dynamic rate starting at `xen_min_rate`, next round at
    the previous round's dirtying rate + `xen_rate_increment`, capped at `xen_max_rate`;
    pages dirtied again are skipped, the log peeked before each batch of `xen_batch`;
    stop when the rate is at the max and the round sent more than the last, fewer than
    `xen_min_pages` remain, after `xen_max_rounds`, or once `xen_max_sent_factor` x the
    VM's memory has been sent. QEMU: `qemu_max_bandwidth` while iterating (the final copy
    is uncapped); complete as soon as the pending bytes fit `qemu_downtime_limit` x the
    bandwidth measured over the last `qemu_bandwidth_window`; auto-converge raises the
    vCPU throttle (`throttle_initial`, + `throttle_increment`, up to `throttle_max`) when
    a second's dirtying exceeds `throttle_trigger` of what was sent, twice in a row;
    XBZRLE keeps `xbzrle_cache` of pages by address and sends re-sent pages as deltas
    (a write changes `xbzrle_delta_fraction` of a page on average, unless the workload
    says `changed_fraction`). Post-copy pushes at up to `max_postcopy_bandwidth`
    (0 = unlimited); a hybrid switches after `postcopy_after_passes` pre-copy passes.
    """

    xen_min_rate: PositiveRate = 100e6 / 8
    xen_max_rate: PositiveRate = 500e6 / 8
    xen_rate_increment: Rate = 50e6 / 8
    xen_min_pages: Count = 50
    xen_max_rounds: Annotated[int, Range(1, 10_000, "int")] = 30
    xen_max_sent_factor: Annotated[float, Range(0, 1000, lo_open=True)] = 3.0
    xen_batch: Annotated[int, Range(1, GiB, "size")] = 4 * 1024**2  # MAX_BATCH_SIZE pages
    qemu_max_bandwidth: PositiveRate = 128 * 1024**2
    qemu_downtime_limit: Seconds = 0.3
    # BUFFER_DELAY: the bandwidth the switch-over test uses is measured over this window.
    qemu_bandwidth_window: Annotated[float, Range(0, 60.0, "duration", lo_open=True)] = 0.1
    qemu_activation: Annotated[float, Range(0, 10.0, "duration")] = 0.001  # fast-path resume
    throttle_initial: Fraction = 0.20
    throttle_increment: Fraction = 0.10
    throttle_max: Fraction = 0.99
    throttle_trigger: Fraction = 0.50  # throttle-trigger-threshold
    xbzrle_cache: Bytes = 64 * 1024**2
    xbzrle_delta_fraction: Fraction = 0.05
    max_postcopy_bandwidth: Rate = 0.0  # 0 = unlimited
    postcopy_after_passes: Annotated[int, Range(1, 1000, "int")] = 1  # hybrid
    zero_page_header: Bytes = 9
    page_header: Bytes = 8
    cpu_state: Bytes = 256 * 1024  # vCPU and device state sent in the stop phase
    activation: Seconds = 0.020  # Xen: commit, resume, unsolicited ARP
    trap_cost: Seconds = 2e-6  # write-protect fault on the first write of a page per round
    pml_batch: Annotated[int, Range(1, 1_000_000, "int")] = 512  # one exit per batch
    round_trip: Seconds = 0.0002  # network round trip for a post-copy demand fault


class VMSpec(Frozen):
    id: Ident
    host: Ident | None = None
    memory: Annotated[int, Range(512, MAX_BYTES, "size")]  # and at least one page
    min: Bytes = 0
    max: Bytes | None = None
    shares: Shares | None = None
    vcpus: Annotated[int, Range(1, 4096, "int")] = 1
    guest_os: Ident = "linux"
    app: Ident | None = None
    content: ContentMix = ContentMix()
    workload: WorkloadSpec = WorkloadSpec()
    balloon_driver: bool = True
    tenant: Ident = "default"
    salt: Ident | None = None  # page-sharing salt; defaults to the tenant
    sla: SLASpec | None = None  # defaults to policy.sla
    guest_disk_latency: Seconds = 0.008  # the guest's own virtual disk (its swap, files)
    dma32: bool = False  # has a device that can only DMA below 4 GB
    price_per_hour: Price | None = None
    boot: BootSpec = BootSpec()

    @model_validator(mode="after")
    def _sizes_consistent(self) -> VMSpec:
        if self.memory <= 0:
            raise ValueError("memory must be positive, e.g. '512MiB'")
        if self.min > self.memory:
            raise ValueError("min must not exceed memory")
        if self.max is not None and not self.min <= self.max <= self.memory:
            raise ValueError("max must lie between min and memory")
        from engine.workloads.images import check_vm

        problem = check_vm(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def max_bytes(self) -> int:
        return self.memory if self.max is None else self.max

    @property
    def shares_value(self) -> int:
        # ESX "normal" shares: 10 per MB of configured memory.
        return self.shares if self.shares is not None else 10 * (self.memory // 1024**2)


class VMGroupSpec(VMSpec):
    """`count` VMs named id0, id1, ... placed round-robin over `hosts` (or unplaced)."""

    id: Ident
    count: Annotated[int, Range(1, 1_000_000, "int")]
    # "*": every host
    hosts: list[Ident | Literal["*"]] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _members_fit(self) -> VMGroupSpec:
        member_ids_fit(self.id, self.count)
        if "*" in self.hosts and self.hosts != ["*"]:
            raise ValueError('hosts: "*" (every host) stands alone, not among host ids')
        return self


class EconomySpec(Frozen):
    revenue_per_gib_hour: Price = 0.05
    price_per_kwh: Price = 0.15
    network_per_gb: Price = 0.01  # migration traffic, per 10^9 bytes


class PolicySpec(Frozen):
    economy: EconomySpec = EconomySpec()
    sla: SLASpec = SLASpec()
    sharing: SharingPolicy = SharingPolicy()
    memory: MemoryPolicy = MemoryPolicy()
    migration: MigrationPolicy = MigrationPolicy()


ObjectiveMetric = Literal[
    "profit", "revenue", "penalties", "running_vms", "stalled_fraction", "service_level",
    "sla_breaches", "downtime_s", "swapins", "lost_vms", "vms_on_host"]
# Metrics that can be narrowed to one VM with `vm = "..."`; vms_on_host needs `host`.
VM_METRICS = frozenset({"service_level", "sla_breaches", "downtime_s", "swapins", "revenue",
                        "penalties"})


class ObjectiveSpec(Frozen):
    """A goal for the game: `metric` must be >= at_least (or <= at_most) at time `by`.

    Cumulative metrics (money, service_level since the start, downtime, swap-ins, breaches,
    lost VMs) judge the whole run up to `by`; the others (running_vms, stalled_fraction,
    vms_on_host) the moment itself."""

    metric: ObjectiveMetric
    at_least: Signed | None = None
    at_most: Signed | None = None
    by: Seconds
    vm: Ident | None = None
    host: Ident | None = None
    description: Line = ""

    @model_validator(mode="after")
    def _one_bound(self) -> ObjectiveSpec:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least or at_most")
        if self.vm is not None and self.metric not in VM_METRICS:
            raise ValueError(f"metric {self.metric!r} cannot be narrowed to a vm; those that "
                             f"can: {', '.join(sorted(VM_METRICS))}")
        if (self.host is not None) != (self.metric == "vms_on_host"):
            raise ValueError("vms_on_host needs a host, and only vms_on_host takes one")
        return self


class Expectation(Frozen):
    """A published number a reproduction must match: within a tolerance (two_sided), or
    at least / at most it (for results published as "more than 30 %")."""

    metric: Line
    published: Signed
    bound: Literal["two_sided", "at_least", "at_most"] = "two_sided"
    abs_tol: Annotated[float, Range(0, MAX_SIGNED)] | None = None
    rel_tol: Annotated[float, Range(0, MAX_SIGNED)] | None = None
    unit: Line = ""
    note: Paragraphs = ""

    @model_validator(mode="after")
    def _one_tolerance(self) -> Expectation:
        if self.abs_tol is not None and self.rel_tol is not None:
            raise ValueError("give at most one of abs_tol or rel_tol")
        if self.bound == "two_sided" and self.abs_tol is None and self.rel_tol is None:
            raise ValueError("a two-sided expectation needs abs_tol or rel_tol")
        return self

    @property
    def slack(self) -> float:
        if self.abs_tol is not None:
            return self.abs_tol
        return (self.rel_tol or 0.0) * abs(self.published)

    def holds(self, value: float) -> bool:
        if self.bound == "at_least":
            return value >= self.published - self.slack
        if self.bound == "at_most":
            return value <= self.published + self.slack
        return abs(value - self.published) <= self.slack


class ReproduceSpec(Frozen):
    """Where the published values come from and what the simulation must show."""

    source: Paragraphs
    expect: list[Expectation] = Field(default_factory=list, max_length=1000)
