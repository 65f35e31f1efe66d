"""Iterative pre-copy (Clark et al., NSDI'05; Xen's and QEMU's algorithms).

Round 1 sends every page; round i sends the pages dirtied during round i-1, in
pseudo-random order; Xen skips pages dirtied again in the current round (they go in a
later round), QEMU sends the whole snapshot of each pass. Rounds end mid-tick at their
exact time, and the tick's writes are replayed at random times within it, in steps of a
few milliseconds while a round may end inside the tick, so results hardly depend on the
tick length. Xen limits each round's rate dynamically and stops by its four rules; QEMU
iterates at a fixed bandwidth until the remaining bytes fit in the downtime limit,
optionally throttling the guest (auto-converge) and sending re-sent pages as XBZRLE
deltas. Then stop-and-copy: the VM pauses while the last dirty pages and its CPU state
cross, and activates at the destination.
"""

from __future__ import annotations

import numpy as np

from engine.migration.model import Migration, Round
from engine.state import I64, GuestKind, Loc, State
from engine.world import World

_SENT_LOCS = (Loc.PRIVATE, Loc.SHARED, Loc.SWAPPED, Loc.UNTOUCHED)


def vm_slice(state: State, mig: Migration) -> slice:
    off = int(state.vms["page_offset"][mig.vm])
    return slice(off, off + int(state.vms["n_pages"][mig.vm]))


def needs_sending(state: State, mig: Migration, pages: I64) -> np.ndarray:
    """Ballooned pages are not sent, nor guest-free ones when the guest reports them."""
    p = state.pages
    send = p.location[pages] != Loc.BALLOONED
    if mig.free_page_hints:
        send &= p.guest_kind[pages] != GuestKind.FREE
    return np.asarray(send)


def page_costs(world: World, mig: Migration, pages: I64) -> np.ndarray:
    """Bytes on the wire for each page."""
    state, policy = world.state, world.spec.policy.migration
    p = state.pages
    page = state.page_size
    if mig.algorithm == "xen":
        return np.full(pages.size, page, np.float64)
    cost = np.full(pages.size, float(page + policy.page_header))
    cost[p.content[pages] == 0] = policy.zero_page_header
    if mig.xbzrle:
        off = int(state.vms["page_offset"][mig.vm])
        hit = mig.in_cache[pages - off] & mig.at_dest[pages - off] & (p.content[pages] != 0)
        cost[hit] = page * policy.xbzrle_delta_fraction + policy.page_header
    return cost


def _record_sent(world: World, mig: Migration, pages: I64, costs: np.ndarray) -> None:
    state, p = world.state, world.state.pages
    off = int(state.vms["page_offset"][mig.vm])
    idx = pages - off
    zero = p.content[pages] == 0
    if mig.xbzrle and mig.algorithm == "qemu":
        hit = mig.in_cache[idx] & mig.at_dest[idx] & ~zero
        mig.xbzrle_hits += int(hit.sum())
        mig.xbzrle_misses += int((mig.at_dest[idx] & ~hit & ~zero).sum())
        mig.xbzrle_bytes += int(costs[hit].sum())
        mig.in_cache[idx[~zero]] = True
        capacity = world.spec.policy.migration.xbzrle_cache // state.page_size
        cached = np.flatnonzero(mig.in_cache)
        if cached.size > capacity:  # random replacement keeps the cache at its size
            evict = world.streams["migration"].choice(cached, cached.size - capacity,
                                                      replace=False)
            mig.in_cache[evict] = False
    mig.sent_content[idx] = p.content[pages]
    mig.at_dest[idx] = True
    mig.pages_sent += pages.size
    mig.zero_pages += int(zero.sum()) if mig.algorithm == "qemu" else 0
    mig.normal_pages += int((~zero).sum()) if mig.algorithm == "qemu" else pages.size
    mig.bytes_sent += int(costs.sum())
    swapped = pages[p.location[pages] == Loc.SWAPPED]
    if swapped.size:  # read back from the source's swap file before they can be sent
        h = mig.src
        state.reclaim.hosts["disk_busy_s_tick"][h] += (
            swapped.size * state.page_size / state.hosts.swap_disk_bytes_per_s[h])


def start_round(world: World, mig: Migration, at_s: float, pages: I64) -> None:
    rng = world.streams["migration"]
    order = pages[rng.permutation(pages.size)]
    mig.to_send = order[needs_sending(world.state, mig, order)]
    mig.cursor = 0
    mig.rounds.append(Round(index=len(mig.rounds) + 1, start_s=at_s,
                            rate_bytes_per_s=mig.round_rate, pages_to_send=mig.to_send.size))


def take_dirty(state: State, mig: Migration) -> I64:
    """The pages dirtied during the round that ends now; the log starts over."""
    p = state.pages
    sl = vm_slice(state, mig)
    dirty = np.flatnonzero(p.dirty[sl]) + sl.start
    p.dirty[sl] = False
    return np.asarray(dirty, np.int64)


def _stop_rules(world: World, mig: Migration, remaining_pages: int) -> bool:
    policy = world.spec.policy.migration
    state = world.state
    last = mig.rounds[-1]
    memory = int(state.vms["n_pages"][mig.vm]) * state.page_size
    if mig.algorithm == "qemu":
        bandwidth = last.bytes_sent / max(last.duration_s, 1e-9)
        remaining = remaining_pages * (state.page_size + policy.page_header)
        mig.expected_downtime_s = remaining / max(bandwidth, 1.0)
        return remaining <= bandwidth * mig.downtime_limit_s
    if remaining_pages < policy.xen_min_pages or len(mig.rounds) >= policy.xen_max_rounds:
        return True
    if mig.bytes_sent >= policy.xen_max_sent_factor * memory:
        return True
    previous = mig.rounds[-2] if len(mig.rounds) > 1 else None
    at_max = mig.round_rate >= mig.max_rate * (1 - 1e-9)
    return bool(at_max and previous is not None and last.pages_sent > previous.pages_sent)


def _auto_converge(world: World, mig: Migration) -> None:
    policy = world.spec.policy.migration
    last = mig.rounds[-1]
    if last.pages_dirtied * world.state.page_size > 0.5 * max(last.bytes_sent, 1):
        mig.converge_strikes += 1
    else:
        mig.converge_strikes = 0
    if mig.converge_strikes >= 2:
        mig.throttle = (policy.throttle_initial if mig.throttle == 0 else
                        min(policy.throttle_max, mig.throttle + policy.throttle_increment))
        mig.converge_strikes = 0


def _stun(world: World, mig: Migration, dirtied: int, last: Round) -> None:
    """Clark's paravirtual stunning: while a round leaves as many pages dirty as it sent,
    the guest's busiest processes are paused a step further (a quarter of their pace at a
    time): the dirty rate falls below the link, at the cost of the VM's service."""
    if last.pages_sent and dirtied >= last.pages_sent:
        mig.throttle = min(world.spec.policy.migration.throttle_max, mig.throttle + 0.25)


def end_round(world: World, mig: Migration, at_s: float, final: bool = False) -> bool:
    """Close the current round; True when it is time to stop and copy (or, `final`, to
    switch to post-copy after a hybrid's one round)."""
    policy = world.spec.policy.migration
    state = world.state
    dirty = take_dirty(state, mig)
    last = mig.rounds[-1]
    last.duration_s = at_s - last.start_s
    last.pages_dirtied = int(dirty.size)
    mig.dirty_sync_count += 1
    mig.dirty_pages_rate = dirty.size / max(last.duration_s, 1e-9)
    if mig.auto_converge and mig.algorithm == "qemu":
        _auto_converge(world, mig)
    if mig.stun:
        _stun(world, mig, dirty.size, last)
    remaining = int(needs_sending(state, mig, dirty).sum())
    stop = final or _stop_rules(world, mig, remaining)
    if stop:  # what is left goes in the stop-and-copy, which is not a round
        mig.to_send = dirty[needs_sending(state, mig, dirty)]
        mig.cursor = 0
        return True
    if mig.algorithm == "xen":
        dirty_rate = dirty.size * state.page_size / max(last.duration_s, 1e-9)
        mig.round_rate = float(np.clip(dirty_rate + policy.xen_rate_increment,
                                       mig.min_rate, mig.max_rate))
    start_round(world, mig, at_s, dirty)
    return False


def send_for(world: World, mig: Migration, rate: float, seconds: float) -> float:
    """Send from the current round for up to `seconds` at `rate`; returns the time used
    (less than `seconds` when the round's list runs out)."""
    p = world.state.pages
    if rate <= 0 or seconds <= 0:
        return 0.0
    budget = rate * seconds
    used = 0.0
    last = mig.rounds[-1]
    while mig.cursor < mig.to_send.size and budget - used > 1e-6:
        chunk = mig.to_send[mig.cursor:mig.cursor + max(64, int((budget - used) / 512) + 64)]
        # Xen peeks at the dirty log and leaves pages dirtied again for a later round;
        # QEMU sends everything in the pass's snapshot.
        skip = p.dirty[chunk] if mig.algorithm == "xen" else np.zeros(chunk.size, np.bool_)
        send = chunk[~skip]
        costs = page_costs(world, mig, send)
        cum = np.cumsum(costs)
        fit = int(np.searchsorted(cum, budget - used, side="right"))
        if fit < send.size:  # the tick's bytes run out inside this chunk
            through = np.flatnonzero(~skip)[fit] if fit < send.size else chunk.size
            sent, skipped = send[:fit], int(skip[:through].sum())
            _record_sent(world, mig, sent, costs[:fit])
            last.pages_sent += fit
            last.pages_skipped += skipped
            last.bytes_sent += int(costs[:fit].sum())
            mig.cursor += int(through)
            return seconds
        _record_sent(world, mig, send, costs)
        last.pages_sent += send.size
        last.pages_skipped += int(skip.sum())
        last.bytes_sent += int(cum[-1]) if cum.size else 0
        used += float(cum[-1]) if cum.size else 0.0
        mig.cursor += chunk.size
    return used / rate
