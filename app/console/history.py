"""Per-VM and per-host ring buffers, filled from successive snapshots.

The engine keeps whole-datacenter series (Snapshot.history); the detail screens want the
same for one VM or host, so the App records them here as snapshots arrive. The VM series
are column-wise: one (HISTORY_LEN, VMs) ring of each quantity, filled from the snapshot's
columns without a Python loop over the VMs.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from engine import Snapshot

HISTORY_LEN = 600
VM_HISTORY_LEN = 120  # a VM's sparklines show this many ticks (float32: 2 MiB per 1,000 VMs)

VM_SERIES = ("resident_bytes", "service_level", "swapped_bytes", "balloon_bytes",
             "shared_bytes")
DC_SERIES = ("service_mean", "penalties")  # the whole data center
HOST_SERIES = ("free_bytes", "private_bytes", "shared_bytes", "nic_used_bytes_per_s",
               "shared_saved_bytes", "balloon_bytes", "swapped_bytes")


class Histories:
    def __init__(self, maxlen: int = HISTORY_LEN) -> None:
        self.maxlen = maxlen
        self.vm_len = min(maxlen, VM_HISTORY_LEN)
        self.last_tick: int | None = None
        self._vm_ids: dict[str, int] = {}  # VM id -> its column in the rings
        # The last snapshot's ids and their columns: the next one has the same VMs.
        self._last_where: tuple[tuple[str, ...], npt.NDArray[np.int64]] | None = None
        self._vm: dict[str, npt.NDArray[np.float32]] = {}  # series -> (vm_len, VMs)
        self._vm_count = 0  # snapshots recorded (the rings hold the last vm_len)
        self._vm_since: npt.NDArray[np.int64] = np.zeros(0, np.int64)  # first record
        self._host: dict[str, dict[str, deque[float]]] = {}
        self._dc: dict[str, deque[float]] = {n: deque(maxlen=maxlen) for n in DC_SERIES}

    def copy(self) -> Histories:
        """An independent copy (a fork's histories go their own way)."""
        new = Histories(self.maxlen)
        new.last_tick = self.last_tick
        new._vm_ids = dict(self._vm_ids)
        new._vm = {n: ring.copy() for n, ring in self._vm.items()}
        new._vm_count = self._vm_count
        new._vm_since = self._vm_since.copy()
        new._host = {key: {n: deque(s, maxlen=self.maxlen) for n, s in series.items()}
                     for key, series in self._host.items()}
        new._dc = {n: deque(s, maxlen=self.maxlen) for n, s in self._dc.items()}
        return new

    def _grow(self, ids: tuple[str, ...]) -> npt.NDArray[np.int64]:
        """The ring column of each VM of a snapshot (VMs are only ever added)."""
        last = self._last_where
        if last is not None and (last[0] is ids or last[0] == ids):
            return last[1]
        new = [vm_id for vm_id in ids if vm_id not in self._vm_ids]
        if new:
            start = len(self._vm_ids)
            for i, vm_id in enumerate(new):
                self._vm_ids[vm_id] = start + i
            width = len(self._vm_ids)
            for name in VM_SERIES:
                ring = self._vm.get(name, np.zeros((self.vm_len, 0), np.float32))
                self._vm[name] = np.concatenate(
                    [ring, np.zeros((self.vm_len, width - ring.shape[1]), np.float32)], axis=1)
            self._vm_since = np.concatenate(
                [self._vm_since, np.full(len(new), self._vm_count, np.int64)])
        where = np.array([self._vm_ids[vm_id] for vm_id in ids], np.int64)
        self._last_where = (ids, where)
        return where

    def record(self, snap: Snapshot) -> None:
        if snap.tick == self.last_tick:
            return
        self.last_tick = snap.tick
        where = self._grow(snap.vms.ids)
        slot = self._vm_count % self.vm_len
        cols = snap.columns
        for name in VM_SERIES:
            self._vm[name][slot, where] = cols[name]
        self._vm_count += 1
        for host in snap.hosts:
            series = self._host.get(host.id)
            if series is None:
                series = self._host[host.id] = {n: deque(maxlen=self.maxlen)
                                                for n in HOST_SERIES}
            for name in HOST_SERIES:
                series[name].append(float(getattr(host, name)))
        running = cols["running"]
        served = cols["service_level"][running]
        self._dc["service_mean"].append(float(served.mean()) if served.size else 1.0)
        self._dc["penalties"].append(snap.penalties)

    def vm(self, vm_id: str, name: str) -> list[float]:
        col = self._vm_ids.get(vm_id)
        if col is None or name not in self._vm:
            return []
        n = min(self._vm_count - int(self._vm_since[col]), self.vm_len)
        if n <= 0:
            return []
        slots = np.arange(self._vm_count - n, self._vm_count) % self.vm_len
        return [float(x) for x in self._vm[name][slots, col]]

    def datacenter(self, name: str) -> list[float]:
        return list(self._dc.get(name, ()))

    def host(self, host_id: str, name: str) -> list[float]:
        return list(self._host.get(host_id, {}).get(name, ()))
