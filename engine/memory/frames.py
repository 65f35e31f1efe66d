"""Machine frame allocation: per-host free stacks of low and high frames, refcounts.

Each host's segment of `frames.free_stack` holds two stacks: free low frames (below 4 GB,
reachable by 32-bit DMA devices) in its first `low_frames` slots and free high frames in
the rest. Ordinary allocation takes high frames first, so low memory stays free for I/O
remapping as long as possible; `low_only` takes low frames for remapping.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import runs
from engine.state import I32, I64, Hosts, State


def host_of_frames(hosts: Hosts, frames: I64 | I32) -> I64:
    return np.searchsorted(hosts.frame_offset, frames, side="right").astype(np.int64) - 1


def is_low(hosts: Hosts, frames: I64 | I32) -> np.ndarray:
    h = host_of_frames(hosts, frames)
    return np.asarray(frames - hosts.frame_offset[h] < hosts.low_frames[h])


def _pop(state: State, h: int, k: int, low: bool) -> I32:
    hosts, stack = state.hosts, state.frames.free_stack
    off = int(hosts.frame_offset[h])
    if low:
        top = off + int(hosts.free_low[h])
        hosts.free_low[h] -= k
    else:
        top = off + int(hosts.low_frames[h]) + int(hosts.free_count[h] - hosts.free_low[h])
    hosts.free_count[h] -= k
    return stack[top - k:top][::-1].copy()


def allocate(state: State, host_of_request: I64, low_only: bool = False) -> I32:
    """One frame per request on the given host; -1 where the host has none free.

    Requests are served in order within each host, so callers decide who goes first by
    how they order the requests. Returned frames have refcount 1.
    """
    hosts, frames = state.hosts, state.frames
    out = np.full(host_of_request.shape[0], -1, np.int32)
    if out.size == 0:
        return out
    order = np.argsort(host_of_request, kind="stable")
    wanted_hosts, starts, counts = runs(host_of_request[order])
    for h, start, need in zip(wanted_hosts.tolist(), starts.tolist(), counts.tolist(),
                              strict=True):
        free_high = 0 if low_only else int(hosts.free_count[h] - hosts.free_low[h])
        k_high = min(need, free_high)
        k_low = min(need - k_high, int(hosts.free_low[h]))
        if k_low == 0:
            got = _pop(state, h, k_high, low=False)
        else:
            got = np.concatenate([_pop(state, h, k_high, low=False),
                                  _pop(state, h, k_low, low=True)])
        out[order[start:start + got.size]] = got
    served = out[out >= 0]
    frames.refcount[served] = 1
    return out


def release(state: State, frames_to_drop: I32 | I64) -> None:
    """Drop one reference per entry (duplicates allowed); frames reaching 0 become free."""
    if frames_to_drop.size == 0:
        return
    hosts, frames = state.hosts, state.frames
    uniq, _, counts = runs(np.sort(frames_to_drop))
    frames.refcount[uniq] -= counts.astype(np.int32)
    freed = uniq[frames.refcount[uniq] == 0]
    if freed.size == 0:
        return
    _forget_shared(state, freed)
    owner = host_of_frames(hosts, freed)  # sorted, since freed is
    low = freed - hosts.frame_offset[owner] < hosts.low_frames[owner]
    wanted_hosts, starts, counts = runs(owner)
    stack = frames.free_stack
    for h, start, k in zip(wanted_hosts.tolist(), starts.tolist(), counts.tolist(), strict=True):
        mine, mine_low = freed[start:start + k], low[start:start + k]
        off = int(hosts.frame_offset[h])
        n_low = int(mine_low.sum())
        top_low = off + int(hosts.free_low[h])
        stack[top_low:top_low + n_low] = mine[mine_low]
        top_high = off + int(hosts.low_frames[h]) + int(hosts.free_count[h] - hosts.free_low[h])
        stack[top_high:top_high + k - n_low] = mine[~mine_low]
        hosts.free_low[h] += n_low
        hosts.free_count[h] += k


def initial_free_stack(hosts: Hosts) -> I32:
    """Every frame free, each in its own stack (low frames come first in a host's range)."""
    total = int(hosts.n_frames.sum())
    return np.arange(total, dtype=np.int32)


def _forget_shared(state: State, freed: I32 | I64) -> None:
    """A shared frame that loses its last page leaves the sharing table with it."""
    sharing = state.sharing
    keys = sharing.frame_key[freed]
    was_shared = keys != 0
    if not was_shared.any():
        return
    gone, keys = freed[was_shared], keys[was_shared]
    found, vals, _ = sharing.stable.get(keys)
    sharing.stable.delete(keys[found & (vals == gone)])
    sharing.frame_key[gone] = 0
    sharing.hosts["shared_frames"] -= np.bincount(host_of_frames(state.hosts, gone),
                                                  minlength=len(state.hosts))
