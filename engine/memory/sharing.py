"""ESX content-based page sharing (Waldspurger, OSDI'02, section 4).

A scanner picks guest pages at random, at a capped rate per VM and per host, hashes each
and looks the hash up in one table: a match with a shared frame (confirmed by a full
compare) remaps the page onto it copy-on-write; a match with a hint (an unshared page
recorded earlier) rehashes the hinted page: still the same content, both pages move into a
new shared frame; changed, the stale hint is dropped. No match records the page as a hint,
not write-protected. Pages scanned in the same tick with equal keys share with each other
just as they would one after the other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine import kernels, parallel
from engine.arrays import group_by_key, unique_sorted
from engine.hashtable import HintTable
from engine.memory import esx_pass, share_ops
from engine.memory.share_ops import host_of_vms
from engine.pagescale import per_simulated_page
from engine.spec import SharingPolicy
from engine.state import I64, Bool, Loc, State
from engine.world import World

ESX = 1


def scan_budget(state: State, policy: SharingPolicy, mode: int) -> I64:
    """Pages each VM scans this tick: rates accumulate as credit, whole pages are spent."""
    vms, hosts = state.vms, state.hosts
    host = vms["host"]
    safe_host = np.maximum(host, 0)
    on = (host >= 0) & hosts.up[safe_host] & (state.sharing.hosts["mode"][safe_host] == mode)
    n_on_host = np.bincount(safe_host[on], minlength=len(hosts))
    if policy.scan == "rate":
        # ESX's rates count 4 KiB pages: the same bytes per second at any page size.
        per_vm = per_simulated_page(policy.pages_per_s_per_vm, state.page_size)
        per_host = per_simulated_page(policy.pages_per_s_per_host, state.page_size)
        rate = np.minimum(per_vm, per_host / np.maximum(n_on_host[safe_host], 1))
    else:
        rate = vms["n_pages"] / max(policy.whole_vm_period, 1e-9)
        ghz = np.array([h.cpu_ghz for h in hosts.specs])
        cap = policy.max_scan_per_ghz * ghz / state.page_size
        wanted = np.bincount(safe_host[on], weights=rate[on], minlength=len(hosts))
        rate = rate * np.minimum(1.0, cap / np.maximum(wanted, 1e-9))[safe_host]
    credit = vms["scan_credit"] + np.where(on, rate * state.tick_s, 0.0)
    n: I64 = np.floor(credit).astype(np.int64)
    vms["scan_credit"] = credit - n
    return n


def start_esx(world: World) -> Callable[[], None]:
    """ESX's scan of this tick, begun; returns the call that ends it (idempotent).

    Compiled, the scan's decisions (the budget, the random pages, the two loops of
    memory/esx_pass.py) are made on the helper thread (parallel.beside) while the caller
    runs KSM's hosts, and the call waits for them and makes them in the world: the
    counters, the remaps and the stable table's new entries. Until then the decisions
    write only the hint table, which KSM never reads, and read only what KSM's pass
    leaves as it was for ESX's hosts (esx_pass.decide), so the caller must end the scan
    before KSM writes the stable table, the frames or the counters: then the world is
    the one the scan and KSM's pass make one after the other."""
    state = world.state
    if not kernels.compiled():
        run_esx_now(world)
        return _nothing
    decided: list[esx_pass.Decided] = []

    def decide() -> None:
        with kernels.settled(True):  # as the caller found, on the helper's thread
            cand = _candidates(world)
            if cand.size:
                decided.append(esx_pass.decide(state, cand))

    wait = parallel.beside(decide)

    def finish() -> None:
        wait()
        while decided:
            decided.pop().apply(state)

    return finish


def _nothing() -> None:
    return None


def run_esx_now(world: World) -> None:
    """ESX's scan of this tick, on the calling thread."""
    cand = _candidates(world)
    if cand.size:
        _share(world.state, cand)


def _candidates(world: World) -> I64:
    """The private pages the scan hashes this tick (ascending, distinct): each VM's
    budget of pages drawn at random."""
    state = world.state
    n = scan_budget(state, world.spec.policy.sharing, ESX)
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    vms = state.vms
    local = world.streams["sharing"].random(total) * np.repeat(vms["n_pages"], n)
    pages = np.repeat(vms["page_offset"], n) + local.astype(np.int64)
    return _private(state, pages)


def try_share(state: State, pages: I64) -> Bool:
    """Hash and look up `pages` now; returns, per input page, whether it is now shared.

    Also the share-before-swap hook: reclamation offers its victims here first.
    """
    _scan(state, pages)
    return np.asarray(state.pages.at("location", pages) == Loc.SHARED)


def _scan(state: State, pages: I64) -> None:
    """Hash and look up the private pages among `pages` (duplicates allowed)."""
    cand = _private(state, pages)
    if cand.size:
        _share(state, cand)


def _private(state: State, pages: I64) -> I64:
    """The private pages among `pages`, ascending, distinct."""
    return unique_sorted(pages[state.pages.at("location", pages) == Loc.PRIVATE])


def _share(state: State, cand: I64) -> None:
    if kernels.compiled():  # the same outcome in two loops (memory/esx_pass.py)
        esx_pass.share(state, cand)
        return
    p, sharing = state.pages, state.sharing
    vm = state.vms.vm_of_pages(cand)
    host = host_of_vms(state, vm)
    content = np.take(p.content, cand)
    keys = share_ops.content_keys(state, content, vm)
    n_hosts = len(state.hosts)
    counters = sharing.hosts
    counters["hashed_tick"] += np.bincount(host, minlength=n_hosts)

    found, frame, aux = sharing.stable.get(keys)
    frame_ok = np.where(found, frame, 0)
    lo = state.hosts.frame_offset[host]
    # The frame an entry names is shared under the entry's key (see ksm._Chain.probe).
    valid_s = (found & (aux == content)
               & (state.frames.refcount[frame_ok] > 0)
               & (frame_ok >= lo) & (frame_ok < lo + state.hosts.n_frames[host]))

    hints = sharing.hints
    hint_slot = hints.slot(keys, host)  # reused to record new hints below
    occupied, hinted, hint_tag = hints.read(hint_slot)
    # The table keeps no keys: rehash each hinted page. A hint is alive while its page is
    # still private on this host and unwritten since it was hashed (a write kills it).
    look = np.flatnonzero(~valid_s & occupied)
    qp = hinted[look]
    qp_vm = state.vms.vm_of_pages(qp)
    alive = ((p.at("location", qp) == Loc.PRIVATE)
             & (HintTable.tag_of(p.written_before[qp]) == hint_tag[look])
             & (host_of_vms(state, qp_vm) == host[look]))
    same_key = np.zeros(look.size, np.bool_)
    same_key[alive] = share_ops.sharing_keys(state, qp[alive], qp_vm[alive]) == keys[look[alive]]
    found_h = np.zeros(cand.size, np.bool_)
    found_h[look[same_key]] = True
    q = np.where(found_h, hinted, cand)
    self_hint = found_h & (q == cand)
    # A match is confirmed by a full compare of the two pages (read only where one is due).
    valid_h = np.zeros(cand.size, np.bool_)
    compare = np.flatnonzero(found_h & ~self_hint)
    valid_h[compare] = p.content[q[compare]] == content[compare]
    counters["hint_misses"] += np.bincount(host[~valid_s & ~occupied], minlength=n_hosts)
    counters["hint_stale"] += np.bincount(host[look[~alive]], minlength=n_hosts)
    counters["compares_tick"] += np.bincount(host[np.flatnonzero(found | found_h)],
                                             minlength=n_hosts)

    order, starts, lengths = group_by_key(keys)
    first = order[starts]
    group = np.repeat(np.arange(starts.size), lengths)
    g_stable = valid_s[first]
    g_hint = ~g_stable & (np.add.reduceat(valid_h[order], starts) > 0)
    g_new = ~g_stable & ~g_hint & (lengths >= 2)
    g_single = ~g_stable & ~g_hint & (lengths == 1)
    g_q = q[first]

    # Anchors: the frame every member of a sharing group ends up on.
    anchor_page = np.where(g_hint, g_q, cand[first])
    promote = g_hint | g_new
    share_ops.promote(state, anchor_page[promote], keys[first][promote])
    # Only joined groups use their anchor frame: the frame table is read for new anchors.
    anchor_frame = frame[first].astype(np.int64)
    new_anchor = np.flatnonzero(promote)
    anchor_frame[new_anchor] = p.frame[anchor_page[new_anchor]]

    members = cand[order]
    # Every member joins a stable frame; with a new frame, its anchor page already holds it.
    joins = g_stable[group] | ((g_hint | g_new)[group] & (members != anchor_page[group]))
    share_ops.merge(state, members[joins], anchor_frame[group][joins])

    sharing.stable.put(keys[first][promote], anchor_frame[promote], content[first][promote])
    # A hint that was used, or whose key now has a shared frame, leaves the table.
    used_hint = g_hint & found_h[first]
    counters["hint_hits"] += np.bincount(host[first][used_hint], minlength=n_hosts)
    gone = (g_hint | g_new) & found_h[first]
    hints.clear(hint_slot[first][gone])
    counters["hint_count"] -= np.bincount(host[first][gone], minlength=n_hosts)
    # The page scanned now takes its key's slot: over a dead hint, over another key's live
    # hint (a collision: that one is forgotten), or into an empty slot.
    fresh = g_single & ~self_hint[first]
    slot = hint_slot[first][fresh]
    was, _, _ = hints.read(slot)
    overwritten = unique_sorted(slot[was & ~found_h[first][fresh]])
    hints.write(slot, cand[first][fresh], p.written_before[cand[first][fresh]])
    filled = unique_sorted(slot[~was])
    counters["hint_count"] += np.bincount(hints.host_of(filled), minlength=n_hosts)
    counters["hint_overwrites"] += np.bincount(hints.host_of(overwritten), minlength=n_hosts)


def hint_table_report(state: State, h: int) -> dict[str, int]:
    """The ESX hint table of host h: its fixed size and what became of lookups."""
    counters = state.sharing.hosts
    return {"slots": int(state.sharing.hints.size[h]),
            "hints": int(counters["hint_count"][h]),
            "hits": int(counters["hint_hits"][h]),
            "stale": int(counters["hint_stale"][h]),
            "misses": int(counters["hint_misses"][h]),
            "overwrites": int(counters["hint_overwrites"][h])}
