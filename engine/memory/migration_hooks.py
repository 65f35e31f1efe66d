"""What memory bookkeeping a live migration needs, in one place the migration code calls.

- `migration_started`: the reservation stage reserves the VM's overhead frames at the
  destination (memory/overhead.py).
- `vm_moved`: at switch-over (pre-copy commit, or post-copy resume) the reservation becomes
  the VM's overhead and the source's overhead frames go back; the source's KSM forgets the
  VM's pages (its rmap_items go with the VM's memory).
- `migration_abandoned`: a failed or cancelled pre-copy leaves the VM at the source; the
  reservation goes back.
"""

from __future__ import annotations

from engine.memory import ksm, overhead
from engine.state import State


def migration_started(state: State, v: int, dst: int, backed: bool) -> None:
    overhead.reserve(state, v, dst, backed)


def vm_moved(state: State, v: int, src: int) -> None:
    overhead.hand_over(state, v)
    off, n = int(state.vms["page_offset"][v]), int(state.vms["n_pages"][v])
    ksm.forget(state, slice(off, off + n), src)


def migration_abandoned(state: State, v: int) -> None:
    overhead.cancel_reservation(state, v)
