"""Post-copy (Hines & Gopalan, VEE'09): the VM runs at the destination, its memory follows.

The touches a post-copy VM made this tick were held back by the touch path (they need
pages still at the source). Here they run in time order on the vCPU's clock, interleaved
with the source's push on one link timeline:
- a touch of a page that has arrived runs at once (the first touch of a pushed page is a
  minor fault);
- a touch of a page still at the source is a network fault: the page is fetched next on
  the link (its transfer at the flow's rate) and the vCPU waits a round trip plus that
  transfer; every later touch moves by the wait, and those pushed past the end of the
  tick do not happen this tick - a VM that faults does less work and dirties less;
- meanwhile the link pushes pages, each exactly once: with pre-paging outward from the
  latest fault, alternately up and down (pivot and growing bubble); without it, in Xen's
  pseudo-random pfn order, which knows nothing of where the working set is.
Fetches and pushes share the link, so together they never exceed its rate. A page the
source had swapped out is read back from its disk before it goes, the sender waiting for
it (swapread.py), the disk's latency once per read-ahead cluster (SourceReads).
The loop goes from network fault to network fault (each costs at least a round trip of
simulated time); the touches and pushes between two faults are handled in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import ranges
from engine.memory.touch import apply_touches
from engine.migration.arena import I64
from engine.migration.model import POSTCOPY, MigrationTable
from engine.migration.order import xen_permute
from engine.migration.send import qemu_page_bytes
from engine.migration.swapread import cluster_pages, read_seconds
from engine.migration.switchover import finish_postcopy, pull
from engine.state import Loc
from engine.world import World

F64 = np.ndarray
FIRST_CHUNK = 64  # touches looked at per step right after a fault; doubles while none fault
# A plain int: numpy compares a uint8 array with an IntEnum member by casting every byte.
_REMOTE = int(Loc.REMOTE)


@dataclass
class Touches:
    """One VM's held-back touches of the tick, in the order the vCPU makes them."""

    page: I64  # local page index
    write: np.ndarray
    content: np.ndarray  # of writes (0 for reads)
    kind: I64
    at: np.ndarray  # seconds of vCPU work into the tick


def held_touches(world: World, v: int) -> Touches:
    state = world.state
    off = int(state.vms["page_offset"][v])
    parts: list[tuple[I64, np.ndarray, np.ndarray, I64]] = []
    for reads, writes, contents, held_kind in state.held_touches:
        r = reads[state.vms.vm_of_pages(reads) == v]
        w_mine = state.vms.vm_of_pages(writes) == v
        w, c = writes[w_mine], contents[w_mine]
        parts.append((np.concatenate([r, w]) - off,
                      np.concatenate([np.zeros(r.size, np.bool_), np.ones(w.size, np.bool_)]),
                      np.concatenate([np.zeros(r.size, np.uint64), c]),
                      np.full(r.size + w.size, held_kind, np.int64)))
    if not parts:
        empty = np.zeros(0, np.int64)
        return Touches(empty, empty.astype(np.bool_), empty.astype(np.uint64), empty,
                       np.zeros(0))
    page = np.concatenate([part[0] for part in parts])
    write = np.concatenate([part[1] for part in parts])
    content = np.concatenate([part[2] for part in parts])
    kind = np.concatenate([part[3] for part in parts])
    rng = world.streams["migration"]
    at = np.sort(rng.random(page.size)) * state.tick_s
    # A sweep runs in the order it was generated; other touches in a random order.
    order = (np.arange(page.size) if state.vms["sequential"][v]
             else rng.permutation(page.size))
    return Touches(page[order], write[order], content[order], kind[order], at)


class Push:
    """The source's push for one VM: which remote pages go next, in push order."""

    def __init__(self, world: World, table: MigrationTable, row: int, remote: np.ndarray):
        self.table, self.row, self.remote = table, row, remote
        self.n = remote.size
        self.prepaging = bool(table["prepaging"][row])
        # The pages remote when the tick began, ascending: a page leaves `remote` (pushed
        # or fetched) and never comes back within the tick, so the remote pages beyond
        # any point are those of this list beyond it still remote. (Scanning `remote`
        # itself outward from the bubble went over every page already here.)
        self._listed = np.flatnonzero(remote) if self.prepaging else np.zeros(0, np.int64)

    def next(self, k: int) -> tuple[I64, np.ndarray]:
        """The next k remote pages (fewer if fewer remain) and, with pre-paging, whether
        each lies above the pivot."""
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.bool_)
        if not self.prepaging:
            return self._scan_order(k), np.zeros(0, np.bool_)
        lo, hi = int(self.table["edge_lo"][self.row]), int(self.table["edge_hi"][self.row])
        up = self._scan(hi + 1, 1, k)
        down = self._scan(lo - 1, -1, k)
        # Alternately up and down while both sides have pages, then the longer side's
        # rest: laid out in place (an argsort of the ranks was 1 ms a fault).
        m = min(up.size, down.size)
        pages = np.empty(up.size + down.size, np.int64)
        side = np.zeros(pages.size, np.bool_)
        pages[0:2 * m:2], pages[1:2 * m:2] = up[:m], down[:m]
        side[0:2 * m:2] = True
        rest = up[m:] if up.size > m else down[m:]
        pages[2 * m:] = rest
        side[2 * m:] = up.size > m
        return pages[:k], side[:k]

    def _scan(self, start: int, step: int, k: int) -> I64:
        """The first k pages still remote from `start` on, upward (step 1) or downward."""
        listed, width = self._listed, max(2 * k, 64)
        # Listed pages from `start` on (upward: at and after `at`; downward: before it).
        at = int(np.searchsorted(listed, start, side="left" if step > 0 else "right"))
        while True:
            if step > 0:
                cand = listed[at:at + width]
                bound = at + width >= listed.size
            else:
                cand = listed[max(at - width, 0):at][::-1]
                bound = at - width <= 0
            found = np.asarray(cand[self.remote[cand]], np.int64)
            if found.size >= k or bound:
                return found[:k]
            width *= 2

    def _scan_order(self, k: int) -> I64:
        pos0 = int(self.table["push_pos"][self.row])
        width = max(2 * k, 64)
        while True:
            pos = np.arange(pos0, min(pos0 + width, self.n), dtype=np.int64)
            pages = xen_permute(pos, np.full(pos.size, self.n, np.int64))
            found = np.asarray(pages[self.remote[pages]], np.int64)
            if found.size >= k or pos.size < width:
                self._last_pos = pos[self.remote[pages]][:k]
                return found[:k]
            width *= 2

    def commit(self, pages: I64, side: np.ndarray) -> None:
        """These pages went: move the bubble's edges or the push position past them."""
        if pages.size == 0:
            return
        self.remote[pages] = False
        t, row = self.table, self.row
        if not self.prepaging:
            t["push_pos"][row] = int(self._last_pos[pages.size - 1]) + 1
            return
        if side.any():
            t["edge_hi"][row] = int(pages[side].max())
        if (~side).any():
            t["edge_lo"][row] = int(pages[~side].min())

    def pivot(self, page: int) -> None:
        """Pre-paging: the push starts again around the faulting page."""
        self.table["pivot"][self.row] = page
        self.table["edge_lo"][self.row] = self.table["edge_hi"][self.row] = page


class SourceReads:
    """The source's reads of swapped-out pages for one post-copy VM: each page's seconds
    (swapread.py), and the count and total of those that went this tick. A read pays the
    disk's latency only for a read-ahead cluster not read yet: Linux reads the cluster
    around a swapped page at once, so the push (outward on both sides of the latest fault,
    the two sides in turn) and the faults find its other pages in the swap cache. Which
    clusters were read is kept with the migration's pages (table.pages "swap_read")."""

    def __init__(self, world: World, table: MigrationTable, row: int, off: int,
                 n: int) -> None:
        self.state, self.off = world.state, off
        self.src = int(table["src"][row])
        self.cluster = cluster_pages(world.state.page_size)
        base = int(table["page_base"][row])
        self.read = table.pages["swap_read"][base:base + n]  # a view: by local page
        self.pages = 0
        self.seconds = 0.0

    def of(self, pages: I64) -> F64 | None:
        """Seconds to read each of `pages` (local, in the order they go) back from swap;
        None if none is swapped out."""
        swapped = np.flatnonzero(self.state.pages.frame[self.off + pages] < 0)  # REMOTE,
        if swapped.size == 0:  # its copy in swap
            return None
        mine = pages[swapped]
        _, first = np.unique(mine // self.cluster, return_index=True)
        starts = np.zeros(swapped.size, np.bool_)
        starts[first] = True  # the first read of its cluster among these
        starts &= ~self.read[mine]
        out = np.zeros(pages.size)
        out[swapped] = read_seconds(self.state, np.full(swapped.size, self.src), starts)
        return out

    def went(self, pages: I64, read_s: F64 | None) -> None:
        """These pages went, after their reads: count them, keep the disk busy, and mark
        their clusters read."""
        if read_s is None:
            return
        read = read_s > 0
        n = int(np.count_nonzero(read))
        c = self.cluster
        firsts = np.unique(pages[read] // c) * c
        self.read[np.minimum(ranges(firsts, np.full(firsts.size, c)), self.read.size - 1)] = True
        self.pages += n
        self.seconds += float(read_s.sum())
        hosts = self.state.hosts
        self.state.reclaim.hosts["disk_busy_s_tick"][self.src] += (
            n * self.state.page_size / hosts.swap_disk_bytes_per_s[self.src])


def serve(world: World, table: MigrationTable, row: int) -> None:
    """One post-copy migration's tick: the held touches, the faults, the push."""
    state = world.state
    p, vms = state.pages, state.vms
    v = int(table["vm"][row])
    off, n = int(vms["page_offset"][v]), int(vms["n_pages"][v])
    start, end = state.time_s, state.time_s + state.tick_s
    rate = max(min(float(table["flow_rate"][row]), float(table["postcopy_rate"][row])), 1.0)
    policy = world.spec.policy.migration
    bytes_each = qemu_page_bytes(world)[0]  # a page and its header
    page_s = bytes_each / rate
    rtt = policy.round_trip
    remote = p.location[off:off + n] == _REMOTE
    push = Push(world, table, row, remote)
    pushed = table.pages["pushed"][int(table["page_base"][row]):int(table["page_base"][row]) + n]
    touches = held_touches(world, v)
    reads = SourceReads(world, table, row, off, n)
    link = float(table["push_from_s"][row])  # the link is free from here (it may be
    # a little before the tick: the page on the wire at the end of the last one)
    vm_t0 = max(start, float(table["vm_free_s"][row]))
    waited = max(0.0, min(vm_t0, end) - max(start, float(table["resume_s"][row])))
    shift = 0.0  # the vCPU's waits so far this tick
    arrived: list[I64] = []
    fetched: list[int] = []
    last_arrival = link
    i, chunk, done = 0, FIRST_CHUNK, touches.page.size
    arrives_at = np.full(n, np.inf)  # by local page: its arrival in the push looked at
    minor = network = 0
    while i < touches.page.size:
        j = np.arange(i, min(i + chunk, touches.page.size))
        when = vm_t0 + touches.at[j] + shift
        inside = when < end
        if not inside[0]:
            done = i
            break
        j, when = j[inside], when[inside]
        # Pushes that can start before the last of these touches' requests reach the source.
        plist, side = push.next(max(0, int(np.ceil((when[-1] + rtt / 2 - link) / page_s))))
        read_s = reads.of(plist)
        arrival = link + (page_s * np.arange(1, plist.size + 1) if read_s is None
                          else np.cumsum(page_s + read_s))
        x = touches.page[j]
        # When each touched page arrives by the push (inf: not in it): the push's
        # pages are distinct, so their arrivals are scattered by page and looked up
        # (no sort of the push), then cleared.
        arrives_at[plist] = arrival
        came = arrives_at[x]
        arrives_at[plist] = np.inf
        faults = np.flatnonzero(remote[x] & (came > when))
        if faults.size:
            # The request reaches the source half a round trip later; the page on the wire
            # then completes, and the requested page goes next.
            t_fault = float(when[faults[0]])
            sending_from = arrival - (page_s if read_s is None else page_s + read_s)
            went = int(np.searchsorted(sending_from, t_fault + rtt / 2, side="left"))
        else:
            went = int(np.searchsorted(arrival, when[-1], side="right"))
        reads.went(plist[:went], None if read_s is None else read_s[:went])
        push.commit(plist[:went], side[:went] if side.size else side)
        pushed[plist[:went]] = True
        arrived.append(plist[:went])
        if went:
            last_arrival = float(arrival[went - 1])
            link = float(arrival[went - 1])
        ran = x[:faults[0]] if faults.size else x
        first = np.unique(ran[pushed[ran]])
        minor += first.size
        pushed[first] = False
        if not faults.size:
            i = int(j[-1]) + 1
            chunk *= 2
            continue
        f = int(j[faults[0]])
        page = int(touches.page[f])
        network += 1
        if remote[page]:  # not already on its way in the push
            fetched_page = np.array([page], np.int64)
            fetch_read = reads.of(fetched_page)
            reads.went(fetched_page, fetch_read)
            link = max(link, t_fault + rtt / 2) + page_s + (
                0.0 if fetch_read is None else float(fetch_read[0]))
            last_arrival = link
            remote[page] = False
            fetched.append(page)
            ready = link
        else:
            ready = float(came[faults[0]])
            pushed[page] = False
        push.pivot(page)
        resume = max(ready + rtt / 2, t_fault + rtt + page_s)
        waited += min(resume, end) - t_fault
        shift += resume - t_fault
        table["vm_free_s"][row] = resume
        i, chunk = f + 1, FIRST_CHUNK
    # The rest of the tick the link pushes; a page still on the wire at the end is
    # counted when it arrives, next tick (the link goes on from the last arrival).
    plist, side = push.next(max(0, int((end - link) / page_s + 1e-9)))
    read_s = reads.of(plist)
    if read_s is not None:  # reads back from swap: fewer fit
        arrival = link + np.cumsum(page_s + read_s)
        went = int(np.searchsorted(arrival, end + 1e-9 * page_s, side="right"))
        plist, side, read_s = plist[:went], side[:went] if side.size else side, read_s[:went]
        reads.went(plist, read_s)
        if went:
            last_arrival = link = float(arrival[went - 1])
    push.commit(plist, side)
    pushed[plist] = True
    arrived.append(plist)
    if read_s is None:
        if plist.size:
            last_arrival = link + plist.size * page_s
        link += plist.size * page_s
    table["push_from_s"][row] = link
    got = np.concatenate([*arrived, np.array(fetched, np.int64)]) + off
    pull(state, table, row, got)
    n_push = int(sum(a.size for a in arrived))
    table["pushed_pages"][row] += n_push
    table["network_faults"][row] += network
    table["minor_faults"][row] += minor
    table["pages_sent"][row] += n_push + len(fetched)
    table["bytes_sent"][row] += (n_push + len(fetched)) * bytes_each
    table["stall_s"][row] += waited
    table["swap_read_pages"][row] += reads.pages
    table["swap_read_s"][row] += reads.seconds
    vms["lost_postcopy_s_tick"][v] += waited
    _run(world, v, touches, done, off)
    if not remote.any():
        finish_postcopy(world, table, row, max(last_arrival, start))


def _run(world: World, v: int, touches: Touches, done: int, off: int) -> None:
    """The touches the vCPU got to this tick run now (their pages are all here)."""
    state = world.state
    vms = state.vms
    n_vms = len(vms)
    for kind in np.unique(touches.kind[:done]).tolist():
        mine = touches.kind[:done] == kind
        write = touches.write[:done][mine]
        pages = touches.page[:done][mine] + off
        reads, writes = pages[~write], pages[write]
        r_count = np.bincount(np.full(reads.size, v), minlength=n_vms)
        w_count = np.bincount(np.full(writes.size, v), minlength=n_vms)
        result = apply_touches(state, reads, writes, touches.content[:done][mine][write],
                               r_count, w_count, kind=int(kind), hold_postcopy=False)
        vms["reads"] += result.served_reads
        vms["writes"] += result.served_writes
        vms["stalled_ops"] += result.stalled
        vms["stalled_ops_tick"] += result.stalled
        vms["ops_tick"] += result.served_reads + result.served_writes + result.stalled


def postcopy_tick(world: World, table: MigrationTable) -> None:
    for row in table.active_rows(POSTCOPY).tolist():
        serve(world, table, row)
