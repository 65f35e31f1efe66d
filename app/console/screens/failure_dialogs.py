"""Failure tools for the game: fail a host or bring it back, take a link down or up.
Each is a ChoiceDialog with what the engine says and what the failure will cost."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from app.console.format import per_hour
from app.console.live import Link
from app.console.screens.choice_dialog import Choice, ChoiceDialog
from app.console.view import ActionContext
from engine.commands import SetHostUp, SetLink
from engine.units import format_rate


class HostPowerDialog(ChoiceDialog):
    def about_text(self) -> str:
        host_id = self.host or ""
        host = self.snapshot.host(host_id)
        snap = self.snapshot
        h = snap.vms.host_ids.index(host_id)
        vms = [snap.vms[i] for i in np.flatnonzero(snap.columns["host_index"] == h).tolist()]
        migrations = [m for m in self.live.active() if host_id in (m["src"], m["dst"])]
        if not host.up:
            return (f"{host_id} is DOWN. Bringing it back gives an empty host: the VMs lost "
                    "with it must be placed again (p).")
        text = (f"{host_id} is up with {len(vms)} VMs"
                + (f" ({', '.join(v.id for v in vms)}; they bill "
                   f"{per_hour(sum(v.price_per_hour for v in vms))})" if vms else "")
                + ". If it fails they go down with it and are lost: no revenue, and their "
                  "SLAs count the outage.")
        if migrations:
            text += " Migrations touching it: " + ", ".join(
                f"{m['vm']} {m['mode']} ({'lost' if m['status'] == 'postcopy' else 'fails'})"
                for m in migrations) + "."
        return text


def host_power_dialog(ctx: ActionContext) -> HostPowerDialog:
    host = ctx.host or ctx.snapshot.hosts[0].id
    up = ctx.snapshot.host(host).up
    return HostPowerDialog(
        ctx.snapshot, ctx.preview, title=f"Host {host}: fail it or bring it back",
        about=lambda snap: "",
        choices=[Choice("up    running (back up, empty, if it failed)",
                        SetHostUp(host=host, up=True),
                        f"{host} is up at the next tick" if not up else f"{host} stays up"),
                 Choice("down  failed: its VMs are lost, its migrations stop",
                        SetHostUp(host=host, up=False),
                        f"{host} fails at the next tick" if up else f"{host} stays down")],
        current=0 if up else 1, start=1 if up else 0, host=host).with_live(ctx)


def _reach(links: Iterable[Link], skip: Link | None = None) -> dict[str, set[str]]:
    """For each node, the nodes it reaches over the links that are up (less `skip`)."""
    neighbours: dict[str, set[str]] = {}
    for link in links:
        neighbours.setdefault(link.a, set())
        neighbours.setdefault(link.b, set())
        if link.up and link is not skip:
            neighbours[link.a].add(link.b)
            neighbours[link.b].add(link.a)
    reach: dict[str, set[str]] = {}
    for node in neighbours:
        if node in reach:
            continue
        seen, todo = {node}, [node]
        while todo:
            for nxt in neighbours[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        for member in seen:
            reach[member] = seen
    return reach


def cut_off(links: tuple[Link, ...], link: Link) -> str:
    """What taking `link` down cuts: 'h2 loses gw, h1' for a host's own link, else the
    hosts that lose their gateway ('h1, h2 lose gw')."""
    kinds = {n: k for ln in links for n, k in zip((ln.a, ln.b), ln.kinds, strict=True)}
    before, after = _reach(links), _reach(links, skip=link)

    def lost(node: str, wanted: tuple[str, ...]) -> list[str]:
        return sorted(n for n in before[node] - after[node] if kinds.get(n) in wanted)

    ends = [n for n in (link.a, link.b) if kinds.get(n) == "host"]
    if ends:
        return "; ".join(f"{n} loses {', '.join(lost(n, ('host', 'gateway')))}"
                         for n in ends if lost(n, ("host", "gateway")))
    hosts = sorted(n for n, k in kinds.items() if k == "host" and lost(n, ("gateway",)))
    gateways = sorted({g for h in hosts for g in lost(h, ("gateway",))})
    if not hosts:
        return ""
    verb = "loses" if len(hosts) == 1 else "lose"
    return f"{', '.join(hosts)} {verb} {', '.join(gateways)}"


class LinkDialog(ChoiceDialog):
    def about_text(self) -> str:
        down = [ln.name for ln in self.live.links if not ln.up]
        return ("A link down cuts the paths over it: a migration with no path fails (a "
                "post-copy loses its VM) and service traffic must find another way. "
                + (f"Down now: {', '.join(down)}." if down else "All links are up."))


def link_dialog(ctx: ActionContext) -> LinkDialog:
    links = ctx.live.links
    choices = []
    for ln in links:
        state = "up  " if ln.up else "DOWN"
        verb = "take down" if ln.up else "bring up"
        cut = cut_off(links, ln) if ln.up else ""
        effect = f"{ln.name} goes {'down' if ln.up else 'up'} at the next tick" + (
            f" ({cut})" if cut else "")
        choices.append(Choice(f"{ln.name:<16} {format_rate(ln.capacity_bytes_per_s):>10}  "
                              f"{state}  → {verb}", SetLink(a=ln.a, b=ln.b, up=not ln.up),
                              effect))
    return LinkDialog(ctx.snapshot, ctx.preview, title="Network links: take one down or up",
                      about=lambda snap: "", choices=choices, current=-1,
                      start=0).with_live(ctx)
