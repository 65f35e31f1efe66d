"""Coarse simulated pages: the engine may simulate pages larger than 4 KiB (a scenario's
`page_size`, up to 2 MiB for a data center of 100,000 VMs) and every byte figure stays
right, because what the papers and the tools give per page is read per 4 KiB page:

- scan rates (ESX pages/s, KSM pages_to_scan), balloon rates (pages/s), Xen's stop rule
  (`xen_min_pages`): so many 4 KiB pages' worth of bytes per simulated page of the
  scenario, e.g. ESX's 50 pages/s per VM is 200 KB/s, 0.1 pages/s at 2 MiB;
- per-page costs that grow with the page: a QEMU page header per 4 KiB on the wire, a
  copy-on-write copy, a decompression.

What stays per simulated page: a workload's touches (reads and writes per second: each
touches one simulated page, so a coarse page counts as touched when any of its bytes is,
as a huge page would), the 100 pages the active-memory sample looks at, and counts of
faults (swap-ins, traps) whose time is a latency, not bytes.
"""

from __future__ import annotations

REFERENCE_PAGE_BYTES = 4096


def fine_pages(page_size: int) -> float:
    """4 KiB pages in one simulated page."""
    return page_size / REFERENCE_PAGE_BYTES


def per_simulated_page(count_of_4k_pages: float, page_size: int) -> float:
    """A count or rate given in 4 KiB pages, in simulated pages."""
    return count_of_4k_pages * REFERENCE_PAGE_BYTES / page_size
