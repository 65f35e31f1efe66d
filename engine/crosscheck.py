"""Cross-field checks of a scenario that no single model can make.

Ids unique and references resolving (switches, hosts, links, VMs, objectives), the network
a graph the engine can build (no self-loop, one link per pair), every host and VM at least
a few pages, the initial placements within the hosts' reservations and swap space (the
admission control of engine/control.py), the world within the engine's budgets
(engine/budgets.py) and the timeline valid for the world at each entry's time (in time
order: a VM is placed before it is named). `validate` and `run` both go through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import budgets
from engine.commands import PlaceVM, SetLink, SetMax, SetMin, SetWorkload
from engine.errors import InputError
from engine.ranges import MAX_TICKS
from engine.units import format_bytes, format_seconds

if TYPE_CHECKING:
    from engine.scenario import ScenarioSpec

UPLINK_SUFFIX = ".uplink"  # engine/network.py: a host without a switch ends in this node


def check_scenario(spec: ScenarioSpec, source: str) -> None:
    def fail(path: str, expected: str) -> None:
        raise InputError(source, path, expected)

    meta = spec.scenario
    if meta.duration is not None and meta.duration / meta.tick_s > MAX_TICKS:
        fail("scenario.duration", f"{format_seconds(meta.duration)} is more than "
             f"{MAX_TICKS:,} ticks of {format_seconds(meta.tick_s)}; shorten it or "
             "lengthen tick_s")
    nodes: dict[str, str] = {}
    for i, sw in enumerate(spec.switches):
        if sw.id in nodes:
            fail(f"switch[{i}].id", f"duplicate node id {sw.id!r}")
        nodes[sw.id] = sw.kind
    hosts = spec.all_hosts()
    if not hosts:
        fail("host", "expected at least one [[host]] or [[host_group]]")
    page = meta.page_size
    links: set[frozenset[str]] = set()
    host_ids: dict[str, int] = {}
    for i, host in enumerate(hosts):
        where = f"host[{i}]" if i < len(spec.hosts) else "host_group"
        if host.id in nodes or host.id + UPLINK_SUFFIX in nodes:
            fail(f"{where}.id", f"duplicate node id {host.id!r}")
        if host.switch is not None and host.switch not in nodes:
            fail(f"{where}.switch",
                 f"expected one of the switches ({_names(nodes)}), got {host.switch!r}")
        if host.memory // page < budgets.MIN_HOST_FRAMES:
            fail(f"{where}.memory", f"{format_bytes(host.memory)} is fewer than "
                 f"{budgets.MIN_HOST_FRAMES} pages of {format_bytes(page)}; give more memory "
                 "or a smaller scenario.page_size")
        nodes[host.id] = "host"
        host_ids[host.id] = i
        links.add(frozenset((host.id, host.switch or host.id + UPLINK_SUFFIX)))
    problem = budgets.frames_problem(sum(h.memory // page for h in hosts), page)
    if problem:
        fail("host", problem)
    for i, link in enumerate(spec.links):
        for end in ("a", "b"):
            node = getattr(link, end)
            if node not in nodes:
                fail(f"link[{i}].{end}",
                     f"expected a switch or host id ({_names(nodes)}), got {node!r}")
        if link.a == link.b:
            fail(f"link[{i}].b", f"a link joins two different nodes, got {link.a!r} twice")
        pair = frozenset((link.a, link.b))
        if pair in links:
            fail(f"link[{i}]", f"duplicate link {link.a}-{link.b} (one link per pair; a "
                 "host's NIC already links it to its switch)")
        links.add(pair)
    vms = spec.all_vms()
    _check_vms(spec, vms, host_ids, fail)
    _check_budgets(spec, vms, len(hosts), fail)
    # Objectives may name a VM the timeline places later.
    vm_ids = _check_timeline(spec, {vm.id: vm for vm in vms}, host_ids, links, fail)
    for i, obj in enumerate(spec.objectives):
        if obj.vm is not None and obj.vm not in vm_ids:
            fail(f"objective[{i}].vm", f"expected one of the VMs ({_names(vm_ids)}), got "
                 f"{obj.vm!r}")
        if obj.host is not None and obj.host not in host_ids:
            fail(f"objective[{i}].host", f"expected one of the hosts ({_names(host_ids)}), "
                 f"got {obj.host!r}")


def _check_vms(spec: ScenarioSpec, vms: list[Any], host_ids: dict[str, int], fail: Any) -> None:
    page = spec.scenario.page_size
    overhead = spec.policy.memory.overhead_per_vm
    hosts = spec.all_hosts()
    reserved = [0] * len(hosts)
    swap_used = [0] * len(hosts)
    seen: set[str] = set()
    for i, vm in enumerate(vms):
        where = f"vm[{i}]" if i < len(spec.vms) else "vm_group"
        if vm.id in seen:
            fail(f"{where}.id", f"duplicate VM id {vm.id!r}")
        seen.add(vm.id)
        if vm.memory < page:
            fail(f"{where}.memory", f"{format_bytes(vm.memory)} is less than one page "
                 f"({format_bytes(page)})")
        if vm.host is None:
            continue
        if vm.host not in host_ids:
            fail(f"{where}.host", f"expected one of the hosts ({_names(host_ids)}), got "
                 f"{vm.host!r}")
        # The admission control of a power-on (engine/control.py), host by host in order.
        h = host_ids[vm.host]
        min_b, max_b = vm.min // page * page, vm.max_bytes // page * page
        capacity = hosts[h].memory // page * page
        if reserved[h] + min_b + overhead > capacity:
            fail(f"{where}.min", f"{vm.id} needs {format_bytes(min_b + overhead)} reserved "
                 f"(min + overhead) but host {vm.host} has only "
                 f"{format_bytes(max(capacity - reserved[h], 0))} unreserved memory")
        if swap_used[h] + max_b - min_b > hosts[h].swap_space:
            fail(f"{where}.max", f"{vm.id} needs {format_bytes(max_b - min_b)} of swap "
                 f"(max - min) but host {vm.host} has only "
                 f"{format_bytes(hosts[h].swap_space - swap_used[h])} of swap space left")
        reserved[h] += min_b + overhead
        swap_used[h] += max_b - min_b
    for i, group in enumerate(spec.vm_groups):
        for name in group.hosts:
            if name not in host_ids and group.hosts != ["*"]:
                fail(f"vm_group[{i}].hosts", f"expected host ids ({_names(host_ids)}), got "
                     f"{name!r}")


def _check_budgets(spec: ScenarioSpec, vms: list[Any], n_hosts: int, fail: Any) -> None:
    meta = spec.scenario
    placed = [e.command.vm for e in spec.timeline if isinstance(e.command, PlaceVM)]
    every = vms + placed
    problem = budgets.pages_problem(sum(vm.memory // meta.page_size for vm in every),
                                    meta.page_size)
    if problem:
        fail("vm", problem)
    # Load spikes in the timeline count at their peak: each VM at its highest rates.
    fields = ("reads_per_s", "writes_per_s", "file_reads_per_s", "io_pages_per_s")
    peak = {vm.id: {f: 0.0 if vm.workload.kind == "idle" else getattr(vm.workload, f)
                    for f in fields} for vm in every}
    for entry in spec.timeline:
        cmd = entry.command
        if isinstance(cmd, SetWorkload) and cmd.vm in peak:
            for f in fields:
                peak[cmd.vm][f] = max(peak[cmd.vm][f], getattr(cmd, f, None) or 0.0)
    problem = budgets.touches_problem(sum(sum(r.values()) for r in peak.values()),
                                      meta.tick_s)
    if problem:
        fail("vm", problem)
    problem = budgets.scan_problem(budgets.scan_per_tick(
        spec.policy.sharing, (vm.memory // meta.page_size for vm in every), n_hosts,
        meta.tick_s, meta.page_size))
    if problem:
        fail("policy.sharing", problem)


def _check_timeline(spec: ScenarioSpec, vm_ids: dict[str, Any], host_ids: dict[str, int],
                    links: set[frozenset[str]], fail: Any) -> dict[str, Any]:
    """Entries in time order (the order they apply in), named by their place in the file.
    Returns every VM the scenario defines, the timeline's placements included."""
    defined = dict(vm_ids)
    for entry, i in zip(spec.timeline, spec.timeline_file_index(), strict=True):
        cmd, where = entry.command, f"timeline[{i}]"
        if isinstance(cmd, PlaceVM):
            vm = cmd.vm
            if vm.id in defined:
                fail(f"{where}.id", f"a VM named {vm.id!r} already exists")
            if vm.host not in host_ids:
                fail(f"{where}.host", f"expected one of the hosts ({_names(host_ids)}), got "
                     f"{vm.host!r}")
            if vm.memory < spec.scenario.page_size:
                fail(f"{where}.memory", f"{format_bytes(vm.memory)} is less than one page")
            defined[vm.id] = vm
            continue
        for name in ("host", "to"):
            value = getattr(cmd, name, None)
            if isinstance(value, str) and value not in host_ids:
                fail(f"{where}.{name}", f"expected one of the hosts ({_names(host_ids)}), got "
                     f"{value!r}")
        vm_name = getattr(cmd, "vm", None)
        if isinstance(vm_name, str) and vm_name not in defined:
            fail(f"{where}.vm", f"expected a VM defined earlier ({_names(defined)}), got "
                 f"{vm_name!r}")
        if isinstance(cmd, SetLink) and frozenset((cmd.a, cmd.b)) not in links:
            fail(f"{where}.b", f"no link between {cmd.a!r} and {cmd.b!r}")
        memory = defined[vm_name].memory if isinstance(vm_name, str) else 0
        if isinstance(cmd, SetMin | SetMax):
            value = cmd.min if isinstance(cmd, SetMin) else cmd.max
            if value > memory:
                fail(f"{where}.{cmd.kind.removeprefix('set_')}", f"{format_bytes(value)} is "
                     f"more than {vm_name}'s memory ({format_bytes(memory)})")
        if isinstance(cmd, SetWorkload):
            if cmd.working_set is not None and cmd.working_set > memory:
                fail(f"{where}.working_set", f"a working set of "
                     f"{format_bytes(cmd.working_set)} does not fit in {format_bytes(memory)}")
            if cmd.hot_set is not None and cmd.hot_set > (cmd.working_set or memory):
                fail(f"{where}.hot_set", "the hot set must lie within the working set")
    return defined


def _names(ids: Any) -> str:
    ordered = sorted(ids)
    shown = ", ".join(ordered[:6])
    return shown + (f", ... {len(ordered) - 6} more" if len(ordered) > 6 else "")
