"""A migration's reads of the pages its source swapped out.

Such a page is on the source's swap disk, not in memory: before the sender can put it on
the wire it must be read back, and the sender waits for it - QEMU's migration thread
faults on the page (ram.c reads it to test for zeros, then sends it), Xen's sender maps
it, the post-copy source reads it for the push or the fault. So each swapped page costs
the migration the disk's time as well as the wire's, one page after the other.

What a read costs: the page's transfer, page / swap_disk, always; and the disk's latency
(swap_latency) when the read starts a cluster. Linux reads swap ahead (page-cluster 3:
the 8 pages of an aligned cluster together), so a sender walking memory in address order
waits once per cluster: a swapped page starts one unless the entry sent just before it
was a swapped page of the same aligned cluster of SWAP_CLUSTER_PAGES 4 KiB pages. A
simulated page coarser than a cluster waits once for each cluster it spans.

The reads keep the source's disk busy (page / swap_disk each, as a guest's swap-in
does: reclaim's disk_busy_s_tick); they do not wait behind what else the disk has queued.
"""

from __future__ import annotations

import numpy as np

from engine.migration.arena import I64
from engine.pagescale import fine_pages
from engine.state import State

F64 = np.ndarray
SWAP_CLUSTER_PAGES = 8  # 4 KiB pages Linux reads from swap at once (page-cluster 3)


def cluster_pages(page_size: int) -> int:
    """Simulated pages in one aligned read-ahead cluster (1 for pages of a cluster or
    coarser: each then starts its own)."""
    return max(1, int(SWAP_CLUSTER_PAGES // fine_pages(page_size)))


def start_latency_s(state: State) -> F64:
    """Per host, the latency a read pays when it starts a cluster (a page coarser than a
    cluster pays one for each cluster it spans)."""
    spans = max(1.0, fine_pages(state.page_size) / SWAP_CLUSTER_PAGES)
    latency: F64 = state.hosts.swap_latency_s * spans
    return latency


def read_seconds(state: State, src: I64, starts: np.ndarray) -> F64:
    """Seconds to read one page each from the swap disk of hosts `src`, `starts` where
    the read starts a read-ahead cluster (the compiled Xen loop does the same sums)."""
    read: F64 = state.page_size / state.hosts.swap_disk_bytes_per_s[src]
    read += np.where(starts, start_latency_s(state)[src], 0.0)
    return read


def starts_cluster(page_size: int, local: I64, prev_local: I64, prev_read: np.ndarray) -> (
        np.ndarray):
    """Whether each read starts a cluster: unless the entry before it (local index
    `prev_local`) was read from swap too (`prev_read`) and lies in the same cluster."""
    c = cluster_pages(page_size)
    starts: np.ndarray = ~(prev_read & (prev_local // c == local // c))
    return starts
