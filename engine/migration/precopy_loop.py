"""The steps of every pre-copying migration at once, as compiled loops (engine/kernels.py):
what precopy_tick's steps, xen.peek, qemu.window and send.send do in numpy passes.

A Xen row's step is a peek at its dirty log when a batch starts (the tick's writes made so
far applied to the log, pages of the batch dirtied again skipped) and the send of what
fits its time until its next event (the batch's end, the tick's end or a post-copy
trigger). A QEMU row's step is the send until the end of its bandwidth window (every
`qemu_bandwidth_window`, 0.1 s), then the window's counters. In numpy passes a step is
some hundred calls on arrays of a batch (1,024 pages) or a handful of rows: about 0.3 ms,
five steps a tick while a Xen migration runs and ten while a QEMU one does, where the
pages themselves take microseconds. The loops do the same arithmetic in the same order -
the send's goes over all rows together (the Xen rows', then the QEMU rows'), each go's
guess of how many entries to look at, the budget, carry and times as float64, a go's
swap reads summed per host before they are added, each read's seconds as swapread.py sums
them - so the two give the same world bit for bit (tests/engine/test_kernels.py runs
migrating worlds both ways to the same digest). Events with more to them (a Xen round's
end, a QEMU sync, a switch to post-copy) go back to numpy (precopy.py); so does a QEMU
migration with XBZRLE, whose cache is send.Cost's alone.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import kernels
from engine.kernels import Kernel
from engine.migration.model import QEMU, MigrationTable
from engine.migration.send import qemu_page_bytes
from engine.migration.swapread import cluster_pages, start_latency_s
from engine.migration.writelog import TickWrites
from engine.state import WORD_SHIFT, GuestKind, Loc
from engine.world import World

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


def _search_left(key: F64, value: float) -> int:
    """np.searchsorted(key, value, side="left"), written out: numba's own made the step
    loop's first build 3.3 s instead of 2.3 (measured, 2026-12-06)."""
    lo, hi = 0, key.size
    while lo < hi:
        mid = (lo + hi) // 2
        if key[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _sorted_from(scratch: I64, n: int, lo: int) -> I64:
    """scratch[:n] (values from lo on) sorted ascending, by their bytes above lo from the
    lowest (a counting pass and a placing pass a byte; scratch holds 2n + 256 entries,
    the second n and the counts its room). numpy's sort in a compiled loop makes numba
    compile a sort of its own, some seconds more for the loop's first build."""
    span = 0
    for i in range(n):
        span = max(span, scratch[i] - lo)
    src, dst = scratch[:n], scratch[n:2 * n]
    count = scratch[2 * n:2 * n + 256]
    shift = 0
    while shift == 0 or (span >> shift) > 0:
        for b in range(256):
            count[b] = 0
        for i in range(n):
            count[((src[i] - lo) >> shift) & 255] += 1
        total = 0
        for b in range(256):
            c = count[b]
            count[b] = total
            total += c
        for i in range(n):
            b = ((src[i] - lo) >> shift) & 255
            dst[count[b]] = src[i]
            count[b] += 1
        src, dst = dst, src
        shift += 8
    return src


def _step_loop(rows: I64, peek: Bool, t: F64, rate: F64, until: F64, reached: Bool,
               cursor: I64, batch_end: I64, list_len: I64, list_base: I64, page_base: I64,
               vm_of_row: I64, src: I64, hints: Bool, pml: Bool, carry_bytes: F64,
               pages_sent: I64, bytes_sent: I64, round_sent: I64, round_bytes: I64,
               window_bytes: F64, normal_pages: I64, round_skipped: I64, traps: I64,
               dirty_base: I64, dirty_len: I64, entry: npt.NDArray[np.int32],
               sent: npt.NDArray[np.uint64], at_dest: Bool, dirty_log: npt.NDArray[np.int32],
               w_key: F64, w_pages: I64, w_next: I64, word: npt.NDArray[np.uint16],
               content: npt.NDArray[np.uint64], dirty: Bool, page_offset: I64,
               lost_dirty_log_s: F64, swap_disk_bytes_per_s: F64, disk_busy_s: F64,
               busy_go: F64, start_latency_s: F64, swap_read_pages: I64, swap_read_s: F64,
               scratch: I64, pass_full: Bool, zero_pages: I64, time_s: float,
               tick_s: float, page: int, batch: int, trap_cost: float, pml_per: float,
               loc_shift: int, kind_shift: int, ballooned: int, swapped: int, free: int,
               cluster: int, full_qemu: int, zero_qemu: int, qemu: bool) -> None:
    """The step of each of `rows` (xen.peek where `peek`, then send.send from t at rate
    until `until` or its batch's end): t and `reached` are written for each row. `qemu`:
    the rows are QEMU's (no peek; `batch_end` is then their lists' lengths, a full pass
    walks the pages in address order, and a page costs its header, a zero page only a
    header, as send.Cost has it)."""
    n = rows.size
    any_writes = w_pages.size > 0
    # xen.peek: the log up to now (writelog.apply_until, sync.charge_traps), then the
    # batch's pages dirtied again are skipped.
    for i in range(n):
        if not peek[i]:
            continue
        r = rows[i]
        offset = page_offset[vm_of_row[r]]
        if any_writes:
            frac = (t[i] - time_s) / tick_s
            start = w_next[r]
            stop = max(_search_left(w_key, np.float64(r) + min(frac, 1.0)), start)
            w_next[r] = stop
            fresh = 0
            for j in range(start, stop):
                pg = w_pages[j]
                if not dirty[pg]:
                    dirty[pg] = True
                    scratch[fresh] = pg
                    fresh += 1
            if fresh:
                logged = _sorted_from(scratch, fresh, offset)
                at = dirty_base[r] + dirty_len[r]
                for j in range(fresh):
                    dirty_log[at + j] = logged[j] - offset + 1  # held as page + 1
                dirty_len[r] += fresh
            per = pml_per if pml[r] else 1.0
            lost_dirty_log_s[vm_of_row[r]] += trap_cost * fresh * per
            traps[r] += fresh
        end = min(cursor[r] + batch, list_len[r])
        batch_end[r] = end
        skipped = 0
        for j in range(list_base[r] + cursor[r], list_base[r] + end):
            e = entry[j]
            if e >= 0 and dirty[offset + e]:
                entry[j] = -1
                skipped += 1
        round_skipped[r] += skipped
    # send.send: goes over the rows still going, all together.
    going = np.zeros(n, np.bool_)
    last_avg = np.zeros(n)
    last_count = np.zeros(n, np.int64)
    n_going = 0
    for i in range(n):
        r = rows[i]
        reached[i] = cursor[r] >= batch_end[r]
        if rate[i] <= 0 and not reached[i]:
            t[i] = until[i]
        elif not reached[i] and t[i] < until[i]:
            going[i] = True
            n_going += 1
    first_go = True
    while n_going:
        any_swap = False
        for i in range(n):
            if not going[i]:
                continue
            r = rows[i]
            carry = carry_bytes[r]
            budget = rate[i] * (until[i] - t[i]) + carry
            if first_go:
                avg = bytes_sent[r] / max(pages_sent[r], 1) if pages_sent[r] > 0 else float(page)
            else:
                avg = last_avg[i]
            guess = np.int64(budget / min(max(avg, 1.0), float(page)) * 1.05) + 2
            if not first_go:
                guess = min(guess, 4 * last_count[i] + 64)
            c0 = cursor[r]
            limit = batch_end[r]
            count = min(limit - c0, guess)
            # send._send_some: what fits the budget is a prefix of the entries.
            allowed = np.int64(np.floor(min(budget + 1e-6, 2.0**62)))
            allowed = max(allowed, np.int64(-1))
            offset = page_offset[vm_of_row[r]]
            used = np.int64(0)  # the budget used: bytes, and reads as bytes at the rate
            wire = np.int64(0)
            k = 0
            n_sent = 0
            n_read = 0
            go_read = 0.0
            # swapread.py: a read starts a read-ahead cluster unless the entry before it
            # (for the first, the list's entry before it) was a swapped page of its cluster.
            prev_read = False
            prev_local = np.int64(-1)
            full = qemu and pass_full[r]  # the entries are the pages themselves
            if c0 > 0:
                ep = np.int64(c0 - 1) if full else np.int64(entry[list_base[r] + c0 - 1])
                prev_local = ep
                if ep >= 0:
                    wp = np.int64(word[offset + ep])
                    if ((wp >> loc_shift) & 0xFF) == swapped:
                        prev_read = not hints[r] or ((wp >> kind_shift) & 0xFF) != free
            n_zero = 0
            while k < count:
                e = c0 + k if full else np.int64(entry[list_base[r] + c0 + k])
                local = max(e, 0)
                pg = offset + local
                w = np.int64(word[pg])
                loc = (w >> loc_shift) & 0xFF
                sendable = e >= 0 and loc != ballooned
                if sendable and hints[r]:
                    sendable = ((w >> kind_shift) & 0xFF) != free
                cost = np.int64(0)
                zero = False
                if sendable:
                    if qemu:
                        zero = content[pg] == 0
                        cost = np.int64(zero_qemu) if zero else np.int64(full_qemu)
                    else:
                        cost = np.int64(page)
                page_bytes = cost
                is_read = sendable and loc == swapped
                read = 0.0
                h = src[r]
                if is_read:  # read back from the source's swap file first
                    read = page / swap_disk_bytes_per_s[h]
                    if not (prev_read and prev_local // cluster == local // cluster):
                        read += start_latency_s[h]
                    cost += np.int64(np.ceil(read * rate[i]))
                if used + cost > allowed:
                    break
                used += cost
                prev_read, prev_local = bool(is_read), np.int64(local)
                k += 1
                if sendable:  # send.record
                    wire += page_bytes
                    pb = page_base[r] + local
                    sent[pb] = content[pg]
                    at_dest[pb] = True
                    n_sent += 1
                    if zero:  # QEMU counts zero pages apart
                        n_zero += 1
                    if is_read:
                        busy_go[h] += page / swap_disk_bytes_per_s[h]
                        any_swap = True
                        n_read += 1
                        go_read += read
            pages_sent[r] += n_sent
            round_sent[r] += n_sent
            bytes_sent[r] += wire
            round_bytes[r] += wire
            window_bytes[r] += float(wire)
            zero_pages[r] += n_zero
            normal_pages[r] += n_sent - n_zero
            if n_read:
                swap_read_pages[r] += n_read
                swap_read_s[r] += go_read
            cursor[r] = c0 + k
            whole = k == count
            at_limit = whole and c0 + k >= limit
            used_f = float(used)
            if whole:
                carry_bytes[r] = 0.0
                t[i] = t[i] + max(used_f - carry, 0.0) / rate[i]
            else:  # cut by the deadline: the next page is partly on the wire
                carry_bytes[r] = budget - used_f
                t[i] = until[i]
            if at_limit:
                reached[i] = True
            if whole and not at_limit and t[i] < until[i]:
                last_avg[i] = used_f / max(k, 1)
                last_count[i] = k
            else:
                going[i] = False
                n_going -= 1
        if any_swap:
            for h in range(busy_go.size):
                if busy_go[h] != 0.0:
                    disk_busy_s[h] += busy_go[h]
                    busy_go[h] = 0.0
        first_go = False


def _steps_loop(rows_all: I64, status: I64, clock: F64, rate_all: F64, cap_all: F64,
                round_rate: F64, path_rate: F64, start_s: F64, postcopy_after_s: F64,
                wrap_at: I64, passes: I64, algorithm: I64, window_start_s: F64,
                bandwidth: F64, expected_downtime_s: F64, downtime_limit_s: F64,
                end: float, max_steps: int, precopy: int, qemu_code: int, wrapped_code: int,
                window_s: float, out_rows: I64, out_t: F64, out_ended: Bool,
                out_timed: Bool, out_low: Bool, cursor: I64, batch_end: I64, list_len: I64,
                list_base: I64, page_base: I64, vm_of_row: I64, src: I64, hints: Bool,
                pml: Bool, carry_bytes: F64, pages_sent: I64, bytes_sent: I64,
                round_sent: I64, round_bytes: I64, window_bytes: F64, normal_pages: I64,
                round_skipped: I64, traps: I64, dirty_base: I64, dirty_len: I64,
                entry: npt.NDArray[np.int32], sent: npt.NDArray[np.uint64], at_dest: Bool,
                dirty_log: npt.NDArray[np.int32], w_key: F64, w_pages: I64, w_next: I64,
                word: npt.NDArray[np.uint16], content: npt.NDArray[np.uint64], dirty: Bool,
                page_offset: I64, lost_dirty_log_s: F64, swap_disk_bytes_per_s: F64,
                disk_busy_s: F64, busy_go: F64, start_latency_s: F64, swap_read_pages: I64,
                swap_read_s: F64, scratch: I64, pass_full: Bool, zero_pages: I64,
                time_s: float, tick_s: float, page: int, batch: int, trap_cost: float,
                pml_per: float, loc_shift: int, kind_shift: int, ballooned: int,
                swapped: int, free: int, cluster: int, full_qemu: int,
                zero_qemu: int) -> int:
    """precopy.precopy_tick's steps, as it makes them - the rows still pre-copying before
    the tick's end, their rates after a cap change, the Xen rows' step (a peek where a
    batch starts, the send until the batch's end, the tick's end or the post-copy
    trigger), then the QEMU rows' send until their bandwidth window's end, the tick's end
    or the trigger, a pass's wrap, and at a window's end QEMU's counters (qemu.window) -
    until a step in which a row ends its list, meets its trigger or ends a window with its
    pass's rest under the threshold (qemu.window's sync): those (out_rows[:m], their
    times, which ended, which met the trigger, which are due a window's sync) are the
    caller's to handle, and m is returned; 0 once no row is left, -1 after max_steps
    steps."""
    n_all = rows_all.size
    rows = np.empty(n_all, np.int64)
    is_qemu = np.empty(n_all, np.bool_)
    window_end = np.empty(n_all)
    trigger = np.empty(n_all)
    t, reached = np.empty(n_all), np.empty(n_all, np.bool_)
    before = np.empty(n_all, np.int64)
    # Each algorithm's rows of a step, apart (group 0 Xen's, whose step goes first as in
    # precopy_tick, group 1 QEMU's): their rows, peeks, times, rates, ends and whether
    # they got there. (One call of the step for both, in a loop: with a call for each,
    # the loop's first build took 6.8 s instead of 2.2, the step compiled into both.)
    g_rows = np.empty((2, n_all), np.int64)
    g_peek = np.zeros((2, n_all), np.bool_)
    g_t, g_rate, g_until = np.empty((2, n_all)), np.empty((2, n_all)), np.empty((2, n_all))
    g_reached = np.empty((2, n_all), np.bool_)
    g_at = np.empty(n_all, np.int64)
    g_n = np.zeros(2, np.int64)
    for _ in range(max_steps):
        m = 0
        for i in range(n_all):
            r = rows_all[i]
            if status[r] == precopy and clock[r] < end - 1e-12:
                rows[m] = r
                m += 1
        if m == 0:
            return 0
        g_n[:] = 0
        for i in range(m):
            r = rows[i]
            if cap_all[r] != round_rate[r]:
                rate_all[r] = min(round_rate[r], path_rate[r])
            cap_all[r] = round_rate[r]
            q = algorithm[r] == qemu_code
            is_qemu[i] = q
            trigger[i] = start_s[r] + postcopy_after_s[r]
            window_end[i] = window_start_s[r] + window_s
            before[i] = cursor[r]
            g = 1 if q else 0
            j = g_n[g]
            g_rows[g, j], g_t[g, j], g_rate[g, j] = r, clock[r], rate_all[r]
            if q:
                g_until[g, j] = min(min(window_end[i], end), trigger[i])
            else:
                g_peek[g, j] = cursor[r] == batch_end[r] and cursor[r] < list_len[r]
                g_until[g, j] = min(end, trigger[i])
            g_at[i] = j
            g_n[g] = j + 1
        for g in range(2):
            k = g_n[g]
            if k == 0:
                continue
            # QEMU's send goes up to the end of its list: list_len for batch_end. (Not
            # chosen in the call's arguments, which numba cannot compile.)
            qemu = g == 1
            limit = list_len if qemu else batch_end
            _step_loop(g_rows[g, :k], g_peek[g, :k], g_t[g, :k], g_rate[g, :k],
                       g_until[g, :k], g_reached[g, :k], cursor, limit, list_len, list_base,
                       page_base, vm_of_row, src, hints, pml, carry_bytes, pages_sent,
                       bytes_sent, round_sent, round_bytes, window_bytes, normal_pages,
                       round_skipped, traps, dirty_base, dirty_len, entry, sent, at_dest,
                       dirty_log, w_key, w_pages, w_next, word, content, dirty, page_offset,
                       lost_dirty_log_s, swap_disk_bytes_per_s, disk_busy_s, busy_go,
                       start_latency_s, swap_read_pages, swap_read_s, scratch, pass_full,
                       zero_pages, time_s, tick_s, page, batch, trap_cost, pml_per,
                       loc_shift, kind_shift, ballooned, swapped, free, cluster, full_qemu,
                       zero_qemu, qemu)
        event = False
        for i in range(m):
            r = rows[i]
            g = 1 if is_qemu[i] else 0
            t[i], reached[i] = g_t[g, g_at[i]], g_reached[g, g_at[i]]
            clock[r] = t[i]
            w = wrap_at[r]
            if w != wrapped_code and before[i] <= w and cursor[r] >= min(w, list_len[r] - 1) + 1:
                passes[r] += 1
                wrap_at[r] = wrapped_code
            ended = reached[i] and cursor[r] >= list_len[r]
            out_ended[i] = ended
            low = False
            if is_qemu[i] and not ended and t[i] >= window_end[i] - 1e-12:
                # qemu.window: the window's bandwidth, and the test of the pass's rest
                bw = window_bytes[r] / window_s
                bandwidth[r] = bw
                window_bytes[r] = 0.0
                window_start_s[r] += window_s
                estimate = (list_len[r] - cursor[r]) * page
                expected_downtime_s[r] = estimate / max(bw, 1.0)
                low = estimate < bw * downtime_limit_s[r]
            out_low[i] = low
            out_timed[i] = not ended and t[i] >= trigger[i] - 1e-12
            event = event or ended or low or out_timed[i]
        if event:
            for i in range(m):
                out_rows[i], out_t[i] = rows[i], t[i]
            return m
    return -1


def _table_args(world: World, table: MigrationTable, tw: TickWrites) -> tuple[Any, ...]:
    """The arguments after the rows' own of both loops: the table, the tick's writes, the
    pages and hosts, and the constants."""
    state, policy = world.state, world.spec.policy.migration
    if _SCRATCH.pages.size < 2 * tw.pages.size + 256:
        _SCRATCH.pages = np.zeros(2 * tw.pages.size + 256, np.int64)
    hosts = state.hosts
    return (table["cursor"], table["batch_end"], table["list_len"], table["list_base"],
            table["page_base"], table["vm"], table["src"], table["free_page_hints"],
            table["pml"], table["carry_bytes"], table["pages_sent"], table["bytes_sent"],
            table["round_sent"], table["round_bytes"], table["window_bytes"],
            table["normal_pages"], table["round_skipped"], table["traps"],
            table["dirty_base"], table["dirty_len"], table.lists["entry"],
            table.pages["sent"], table.pages["at_dest"], table.dirty["page"], tw.key,
            tw.pages, tw.next, state.pages.word, state.pages.content, state.pages.dirty,
            np.asarray(state.vms["page_offset"], np.int64),
            state.vms["lost_dirty_log_s_tick"],
            np.asarray(hosts.swap_disk_bytes_per_s, np.float64),
            state.reclaim.hosts["disk_busy_s_tick"], np.zeros(len(hosts)),
            np.asarray(start_latency_s(state), np.float64), table["swap_read_pages"],
            table["swap_read_s"], _SCRATCH.pages, table["pass_full"], table["zero_pages"],
            float(state.time_s), float(state.tick_s), int(state.page_size),
            max(1, policy.xen_batch // state.page_size), float(policy.trap_cost),
            1.0 / policy.pml_batch, WORD_SHIFT["location"], WORD_SHIFT["guest_kind"],
            int(Loc.BALLOONED), int(Loc.SWAPPED), int(GuestKind.FREE),
            cluster_pages(state.page_size), *qemu_page_bytes(world))


def _table_samples() -> tuple[Any, ...]:
    i64, f64, flags = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
    return (*([i64] * 7), flags, flags, f64, *([i64] * 4), f64, *([i64] * 5),
            np.zeros(0, np.int32), np.zeros(0, np.uint64), flags, np.zeros(0, np.int32), f64,
            i64, i64, np.zeros(0, np.uint16), np.zeros(0, np.uint64), flags, i64, f64, f64,
            f64, f64, f64, i64, f64, i64, flags, i64, 0.0, 1.0, 4096, 1024, 1e-6, 1.0, 0, 8,
            1, 2, 3, 8, 4104, 9)


def _step_samples() -> list[tuple[Any, ...]]:
    i64, f64, flags = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
    return [(i64, flags, f64, f64, f64, flags, *_table_samples(), False)]


def _steps_samples() -> list[tuple[Any, ...]]:
    i64, f64, flags = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
    return [(i64, i64, f64, f64, f64, f64, f64, f64, f64, i64, i64, i64, f64, f64, f64, f64,
             1.0, 10, 0, 1, 2, 0.1, i64, f64, flags, flags, flags, *_table_samples())]


setattr(_step_loop, kernels.NOT_INLINED, True)  # a call from _steps_loop, not inlined
_STEP = Kernel(_step_loop, _step_samples, helpers=(_search_left, _sorted_from))
_STEPS = Kernel(_steps_loop, _steps_samples, helpers=(_search_left, _sorted_from, _step_loop))


class _Scratch(threading.local):
    """A thread's room for a peek's newly dirtied pages and their sort, kept from tick to
    tick (the console steps worlds on several threads at once)."""

    pages: I64 = np.zeros(0, np.int64)


_SCRATCH = _Scratch()


def step(world: World, table: MigrationTable, tw: TickWrites, rows: I64, peek: Bool,
         t: F64, rate: F64, until: F64) -> tuple[F64, Bool]:
    """xen.peek(rows[peek], t[peek]) then send.send(rows, t, rate, batch_end, until), in one
    loop: (the time each row got to, whether it reached its batch's end)."""
    t = np.array(t, np.float64)
    reached = np.zeros(rows.size, np.bool_)
    _STEP(np.asarray(rows, np.int64), np.asarray(peek, np.bool_), t,
          np.asarray(rate, np.float64), np.asarray(until, np.float64), reached,
          *_table_args(world, table, tw), False)
    return t, reached


def steps(world: World, table: MigrationTable, tw: TickWrites, rows: I64, clock: F64,
          rate: F64, cap: F64, end: float, max_steps: int, precopy: int, wrapped: int
          ) -> tuple[I64, F64, Bool, Bool, Bool] | None:
    """_steps_loop over rows `rows` (clock, rate and cap: precopy_tick's, per table row,
    updated in place): None once no row is left, else the last step's rows, their times
    and which of them ended their list, met their post-copy trigger, or are due QEMU's
    sync at a window's end (qemu.window, its counters already updated)."""
    n = rows.size
    out_rows, out_t = np.zeros(n, np.int64), np.zeros(n)
    ended, timed, low = (np.zeros(n, np.bool_) for _ in range(3))
    m = _STEPS(np.asarray(rows, np.int64), table["status"], clock, rate, cap,
               table["round_rate"], table["path_rate"], table["start_s"],
               table["postcopy_after_s"], table["wrap_at"], table["passes"],
               table["algorithm"], table["window_start_s"], table["bandwidth"],
               table["expected_downtime_s"], table["downtime_limit_s"], float(end),
               int(max_steps), int(precopy), QEMU, int(wrapped),
               float(world.spec.policy.migration.qemu_bandwidth_window), out_rows, out_t,
               ended, timed, low, *_table_args(world, table, tw))
    if m < 0:
        raise RuntimeError("pre-copy did not reach the end of the tick")
    if m == 0:
        return None
    return out_rows[:m], out_t[:m], ended[:m], timed[:m], low[:m]


def usable(table: MigrationTable, rows: I64) -> bool:
    """Whether the loops can take these rows' steps: compiled loops on, every Xen row's
    pass a send list (as order.full_pass and build_lists give every Xen pass), and no
    QEMU row with XBZRLE (its cache is send.Cost's alone)."""
    if not kernels.compiled():
        return False
    qemu = table["algorithm"][rows] == QEMU
    return not bool((table["pass_full"][rows] & ~qemu).any()) and not bool(
        (table["xbzrle"][rows] & qemu).any())
