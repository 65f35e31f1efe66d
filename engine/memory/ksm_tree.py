"""The unstable-tree search of ksm._unstable_pass's groups (the array passes KSM runs
without numba; compiled, memory/ksm_pass.py searches page after page instead).

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

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from engine.memory import share_ops
from engine.state import I64, U64, Bool, Loc, State

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


def search(state: State, tree_slot: I64, tree_vals: U32, g_keys: U64, g_host: I64,
           g_content: U64, single_page: I64, chain_at: I64) -> Search:
    """`tree_slot`: each group's slot in its host's tree (RegionMap.locate_in), -1 absent;
    `single_page`: the group's one page left, -1 for a group with more."""
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
