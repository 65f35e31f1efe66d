"""What ESX sharing and KSM have in common: content keys and remapping pages onto frames.

A page's sharing key hashes its content with its salt and its host, so pages share only
with equal content, equal salt (see policy.sharing.share_force_salting) and on one host.
Keys are hashes: every match is confirmed by a full compare of the content (as ESX does),
so a hash collision costs a compare, never a wrong mapping.
"""

from __future__ import annotations

import numpy as np

from engine import kernels
from engine.arrays import runs
from engine.hashing import splitmix64
from engine.hashtable import fix_key
from engine.memory import share_loop
from engine.sort_loop import sorted_ints
from engine.state import I64, U64, Bool, Loc, State

_HOST_SALT = np.uint64(0xD1B54A32D192ED03)


def salt_keys(state: State, vm: I64) -> U64:
    level = state.sharing.salting
    if level == 0:
        return np.zeros(vm.size, np.uint64)
    column = "salt_tenant_key" if level == 1 else "salt_own_key"
    return np.asarray(state.vms[column][vm], np.uint64)


def vm_mix(state: State) -> U64:
    """Each VM's part of its pages' keys (salt and host): hashed once per VM, not per page."""
    vm = np.arange(len(state.vms))
    host = state.vms["host"].astype(np.uint64)
    with np.errstate(over="ignore"):
        return splitmix64(salt_keys(state, vm) ^ ((host + np.uint64(1)) * _HOST_SALT))


def sharing_keys(state: State, pages: I64, vm: I64, mix: U64 | None = None) -> U64:
    """`mix`: vm_mix(state), when the caller has it already."""
    return content_keys(state, state.pages.content[pages], vm, mix)


def content_keys(state: State, content: U64, vm: I64, mix: U64 | None = None) -> U64:
    """sharing_keys of pages whose content the caller has read already."""
    per_vm = vm_mix(state) if mix is None else mix
    return fix_key(splitmix64(content ^ per_vm[vm]))


CHAIN_MIX = np.uint64(0x632BE59BD9B4E019)  # a chain index's part of its key


def chain_key(keys: U64, index: int | I64) -> U64:
    """Key of the index-th duplicate shared frame for the same content (KSM chains)."""
    idx = np.asarray(index, np.uint64)
    with np.errstate(over="ignore"):
        chained = fix_key(splitmix64(keys ^ (idx * CHAIN_MIX)))
    return np.where(idx == 0, keys, chained)


def host_of_vms(state: State, vm: I64) -> I64:
    return np.asarray(state.vms["host"][vm], np.int64)


def _count_move(state: State, vm: I64, old: int, new: int) -> None:
    counts = np.bincount(vm, minlength=len(state.vms))
    state.vms["loc_count"][:, old] -= counts
    state.vms["loc_count"][:, new] += counts


def _made_shared(state: State, moved: I64, zero: I64) -> None:
    """Per VM, `moved` pages went from private to shared, `zero` of them zero pages."""
    vms = state.vms
    vms["loc_count"][:, Loc.PRIVATE] -= moved
    vms["loc_count"][:, Loc.SHARED] += moved
    vms["zero_shared"] += zero


def promote(state: State, pages: I64, keys: U64) -> None:
    """Turn the private frames of `pages` into shared (copy-on-write) frames."""
    if pages.size == 0:
        return
    p, vms = state.pages, state.vms
    vm = vms.vm_of_pages(pages)
    if kernels.compiled():  # each page read and written once (share_loop.py)
        frames, moved, zero = share_loop.remap(state, pages, vm, None, False)
        state.sharing.frame_keys.set(frames, keys)
        _made_shared(state, moved, zero)
    else:
        p.location[pages] = Loc.SHARED
        state.sharing.frame_keys.set(p.frame[pages], keys)
        _count_move(state, vm, Loc.PRIVATE, Loc.SHARED)
        vms["zero_shared"] += np.bincount(vm[p.content[pages] == 0], minlength=len(vms))
    state.sharing.hosts["shared_frames"] += np.bincount(
        host_of_vms(state, vm), minlength=len(state.hosts))


def merge(state: State, pages: I64, frames: I64, counted: bool = False) -> None:
    """Map private `pages` onto existing shared `frames` (one each), freeing their own.
    `counted`: the frames' new references are in their refcounts already (the compiled KSM
    pass, memory/ksm_pass.py, counts them as it goes: a later page sees the room left)."""
    if pages.size == 0:
        return
    from engine.memory.frames import release  # frames imports this module's users

    p, vms = state.pages, state.vms
    vm = vms.vm_of_pages(pages)
    if kernels.compiled():  # each page read and written once (share_loop.py)
        old, moved, zero = share_loop.remap(state, pages, vm, frames, not counted)
        release(state, old)
        _made_shared(state, moved, zero)
        return
    old = np.take(p.frame, pages)
    p.frame[pages] = frames
    p.location[pages] = Loc.SHARED
    if not counted:
        distinct, _, counts = runs(sorted_ints(frames))
        state.frames.refcount[distinct] += counts.astype(np.int32)
    release(state, old)
    _count_move(state, vm, Loc.PRIVATE, Loc.SHARED)
    vms["zero_shared"] += np.bincount(vm[p.content[pages] == 0], minlength=len(vms))


def first_of_group(n: int, starts: I64) -> Bool:
    first = np.zeros(n, np.bool_)
    first[starts] = True
    return first
