"""`?`: how memory works in Overcommit, what each action does to profit and service, keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

from app.console.actions import ACTIONS

MEMORY_MODEL = """\
# How the night works

**Memory.** Each VM is *configured* with memory its customer pays for; a host holds less
than the VMs on it are promised (its **overcommit ratio**, e.g. 1.25x). A guest page takes
a host frame only when first touched (**private** `█`); identical pages (same OS image,
zero pages) can share one frame copy-on-write (**shared** `▓`), and a write breaks the
sharing. Memory taken back by a balloon (`▒`) or pushed to disk (**swapped** `░`) is drawn
after the host bar; **free** frames are `·`.

**Host state** follows its free memory: *high* (≥ 6 % free), *soft* (≥ 4 %), *hard*
(≥ 1 %) and *low*. When a host has no free frame, VMs that touch new pages **stall**.

**Money.** Running VMs bill their price per hour, scaled by their **service level** (the
share of their page touches that were served; stalled work is not paid). Hosts cost power
and capital. Profit = revenue − costs − penalties. Overcommitting raises profit, until
stalls eat it.

**The game.** Objectives (right pane) are judged at their deadline; when all are judged the
night is won or lost. The timeline brings scripted events (new customers, changes) which
the log announces. Commands you confirm apply at the start of the next tick.
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
    lines += ["", "# Keys", ""]
    for b in bindings:
        if isinstance(b, Binding):
            keys = b.key_display or b.key
            lines.append(f"- `{keys}` {titles.get(b.action, b.description)}")
    lines += ["- `enter` Open the host or VM under the cursor (`escape` goes back)",
              "- `/` Filter the VM table; `o` sorts by the next column, `O` reverses "
              "(or click a column header)",
              "- `tab` Move between the host list, the filter and the VM table",
              "- `ctrl+p` Command palette: every action on every VM, by name"]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, bindings: list[BindingType]) -> None:
        super().__init__()
        self.text = help_markdown(bindings)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -wide -tall", id="help"):
            yield Markdown(self.text)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
