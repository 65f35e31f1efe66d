"""Machine frame allocation: per-host free stacks, refcounts.

Allocation pops from the top of a host's segment of `frames.free_stack`; the stack starts
with low-memory frames at the bottom, so high memory is used first and low memory stays
free for 32-bit DMA devices as long as possible.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import runs
from engine.state import I32, I64, Hosts, State


def host_of_frames(hosts: Hosts, frames: I64 | I32) -> I64:
    return np.searchsorted(hosts.frame_offset, frames, side="right").astype(np.int64) - 1


def allocate(state: State, host_of_request: I64) -> I32:
    """One frame per request on the given host; -1 where the host has none free.

    Requests are served in order within each host, so callers decide who goes first by
    how they order the requests. Returned frames have refcount 1.
    """
    hosts, frames = state.hosts, state.frames
    out = np.full(host_of_request.shape[0], -1, np.int32)
    if out.size == 0:
        return out
    order = np.argsort(host_of_request, kind="stable")
    sorted_hosts = host_of_request[order]
    wanted_hosts, starts, counts = runs(sorted_hosts)
    for h, start, need in zip(wanted_hosts.tolist(), starts.tolist(), counts.tolist(),
                              strict=True):
        top = int(hosts.frame_offset[h] + hosts.free_count[h])
        k = min(need, int(hosts.free_count[h]))
        if k == 0:
            continue
        got = frames.free_stack[top - k:top][::-1]
        out[order[start:start + k]] = got
        hosts.free_count[h] -= k
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
    wanted_hosts, starts, counts = runs(owner)
    for h, start, k in zip(wanted_hosts.tolist(), starts.tolist(), counts.tolist(), strict=True):
        top = int(hosts.frame_offset[h] + hosts.free_count[h])
        frames.free_stack[top:top + k] = freed[start:start + k]
        hosts.free_count[h] += k


def initial_free_stack(hosts: Hosts) -> I32:
    """Every frame free; within each host the low frames sit at the bottom of the stack."""
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
