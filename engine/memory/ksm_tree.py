"""The unstable-tree search of ksm._unstable_pass's groups, as numpy passes or a compiled
loop (engine/kernels.py); the two agree bit for bit.

Each group (one key on one host) with pages left after its stable-tree search looks its
key up in the host's unstable tree. The entry found is a partner only if it is still a
valid one: a private page on the host, of the group's content and so of its key (ksmd
compares the pages). Most groups have one page left, and that one page's outcome follows
at once: if it is the partner itself (rescanned) it is only that; else it is one tree
search, and with a partner the two make a new KSM page at the chain's free index, without
one the page goes into the tree. The groups with more pages go on in ksm._unstable_pass's
rounds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from engine import kernels
from engine.kernels import Kernel
from engine.memory import share_ops
from engine.memory.ksm_front import _G0, _M1, _M2, _S27, _S30, _S31, _TWO  # splitmix64's
from engine.state import I64, U64, WORD_SHIFT, Bool, Loc, State

U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]


class Search(NamedTuple):
    """Per group: whether its key had an entry in the tree, the valid partner (-1: none),
    whether that partner is still unmerged, whether the partner was rescanned in this pass
    (it is then the partner only), whether the partner merged, and the page left for the
    tree (-1: none); the chain's free index after the one-page groups' new KSM pages; the
    tree searches per host; the one-page groups that made a new KSM page (ascending), the
    chain index each took and the page that joined its partner."""

    found: Bool
    partner: I64
    has_partner: Bool
    rescanned: Bool
    consumed: Bool
    lone_page: I64
    chain_at: I64
    searches: I64
    paired: I64
    paired_index: I64
    paired_joiner: I64


def search(state: State, tree_slot: I64, tree_vals: U32, g_keys: U64, g_host: I64,
           g_content: U64, single_page: I64, chain_at: I64) -> Search:
    """`tree_slot`: each group's slot in its host's tree (RegionMap.locate_in), -1 absent;
    `single_page`: the group's one page left, -1 for a group with more."""
    if kernels.compiled():
        return _search_compiled(state, tree_slot, tree_vals, g_keys, g_host, g_content,
                                single_page, chain_at)
    return _search_numpy(state, tree_slot, tree_vals, g_keys, g_host, g_content,
                         single_page, chain_at)


def _partner(state: State, g_host: I64, g_keys: U64, g_content: U64, found: Bool,
             q: I64) -> Bool:
    """Whether each group's unstable-tree entry is a valid partner: still private, on the
    host, of the same content (ksmd compares the pages) and so the same key."""
    p = state.pages
    ok = np.zeros(found.size, np.bool_)
    look = np.flatnonzero(found)  # only the entries found are checked (a minority)
    q = q[look]
    q = np.where(q < len(p), q, 0)
    q_vm = state.vms.vm_of_pages(q)
    ok[look] = ((p.at("location", q) == Loc.PRIVATE) & (p.content[q] == g_content[look])
                & (state.vms["host"][q_vm] == g_host[look])
                & (share_ops.sharing_keys(state, q, q_vm) == g_keys[look]))
    return ok


def _search_numpy(state: State, tree_slot: I64, tree_vals: U32, g_keys: U64, g_host: I64,
                  g_content: U64, single_page: I64, chain_at: I64) -> Search:
    n = tree_slot.size
    found = tree_slot >= 0
    at = np.flatnonzero(found)  # read only the slots found
    q = np.zeros(n, np.int64)
    q[at] = np.take(tree_vals, np.take(tree_slot, at))
    ok = _partner(state, g_host, g_keys, g_content, found, q)
    partner = np.where(ok, q, -1)
    has_partner = partner >= 0
    chain_at = chain_at.copy()
    rescanned = np.zeros(n, np.bool_)
    consumed = np.zeros(n, np.bool_)
    lone_page = np.full(n, -1, np.int64)
    s = np.flatnonzero(single_page >= 0)
    page_s = single_page[s]
    dup_s = has_partner[s] & (page_s == partner[s])
    rescanned[s[dup_s]] = True
    s, page_s = s[~dup_s], page_s[~dup_s]
    searches = np.bincount(g_host[s], minlength=len(state.hosts)).astype(np.int64)
    paired = has_partner[s]
    sp = s[paired]
    index = chain_at[sp].copy()
    consumed[sp] = True
    has_partner[sp] = False
    chain_at[sp] += 1
    lone_page[s[~paired]] = page_s[~paired]
    return Search(found, partner, has_partner, rescanned, consumed, lone_page, chain_at,
                  searches, sp, index, page_s[paired])


def _search_compiled(state: State, tree_slot: I64, tree_vals: U32, g_keys: U64, g_host: I64,
                     g_content: U64, single_page: I64, chain_at: I64) -> Search:
    n, p = tree_slot.size, state.pages
    vms = state.vms
    found, has_partner, rescanned, consumed = (np.empty(n, np.bool_) for _ in range(4))
    partner, lone_page = np.empty(n, np.int64), np.empty(n, np.int64)
    chain_at = np.array(chain_at, np.int64)
    searches = np.zeros(len(state.hosts), np.int64)
    paired = np.empty(n, np.int64)
    paired_index = np.empty(n, np.int64)
    paired_joiner = np.empty(n, np.int64)
    k = _SEARCH(np.asarray(tree_slot, np.int64), tree_vals, g_keys,
                np.asarray(g_host, np.int64), g_content, np.asarray(single_page, np.int64),
                p.word, p.content, np.asarray(vms["page_offset"], np.int64),
                np.asarray(vms["host"], np.int64), share_ops.vm_mix(state),
                int(Loc.PRIVATE), found, partner, has_partner, rescanned, consumed,
                lone_page, chain_at, searches, paired, paired_index, paired_joiner)
    return Search(found, partner, has_partner, rescanned, consumed, lone_page, chain_at,
                  searches, paired[:k], paired_index[:k], paired_joiner[:k])


_LOC_SHIFT = np.uint16(WORD_SHIFT["location"])


def _search_loop(tree_slot: I64, tree_vals: U32, g_keys: U64, g_host: I64, g_content: U64,
                 single_page: I64, word: U16, content: U64, vm_offset: I64, vm_host: I64,
                 mix: U64, private: int, found: Bool, partner: I64, has_partner: Bool,
                 rescanned: Bool, consumed: Bool, lone_page: I64, chain_at: I64,
                 searches: I64, paired: I64, paired_index: I64, paired_joiner: I64) -> int:
    """_search_numpy group after group; returns how many one-page groups paired. A page's
    VM is the last whose first page is at or before it (vm_of_pages), its key
    share_ops.sharing_keys (splitmix64 of its content and its VM's mix, then fix_key)."""
    n_pages = content.size
    k = 0
    for i in range(tree_slot.size):
        slot = tree_slot[i]
        found[i] = slot >= 0
        mate = np.int64(-1)
        if slot >= 0:
            q = np.int64(tree_vals[slot])
            at = q if q < n_pages else np.int64(0)
            c = content[at]
            if (((word[at] >> _LOC_SHIFT) & 0xFF) == private and c == g_content[i]):
                vm = np.searchsorted(vm_offset, at, side="right") - 1
                if vm_host[vm] == g_host[i]:
                    z = (c ^ mix[vm]) + _G0
                    z = (z ^ (z >> _S30)) * _M1
                    z = (z ^ (z >> _S27)) * _M2
                    z = z ^ (z >> _S31)
                    if z < _TWO:
                        z += _TWO
                    if z == g_keys[i]:
                        mate = q
        partner[i] = mate
        has_partner[i] = mate >= 0
        rescanned[i] = False
        consumed[i] = False
        lone_page[i] = -1
        page = single_page[i]
        if page < 0:
            continue
        if mate >= 0 and page == mate:
            rescanned[i] = True
            continue
        searches[g_host[i]] += 1
        if mate >= 0:
            paired[k], paired_index[k], paired_joiner[k] = i, chain_at[i], page
            k += 1
            consumed[i] = True
            has_partner[i] = False
            chain_at[i] += 1
        else:
            lone_page[i] = page
    return k


def _search_samples() -> list[tuple[Any, ...]]:
    none, u64, flags = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.bool_)
    return [(none, np.zeros(1, np.uint32), u64, none, u64, none, np.zeros(1, np.uint16),
             np.zeros(1, np.uint64), np.zeros(1, np.int64), np.zeros(1, np.int64),
             np.zeros(1, np.uint64), int(Loc.PRIVATE), flags, none, flags, flags, flags, none,
             none, np.zeros(1, np.int64), none, none, none)]


_SEARCH = Kernel(_search_loop, _search_samples)
