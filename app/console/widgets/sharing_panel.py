"""A host's page sharing: the mode, what it saves and what it costs (KSM's counter names)."""

from __future__ import annotations

from rich.text import Text

from app.console.format import rate_text
from app.console.widgets import Panel, row_text, update_text
from engine import HostView
from engine.units import format_bytes

MODES = {"esx": "random scan, hints", "ksm": "Linux KSM trees", "off": "no scanning"}


def sharing_text(host: HostView, width: int = 80) -> Text:
    cow = host.cow_breaks_per_s
    rows = [
        row_text("mode", host.sharing_mode, MODES.get(host.sharing_mode, ""), "bold", width),
        row_text("saved", format_bytes(host.shared_saved_bytes), "frames spared",
                 "bold green", width),
        row_text("KSM profit", format_bytes(host.ksm_general_profit_bytes), "− 64 B/page",
                 width=width),
        row_text("pages_shared", f"{host.pages_shared:,}", "shared frames", width=width),
        row_text("pages_sharing", f"{host.pages_sharing:,}", "pages on them", width=width),
        row_text("pages_unshared", f"{host.pages_unshared:,}", "unstable tree", width=width),
        row_text("pages_volatile", f"{host.pages_volatile:,}", "changing", width=width),
        row_text("hints", f"{host.hints:,}", "pages recorded", width=width),
        row_text("full_scans", f"{host.full_scans:,}",
                 f"{host.pages_skipped:,} pages skipped" if host.sharing_mode == "ksm" else "",
                 width=width),
        row_text("zero pages", format_bytes(host.zero_shared_bytes), "shared zeros",
                 width=width),
        row_text("table", format_bytes(host.table_overhead_bytes), "overhead", width=width),
        row_text("hash/compare/s",
                 f"{rate_text(host.pages_hashed_per_s)}/{rate_text(host.page_compares_per_s)}",
                 "CPU cost", width=width),
        row_text("COW breaks", f"{rate_text(cow)}/s", "copies on write",
                 "dark_orange" if cow else "", width),
    ]
    return Text("\n").join(rows)


class SharingPanel(Panel):
    _host: HostView | None = None

    def show(self, host: HostView) -> None:
        self._host = host
        self.rerender()

    def rerender(self) -> None:
        if self._host is not None:
            update_text(self, sharing_text(self._host, self.panel_width()))
