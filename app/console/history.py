"""Per-VM and per-host ring buffers, filled from successive snapshots.

The engine keeps whole-datacenter series (Snapshot.history); the detail screens want the
same for one VM or host, so the App records them here as snapshots arrive.
"""

from __future__ import annotations

from collections import deque

from engine import Snapshot

HISTORY_LEN = 600

VM_SERIES = ("resident_bytes", "service_level", "swapped_bytes", "balloon_bytes",
             "shared_bytes")
DC_SERIES = ("service_mean", "penalties")  # the whole data center
HOST_SERIES = ("free_bytes", "private_bytes", "shared_bytes", "nic_used_bytes_per_s",
               "shared_saved_bytes", "balloon_bytes", "swapped_bytes")


class Histories:
    def __init__(self, maxlen: int = HISTORY_LEN) -> None:
        self.maxlen = maxlen
        self.last_tick: int | None = None
        self._vm: dict[str, dict[str, deque[float]]] = {}
        self._host: dict[str, dict[str, deque[float]]] = {}
        self._dc: dict[str, deque[float]] = {n: deque(maxlen=maxlen) for n in DC_SERIES}

    def _series(self, table: dict[str, dict[str, deque[float]]], key: str,
                names: tuple[str, ...]) -> dict[str, deque[float]]:
        series = table.get(key)
        if series is None:
            series = table[key] = {n: deque(maxlen=self.maxlen) for n in names}
        return series

    def record(self, snap: Snapshot) -> None:
        if snap.tick == self.last_tick:
            return
        self.last_tick = snap.tick
        for vm in snap.vms:
            series = self._series(self._vm, vm.id, VM_SERIES)
            for name in VM_SERIES:
                series[name].append(float(getattr(vm, name)))
        for host in snap.hosts:
            series = self._series(self._host, host.id, HOST_SERIES)
            for name in HOST_SERIES:
                series[name].append(float(getattr(host, name)))
        running = [v.service_level for v in snap.vms if v.running]
        self._dc["service_mean"].append(sum(running) / len(running) if running else 1.0)
        self._dc["penalties"].append(snap.penalties)

    def vm(self, vm_id: str, name: str) -> list[float]:
        return list(self._vm.get(vm_id, {}).get(name, ()))

    def datacenter(self, name: str) -> list[float]:
        return list(self._dc.get(name, ()))

    def host(self, host_id: str, name: str) -> list[float]:
        return list(self._host.get(host_id, {}).get(name, ()))
