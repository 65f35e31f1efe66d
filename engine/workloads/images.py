"""The image library (images.toml): guest OS and application images, and how an OS boots.

A VM with `content.compose = "images"` holds, from guest address 0: its OS image, the
kernel data its boot writes (`touch` of memory), then the image of `app` and of each name
in `content.images`. Page i of an image has the same content in every VM that loads the
image, except its zero pages (zero everywhere) and its private pages (unique in each VM),
chosen by a hash of (image, i), so they too are the same pages in every VM. The rest of
memory is the heap: zeroed if the OS zero-fills at boot, else untouched. A VM with a
calibrated content mix (compose = "mix") uses only the OS boot profile, for timed boots.

Regions, in pages from the VM's first page: os (image and kernel data), app (application
images), heap (the rest); a workload's working set lies in one of them (WorkloadSpec.region)
or anywhere in memory ("memory").
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from engine.spec_types import Bytes, Fraction, Frozen, Ident, Seconds

if TYPE_CHECKING:
    from engine.spec import VMSpec, WorkloadSpec

LIBRARY_FILE = Path(__file__).with_name("images.toml")


class AppImage(Frozen):
    image: Bytes
    zero: Fraction = 0.0
    private: Fraction = 0.0

    @model_validator(mode="after")
    def _fractions(self) -> AppImage:
        if self.zero + self.private > 1.0 + 1e-9:
            raise ValueError("zero + private must not exceed 1")
        return self


class OSImage(AppImage):
    boot: Seconds = 30.0
    zero_fill: bool = False
    zero_freed: bool = False
    touch: Fraction = 0.0


class Library(Frozen):
    os: dict[Ident, OSImage] = Field(default_factory=dict)
    app: dict[Ident, AppImage] = Field(default_factory=dict)


@lru_cache(maxsize=1)
def library() -> Library:
    with LIBRARY_FILE.open("rb") as f:
        return Library.model_validate(tomllib.load(f))


@dataclass(frozen=True)
class BootPlan:
    """How a VM's power-on goes (engine/memory/boot.py)."""

    timed: bool
    duration_s: float  # timed boots only
    zero_fill: bool  # every page is zeroed first
    touch: float  # kernel data written besides the images (composed content only)
    zero_freed: bool  # the guest zeroes the memory it frees (workload schedule)


def boot_plan(spec: VMSpec) -> BootPlan:
    os_image = library().os.get(spec.guest_os)
    timed = spec.boot.mode == "timed"
    composed = spec.content.compose == "images"
    duration = spec.boot.duration if spec.boot.duration is not None else (
        os_image.boot if os_image is not None else 0.0)
    # A calibrated mix keeps its resident fraction under an instant boot: it zero-fills
    # only when told to or when it boots over time.
    profile_fill = os_image is not None and os_image.zero_fill and (timed or composed)
    zero_fill = spec.boot.zero_fill if spec.boot.zero_fill is not None else profile_fill
    touch = spec.boot.touch if spec.boot.touch is not None else (
        os_image.touch if os_image is not None and composed else 0.0)
    return BootPlan(timed, duration, zero_fill, touch if composed else 0.0,
                    os_image is not None and os_image.zero_freed)


ImageKind = Literal["os", "app"]


def images_of(spec: VMSpec) -> list[tuple[ImageKind, str, AppImage]]:
    """The images a composed VM loads, in address order (empty for a content mix)."""
    if spec.content.compose != "images":
        return []
    lib = library()
    out: list[tuple[ImageKind, str, AppImage]] = [("os", spec.guest_os,
                                                   lib.os[spec.guest_os])]
    for name in ([spec.app] if spec.app else []) + list(spec.content.images):
        out.append(("app", name, lib.app[name]))
    return out


@dataclass(frozen=True)
class Regions:
    """Page ranges of a VM's layout: (start, size) of os, app and heap."""

    os: tuple[int, int]
    app: tuple[int, int]
    heap: tuple[int, int]
    memory: tuple[int, int]

    def of(self, name: str) -> tuple[int, int]:
        return {"os": self.os, "app": self.app, "heap": self.heap,
                "memory": self.memory}[name]


def regions(spec: VMSpec, n_pages: int, page_size: int) -> Regions:
    images = images_of(spec)
    plan = boot_plan(spec)
    os_pages = sum(img.image // page_size for kind, _, img in images if kind == "os")
    os_pages += int(round(plan.touch * n_pages)) if images else 0
    app_pages = sum(img.image // page_size for kind, _, img in images if kind == "app")
    os_pages = min(os_pages, n_pages)
    app_pages = min(app_pages, n_pages - os_pages)
    heap_start = os_pages + app_pages
    return Regions((0, os_pages), (os_pages, app_pages), (heap_start, n_pages - heap_start),
                   (0, n_pages))


def _known(spec: VMSpec) -> str | None:
    lib = library()
    if spec.content.compose == "images":
        if spec.guest_os not in lib.os:
            return (f"guest_os {spec.guest_os!r} has no image to compose content from; known: "
                    f"{', '.join(sorted(lib.os))}")
        for name in ([spec.app] if spec.app else []) + list(spec.content.images):
            if name not in lib.app:
                return (f"application {name!r} has no image; known: "
                        f"{', '.join(sorted(lib.app))}")
    if (spec.boot.mode == "timed" and spec.boot.duration is None
            and spec.guest_os not in lib.os):
        return (f"a timed boot of guest_os {spec.guest_os!r} needs boot.duration (no boot "
                f"profile for it; profiles: {', '.join(sorted(lib.os))})")
    return None


def _check_workload(spec: VMSpec, wl: WorkloadSpec, where: str, layout: Regions,
                    page: int) -> str | None:
    ws = wl.working_set
    if ws is not None and ws > spec.memory:
        return f"{where}.working_set must not exceed memory"
    hot = wl.hot_set
    if hot is not None and hot > (ws if ws is not None else spec.memory):
        return f"{where}.hot_set must not exceed the working set"
    start, size = layout.of(wl.region)
    if wl.offset // page > size or (ws is not None and (wl.offset + ws) // page > size):
        return (f"{where}: offset + working_set must fit in the {wl.region} region "
                f"({size * page} bytes)")
    return None


def check_vm(spec: VMSpec) -> str | None:
    """What is wrong with a VM's images, boot and workload layout, or None."""
    problem = _known(spec)
    if problem is not None:
        return problem
    images = images_of(spec)
    total = sum(img.image for _, _, img in images) + int(boot_plan(spec).touch * spec.memory)
    if total > spec.memory:
        names = " + ".join(f"{name} {img.image // 1024**2} MiB" for _, name, img in images)
        return f"memory {spec.memory // 1024**2} MiB cannot hold its images ({names})"
    # Checked at 4 KiB pages: a coarser page only rounds regions down a little.
    page = 4096
    layout = regions(spec, spec.memory // page, page)
    problem = _check_workload(spec, spec.workload, "workload", layout, page)
    for i, phase in enumerate(spec.workload.phases):
        if problem is not None:
            break
        try:
            effective = spec.workload.with_changes(phase)
        except ValueError as err:
            return f"workload.phases[{i}]: {err}"
        problem = _check_workload(spec, effective, f"workload.phases[{i}]", layout, page)
    return problem
