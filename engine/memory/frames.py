"""Machine frame allocation: per-host free stacks of low and high frames, refcounts.

Each host's segment of the free stack (`Frames`, which stores each slot's frame as an
offset from the slot) holds two stacks: free low frames (below 4 GB,
reachable by 32-bit DMA devices) in its first `low_frames` slots and free high frames in
the rest. Ordinary allocation takes high frames first, so low memory stays free for I/O
remapping as long as possible; `low_only` takes low frames for remapping.
"""

from __future__ import annotations

import numpy as np

from engine import kernels, parallel
from engine.arrays import IntArray, runs
from engine.memory import forget_loop, frame_loops
from engine.sort_loop import sorted_ints
from engine.state import I32, I64, Hosts, State


def host_of_frames(hosts: Hosts, frames: I64 | I32) -> I64:
    return hosts.host_of_frames(frames)


def is_low(hosts: Hosts, frames: I64 | I32) -> np.ndarray:
    h = host_of_frames(hosts, frames)
    return np.asarray(frames - hosts.frame_offset[h] < hosts.low_frames[h])


def _rank_in_runs(starts: IntArray, lengths: IntArray) -> I64:
    """0, 1, 2... within each run of a grouped array (runs given by start and length)."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def _by_host(host_of_request: I64) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(order, hosts, starts, counts): the stable argsort of the requests by host and the
    runs of each host in it.

    Requests mostly come in runs of one host (a VM's pages), so the runs are sorted
    rather than the requests: the same order, from a sort of a few hundred runs.
    """
    n = host_of_request.size
    run_start = np.flatnonzero(np.concatenate(
        [[True], host_of_request[1:] != host_of_request[:-1]]))
    if 4 * run_start.size > n:
        order = np.argsort(host_of_request, kind="stable")
        wanted, starts, counts = runs(host_of_request[order])
        return order, wanted, starts, counts
    run_len = np.diff(np.append(run_start, n))
    by_host = np.argsort(host_of_request[run_start], kind="stable")
    lens = run_len[by_host]
    placed = np.cumsum(lens) - lens  # where each run lands in the sorted order
    order = np.repeat(run_start[by_host] - placed, lens) + np.arange(n, dtype=np.int64)
    run_host = host_of_request[run_start[by_host]]
    wanted, first_run, n_runs = runs(run_host)
    counts = np.add.reduceat(lens, first_run)
    return order, wanted, placed[first_run], counts


def allocate(state: State, host_of_request: I64, low_only: bool = False) -> I32:
    """One frame per request on the given host; -1 where the host has none free.

    Requests are served in order within each host, so callers decide who goes first by
    how they order the requests. Returned frames have refcount 1. A host serves from the
    top of its high stack first, then from the top of its low stack (all hosts at once:
    a per-host loop would cost more than the frames).
    """
    hosts, frames = state.hosts, state.frames
    if kernels.compiled():  # the requests in turn, in one loop (frame_loops.py)
        return frame_loops.allocate(host_of_request, hosts.frame_offset, hosts.low_frames,
                                    hosts.free_low, hosts.free_count,
                                    frames.free_stack_delta, frames.refcount, low_only)
    out = np.full(host_of_request.shape[0], -1, np.int32)
    if out.size == 0:
        return out
    order, wanted, starts, counts = _by_host(host_of_request)
    free_low = hosts.free_low[wanted]
    free_high = hosts.free_count[wanted] - free_low
    k_high = np.zeros_like(counts) if low_only else np.minimum(counts, free_high)
    k_low = np.minimum(counts - k_high, free_low)
    off = hosts.frame_offset[wanted]
    # Request j of the sorted order, of rank j - start in its host, takes high slot
    # top_high - 1 - rank, or past the host's k_high, low slot top_low - 1 - (rank - k_high):
    # both a per-host constant minus j.
    j = np.arange(out.size, dtype=np.int64)
    top_high = off + hosts.low_frames[wanted] + free_high
    slot = np.repeat(top_high - 1 + starts, counts) - j
    hosts.free_count[wanted] -= k_high + k_low
    if (k_high == counts).all():  # every host serves all from its high stack
        out[order] = frames.stack_at(slot)
        frames.refcount[out] = 1
        return out
    hosts.free_low[wanted] -= k_low
    rank = j - np.repeat(starts, counts)
    high = rank < np.repeat(k_high, counts)
    low_slot = np.repeat(off + free_low - 1 + k_high + starts, counts) - j
    np.copyto(slot, low_slot, where=~high)
    if (k_high + k_low == counts).all():  # every request served, some from low memory
        out[order] = frames.stack_at(slot)
        frames.refcount[out] = 1
        return out
    served = np.flatnonzero(rank < np.repeat(k_high + k_low, counts))
    out[np.take(order, served)] = frames.stack_at(np.take(slot, served))
    frames.refcount[np.compress(out >= 0, out)] = 1
    return out


def allocate_on(state: State, host: int, n: int) -> I32:
    """`n` frames on one host: the frames `allocate(np.full(n, host))` gives, taken as two
    reversed slices of its stacks (high, then low) instead of one request per frame."""
    hosts, stack = state.hosts, state.frames
    out = np.full(n, -1, np.int32)
    free_low = int(hosts.free_low[host])
    free_high = int(hosts.free_count[host]) - free_low
    k_high = min(n, free_high)
    k_low = min(n - k_high, free_low)
    top_high = int(hosts.frame_offset[host] + hosts.low_frames[host]) + free_high
    top_low = int(hosts.frame_offset[host]) + free_low
    out[:k_high] = stack.stack_run(top_high - k_high, top_high)[::-1]
    out[k_high:k_high + k_low] = stack.stack_run(top_low - k_low, top_low)[::-1]
    hosts.free_count[host] -= k_high + k_low
    hosts.free_low[host] -= k_low
    state.frames.refcount[out[:k_high + k_low]] = 1
    return out


def allocate_counts(state: State, host_of_group: I64, counts: I64) -> I32:
    """`counts[g]` frames on host `host_of_group[g]` for each group g, concatenated in group
    order; -1 where the host ran out. The same frames as `allocate(np.repeat(host, counts))`
    without sorting one request per frame (power-on asks for whole VMs at a time)."""
    hosts, stack = state.hosts, state.frames
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    out = np.full(total, -1, np.int32)
    if total == 0:
        return out
    # Each group's first rank in its host's allocation sequence: earlier groups go first.
    order = np.argsort(host_of_group, kind="stable")
    wanted, starts, lengths = runs(host_of_group[order])
    before = np.cumsum(counts[order]) - counts[order]
    prior = np.empty_like(counts)
    prior[order] = before - np.repeat(before[starts], lengths)
    group = np.repeat(np.arange(counts.size), counts)
    rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    rank += prior[group]
    h = host_of_group[group]
    free_low = hosts.free_low[h]
    free_high = hosts.free_count[h] - free_low
    off = hosts.frame_offset[h]
    high = rank < free_high
    low = ~high & (rank < free_high + free_low)
    top_high = off + hosts.low_frames[h] + free_high
    out[high] = stack.stack_at((top_high - 1 - rank)[high])
    out[low] = stack.stack_at((off + free_low - 1 - (rank - free_high))[low])
    per_host = np.bincount(host_of_group, weights=counts, minlength=len(hosts)).astype(np.int64)
    high_free = hosts.free_count - hosts.free_low
    k_high = np.minimum(per_host, high_free)
    k_low = np.minimum(per_host - k_high, hosts.free_low)
    hosts.free_count -= k_high + k_low
    hosts.free_low -= k_low
    state.frames.refcount[out[out >= 0]] = 1
    return out


def allocate_blocks(state: State, host_of_group: I64, k: int, out: I32 | None = None) -> I32:
    """`k` frames for each group, as a (groups, k) array: the frames `allocate_counts`
    would give (possibly in another order within a group), for power-on in bulk.

    A group whose frames lie in one stack segment (its host's high or low stack) takes
    them as a contiguous slice of it; a group that spans both, or runs out, takes them
    rank by rank as `allocate_counts` would.
    """
    hosts, delta = state.hosts, state.frames.free_stack_delta
    m = host_of_group.size
    out = np.empty((m, k), np.int32) if out is None else out
    if m == 0 or k == 0:
        return out
    order = np.argsort(host_of_group, kind="stable")
    sorted_hosts = host_of_group[order]
    first = np.searchsorted(sorted_hosts, sorted_hosts, side="left")
    prior = np.empty(m, np.int64)
    prior[order] = (np.arange(m) - first) * k
    h = host_of_group
    free_low = hosts.free_low[h]
    free_high = hosts.free_count[h] - free_low
    top_high = hosts.frame_offset[h] + hosts.low_frames[h] + free_high
    top_low = hosts.frame_offset[h] + free_low
    in_high = prior + k <= free_high
    in_low = (prior >= free_high) & (prior + k <= free_high + free_low)
    start = np.where(in_high, top_high - prior - k, top_low - (prior - free_high) - k)
    simple = in_high | in_low
    # Row by row from stack slices: no temporary the size of the result (a fancy gather
    # would map fresh memory for one at every call). Slot s holds frame s + delta[s].
    within = np.arange(k, dtype=np.int32)
    for row, first_slot in zip(np.flatnonzero(simple).tolist(),
                               start[simple].tolist(), strict=True):
        frames_row = out[row]
        np.add(within, first_slot, out=frames_row)
        frames_row += delta[first_slot:first_slot + k]
    mixed = np.flatnonzero(~simple)
    if mixed.size:  # straddles the two stacks, or short: the general allocator's way
        rank = prior[mixed, None] + np.arange(k)[None, :]
        fh, fl = free_high[mixed, None], free_low[mixed, None]
        idx = np.where(rank < fh, top_high[mixed, None] - 1 - rank,
                       top_low[mixed, None] - 1 - (rank - fh))
        ok = rank < fh + fl
        out[mixed] = np.where(ok, state.frames.stack_at(np.where(ok, idx, 0)), -1)
    per_host = np.bincount(h, minlength=len(hosts)).astype(np.int64) * k
    k_high = np.minimum(per_host, hosts.free_count - hosts.free_low)
    k_low = np.minimum(per_host - k_high, hosts.free_low)
    hosts.free_count -= k_high + k_low
    hosts.free_low -= k_low
    # Fresh memory on a world's first power-on: its page faults are taken on two cores.
    served = out.reshape(-1) if mixed.size == 0 else np.compress((out >= 0).reshape(-1), out)
    parallel.fill(state.frames.refcount, served, 1)
    return out


def release(state: State, frames_to_drop: I32 | I64) -> None:
    """Drop one reference per entry (duplicates allowed); frames reaching 0 become free.

    Freed frames are pushed, in ascending order, onto their host's low or high stack.
    """
    if frames_to_drop.size == 0:
        return
    hosts, frames = state.hosts, state.frames
    if kernels.compiled():  # the same, in one loop (frame_loops.py)
        keyed = frame_loops.release(frames_to_drop, frames.refcount, hosts.frame_offset,
                                    hosts.low_frames, hosts.free_low, hosts.free_count,
                                    frames.free_stack_delta, state.sharing.frame_keys.bits)
        if keyed.size:
            _forget_keyed(state, keyed)
        return

    def distinct_ascending(x: np.ndarray) -> bool:
        return x.size < 2 or bool((x[1:] > x[:-1]).all())

    # A VM's private frames, in page order, are often ascending already: no sort then.
    uniq = frames_to_drop if distinct_ascending(frames_to_drop) else sorted_ints(frames_to_drop)
    if uniq is frames_to_drop or distinct_ascending(uniq):
        left = frames.refcount[uniq] - 1  # one reference each (a VM's private pages)
    else:
        uniq, _, refs = runs(uniq)
        left = frames.refcount[uniq] - refs.astype(np.int32)
    frames.refcount[uniq] = left
    freed = uniq[left == 0]
    if freed.size == 0:
        return
    _forget_shared(state, freed)
    first, last = host_of_frames(hosts, freed[[0, -1]]).tolist()  # sorted, as freed is
    if first == last:
        # One host (a VM's memory): its freed low frames come first, pushed as two slices.
        h = first
        off = int(hosts.frame_offset[h])
        n_low = int(np.searchsorted(freed, off + int(hosts.low_frames[h])))
        free_low = int(hosts.free_low[h])
        top_low = off + free_low
        top_high = off + int(hosts.low_frames[h]) + int(hosts.free_count[h]) - free_low
        frames.put_run(top_low, freed[:n_low])
        frames.put_run(top_high, freed[n_low:])
        hosts.free_low[h] += n_low
        hosts.free_count[h] += freed.size
        return
    owner = host_of_frames(hosts, freed)
    low = freed - hosts.frame_offset[owner] < hosts.low_frames[owner]
    wanted, starts, counts = runs(owner)
    group = np.repeat(np.arange(wanted.size), counts)
    # Rank of each frame among its host's freed low (or high) frames.
    low_before = np.cumsum(low) - low
    rank_low = low_before - low_before[starts][group]
    rank_high = _rank_in_runs(starts, counts) - rank_low
    off = hosts.frame_offset[wanted]
    free_low = hosts.free_low[wanted]
    top_low = (off + free_low)[group]
    top_high = (off + hosts.low_frames[wanted] + hosts.free_count[wanted] - free_low)[group]
    frames.put(np.where(low, top_low + rank_low, top_high + rank_high), freed)
    hosts.free_low[wanted] += np.add.reduceat(low.astype(np.int64), starts)
    hosts.free_count[wanted] += counts


def initial_free_stack(hosts: Hosts) -> I32:
    """Every frame free, each in its own slot (low frames come first in a host's range):
    as `Frames.free_stack_delta` holds them, all zeros."""
    return np.zeros(int(hosts.n_frames.sum()), np.int32)


def _forget_shared(state: State, freed: I32 | I64) -> None:
    """A shared frame that loses its last page leaves the sharing table with it."""
    was_shared = state.sharing.frame_keys.has(freed)
    if was_shared.any():
        _forget_keyed(state, freed[np.flatnonzero(was_shared)])


def _forget_keyed(state: State, gone: I32 | I64) -> None:
    """_forget_shared for freed frames that have a sharing key (ascending)."""
    if kernels.compiled():  # the same, in one loop (forget_loop.py)
        forget_loop.forget(state, gone)
        return
    sharing = state.sharing
    keys = sharing.frame_keys.pop(gone)  # each looked up once, for its key and to clear it
    slot = sharing.stable.find(keys)
    found, vals, _ = sharing.stable.at(slot)
    sharing.stable.delete_found(np.where(found & (vals == gone), slot, -1))
    sharing.hosts["shared_frames"] -= np.bincount(host_of_frames(state.hosts, gone),
                                                  minlength=len(state.hosts))
