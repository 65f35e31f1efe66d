"""Content built from the image library: VMs of one OS and application share its pages."""

import numpy as np
import pytest

from engine import InputError, Simulation, parse_scenario
from engine.memory.sharing import try_share
from engine.state import GuestKind, Loc
from engine.workloads.images import library
from tests.conftest import small_spec


def test_ten_vms_built_from_the_same_images_share_the_images_pages() -> None:
    data = small_spec()
    data["scenario"]["page_size"] = "16KiB"
    data["policy"]["sharing"] = {"mode": "esx", "share_force_salting": 0}
    data["host"][0]["memory"] = "2GiB"
    data["vm"] = [{"id": f"sql{i}", "host": "h1", "memory": "128MiB",
                   "guest_os": "windows-nt4", "app": "sql-server",
                   "content": {"compose": "images", "images": ["iis"]},
                   "workload": {"kind": "idle"}} for i in range(10)]
    sim = Simulation.from_spec(parse_scenario(data), check=True)
    state = sim.world.state
    p, n = state.pages, 8192
    page = p.content.reshape(10, n)
    kind = p.guest_kind.reshape(10, n)
    # Laid out from address 0: OS image, kernel data, SQL Server, IIS; the rest zeroed at
    # boot (Windows zero-fills). Private pages differ per VM, the images' other pages not.
    lib = library()
    images = (lib.os["windows-nt4"].image + lib.app["sql-server"].image
              + lib.app["iis"].image) // 16384
    loaded = images + round(0.02 * n)
    assert sim.report()["vms"][0]["regions_bytes"] == {
        "os": (lib.os["windows-nt4"].image // 16384 + round(0.02 * n)) * 16384,
        "app": (images - lib.os["windows-nt4"].image // 16384) * 16384,
        "heap": (n - loaded) * 16384}
    assert np.all(p.location[:10 * n] == Loc.PRIVATE)  # zero fill: every page touched
    same = np.all(page == page[0], axis=0)
    private = kind[0] == GuestKind.ANON
    assert np.all(same[:loaded] | private[:loaded]) and np.all(page[:, loaded:] == 0)
    shared_image = same[:loaded] & (page[0, :loaded] != 0)
    zero = int(np.count_nonzero(page[0] == 0))
    assert shared_image.sum() > 0.6 * images
    try_share(state, np.arange(10 * n))
    host = sim.snapshot().host("h1")
    # Nine of ten copies of each image page are saved, and every zero page but one.
    expected = 9 * int(shared_image.sum()) + 10 * zero - 1
    assert host.shared_saved_bytes == expected * 16384
    assert not np.any(p.location[:10 * n][np.tile(private & ~(page[0] == 0), 10)]
                      == Loc.SHARED)


def test_unknown_images_and_images_larger_than_memory_are_refused() -> None:
    data = small_spec()
    data["vm"][0].pop("app")
    data["vm"][0].update(guest_os="beos", content={"compose": "images"})
    with pytest.raises(InputError, match=r"vm\[0\].*'beos'.*windows-nt4"):
        parse_scenario(data)
    data["vm"][0].update(guest_os="windows")  # a 192 MiB image in an 8 MiB VM
    with pytest.raises(InputError, match=r"vm\[0\].*cannot hold its images"):
        parse_scenario(data)
