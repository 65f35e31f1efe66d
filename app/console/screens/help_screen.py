"""`?`: how memory works in Overcommit, what each action does to profit and service, keys."""

from __future__ import annotations

from rich.markdown import Markdown
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from app.console.actions import ACTIONS
from app.console.widgets.key_bar import KeyBar

MEMORY_MODEL = """\
# How the night works

**Memory.** Each VM is *configured* with memory its customer pays for; a host holds less
than the VMs on it are promised (its **overcommit ratio**, e.g. 1.25x). A guest page takes
a host frame only when first touched (**private** `█`); identical pages (same OS image,
zero pages) can share one frame copy-on-write (**shared** `▓`), and a write breaks the
sharing. **Free** frames are `·`. The host bar `▕█▓·▏` is the host's RAM; after its `▏`
it goes on, on the same scale, over what the VMs were promised beyond RAM (`╌`). Memory
taken back by a **balloon** (`▒`) or pushed to disk (**swapped** `░`) is drawn there: it
is guest memory the host holds no frame for, so it is not part of RAM. *saved* is the
memory sharing spares (pages mapped to a shared frame, less the frames).

**Host state** follows its free memory: *high* (≥ 6 % free: sharing only), *soft*
(< 6 %: balloon), *hard* (< 4 %: swap) and *low* (< 1 %: swap and block VMs above their
target). When a host has no free frame, VMs that touch new pages **stall**.

**Money.** Running VMs bill their price per hour, scaled by their **service level** (the
share of their page touches that were served; stalled work is not paid). Hosts cost power
and capital. Profit = revenue − costs − penalties. Overcommitting raises profit, until
stalls eat it.

**The game.** Objectives (right pane) are judged at their deadline; when all are judged the
night is won or lost. The timeline brings scheduled events (new customers, changes) which
the log announces. Commands you confirm apply at the start of the next tick.

**What if.** `y` forks the world: the branch you were in waits where it is and you go on
in an identical copy, where you can try another action. `Y` compares the branches side by
side at the same time (profit, SLA, downtime, memory, objectives, your commands in each)
and lets you go on in any of them. Up to four branches, A to D, as memory allows.

# The mechanisms

**Page sharing** (`esx`: random scan with hints; `ksm`: Linux KSM's trees) keeps one copy
of identical pages. It saves memory for free, but costs CPU (pages hashed and compared
per second) and a copy on every write to a shared page (**COW break**). *Salting* keeps
tenants apart at the price of that saving.

**Ballooning.** A driver in the guest inflates a balloon: the guest hands over free pages,
then pages out its own coldest memory (**guest faults**). A VM ballooned to X runs almost
like one configured with X. At most 65 % of a VM; without a driver only swapping helps.

**Swapping.** The hypervisor writes random pages of a VM to disk. Blunt and slow: hot
pages go too, every touch of one stalls for a disk read (**swap-ins**), and a guest paging
a page that is already swapped reads it back only to write it out (**double paging**).

**Allocation.** Each VM has shares, a min and a max; when memory is short the VM with the
lowest **ρ** (shares per page, idle pages taxed) loses memory first. The **idle memory
tax** τ moves memory from idle VMs to active ones; the active fraction is *estimated* by
sampling 100 pages a period (shown beside the *true* one). Targets are what the policy
wants each VM to hold; in the low state VMs above their target are **blocked**.

**Live migration** (`g`). *Pre-copy* sends every page while the VM runs, then the pages
it dirtied meanwhile, round after round, and stops it only to copy the last few (the
**downtime**): Xen raises its rate each round (100 → 500 Mbit/s), QEMU sends at a fixed
bandwidth until what is left fits its **downtime limit** (auto-converge throttles a VM
that dirties faster than that; XBZRLE sends re-sent pages as deltas). The **writable
working set** (WWS: pages written within 1 s … 10 min) tells how it will go: its hottest
pages can only move in the stop-and-copy. *Post-copy* moves the VM at once and pulls each
page on first touch (a **network fault**, a stall) while the source pushes the rest;
*hybrid* does one pre-copy round first. Copies share the NICs with service traffic and
cost network money. `G` cancels a pre-copy, `P` switches it to post-copy.

**Failures** (`f` hosts, `k` links). A failed host takes its VMs with it (**lost**). A
pre-copy whose host or path fails just stops; a post-copy in flight loses its VM, since no
host has all of its memory.

**Service and SLA** (`e`). A VM's service level is the share of its demand served; it
loses service to swap-ins, guest paging, page-cache misses, COW breaks, dirty logging,
post-copy faults, downtime, memory stalls, throttling and NIC contention (its detail
screen shows the seconds lost to each). Missing an availability or performance target in
an SLA window is a **breach**: a penalty credit paid back to the customer.

**I/O remapping.** Devices that reach only low memory copy I/O to pages above it through
a bounce buffer (**bounce copies**); pages copied often are **remapped** into low memory.
"""


def help_markdown(bindings: list[BindingType]) -> str:
    lines = [MEMORY_MODEL, "# Actions", ""]
    for action in ACTIONS:
        lines.append(f"**`{action.key}` {action.title}.** {action.help}")
        lines.append("")
    lines.append("Every action opens a dialog that shows what the engine will say "
                 "(accepted, or rejected with its reason) before you confirm. They are "
                 "also in the command palette (ctrl+p).")
    titles = {f"operate('{a.name}')": a.title for a in ACTIONS}
    titles["toggle_columns"] = ("VM table columns: the basics, allocation and reclamation "
                                "(target, balloon, swapped, ρ, active estimate/true, guest "
                                "faults, swap-ins, throughput, blocked), or service and SLA "
                                "(average service, availability, latency, breaches, "
                                "revenue, penalties, biggest loss)")
    titles["fork"] = ("Fork: branch the world here and go on in the copy (the branch you "
                      "leave waits; up to four, A to D)")
    titles["compare"] = ("Compare the branches at the current time, side by side; continue "
                         "in one (Enter, 1-4) or drop one (x)")
    titles["sla"] = ("SLA and money: revenue, power, capital, network, penalties and profit; "
                     "service lost by cause; every VM's SLA (`$` too)")
    lines += ["", "# Keys", ""]
    for b in bindings:
        if isinstance(b, Binding):
            keys = b.key_display or b.key
            lines.append(f"- `{keys}` {titles.get(b.action, b.description)}")
    lines += ["- `enter` Open the host or VM under the cursor (`escape` goes back)",
              "- `/` Filter the VM table; `o` sorts by the next column, `O` reverses "
              "(or click a column header)",
              "- `tab` Move between the host list, the filter and the VM table",
              "- `v` Show or hide the side pane (objectives and the event log); on a narrow "
              "terminal it takes the whole screen in turn with the hosts and VMs",
              "- `/` in the event log searches it (Esc closes the search); repeated host "
              "state changes and stalls are collapsed into one line with a count",
              "- `a` The clock pauses while a dialog is open, or keeps running (on in the "
              "campaign; the clock bar shows ⏸ in dialogs)",
              "- `ctrl+s` Save to a named slot; the game also autosaves every 5 simulated "
              "minutes and when you quit (`ctrl+q` asks first); `ctrl+o` lists the saves",
              "- Host actions (`t`, `h`, `f`) act on the host open in its detail screen, the host "
              "highlighted in the host list when it has the focus, or the selected VM's host",
              "- `ctrl+p` Command palette: every action on every VM and host, by name"]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, bindings: list[BindingType]) -> None:
        super().__init__()
        self.text = help_markdown(bindings)

    def compose(self) -> ComposeResult:
        # Rich's Markdown in one Static: Textual's Markdown widget builds a widget per
        # block, which makes opening the help take most of a second.
        with VerticalScroll(classes="dialog -wide -tall", id="help"):
            yield Static(Markdown(self.text), id="help-text")
        yield KeyBar()

    def action_close(self) -> None:
        self.dismiss(None)
