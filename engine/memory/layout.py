"""What a VM's guest memory holds once it has booted, page by page: its layout template.

Every VM whose spec gives the same content (size, mix or images, OS, application, boot)
boots to the same template: which pages are touched, what each holds and what the guest
uses it for. Only its unique pages differ between VMs: the template holds their rank, and
each VM adds its own base to it (unique content ids come from a counter in the state).
So a group of identical VMs is laid out with a few broadcast array operations
(memory/boot.py), and a VM booting over time writes the same pages, in `load_order`.

A calibrated content mix (compose = "mix") is scattered: its zero, OS, application,
duplicate and private pages, in that order of the plan, land on a random permutation of
the VM's pages (seeded by the scenario seed and the template, so runs repeat). Composed
content (compose = "images") is laid out in regions from address 0: OS image, kernel
data, application images, then the heap (zeroed if the OS zero-fills at boot).

Templates are derived data: cached per process, rebuilt from the specs, never saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.hashing import name_key, splitmix64
from engine.memory.content import image_content
from engine.spec import VMSpec
from engine.state import I64, N_KIND, U8, U64, Bool, GuestKind, Loc
from engine.workloads.images import AppImage, boot_plan, library

_UNIT = float(2**64)


@dataclass(frozen=True, eq=False)
class Template:
    n: int
    touched: Bool  # per page: resident once booted
    content: U64  # per page: content id, or the unique rank where `unique`
    unique: Bool
    kind: U8  # per page: GuestKind once booted
    load_order: I64  # the pages the boot loads with their content, in order
    zero_fill: bool  # the boot first zeroes every page (in address order)
    n_unique: int
    kind_counts: I64  # pages per GuestKind once booted
    touched_pages: I64  # sorted pages with touched set
    contiguous: bool  # touched_pages == 0 .. k-1
    location: U8  # per page: Loc once booted (PRIVATE where touched)
    unique_u64: U64  # `unique` as 0/1, to add each VM's base in one multiply-add

    @property
    def n_touched(self) -> int:
        return int(self.touched_pages.size)

    def plan_length(self, timed: bool) -> int:
        """Positions of the boot plan: timed, the zero fill then the load; instant, every
        touched page once, with its final content."""
        if timed:
            return (self.n if self.zero_fill else 0) + int(self.load_order.size)
        return self.n_touched

    def plan_pages(self, timed: bool, pos: I64) -> tuple[I64, Bool]:
        """(page within the VM, whether it is a zero-fill write) of plan positions."""
        if not timed:
            order = self.touched_pages if self.zero_fill or self.contiguous else (
                self.load_order)
            return order[pos], np.zeros(pos.size, np.bool_)
        z = self.n if self.zero_fill else 0
        filling = pos < z
        page = pos.copy()
        page[~filling] = self.load_order[pos[~filling] - z]
        return page, filling


def _mix(key: MixKey) -> Template:
    (_, n, max_pages, guest_os, app, zero, os_, app_, dup, _, resident, dup_copies,
     zero_fill, seed) = key
    k = min(int(round(resident * n)), max_pages, n)
    n_zero = int(round(zero * k))
    n_os = int(round(os_ * k))
    n_app = min(int(round(app_ * k)), k - n_zero - n_os) if app else 0
    n_dup = min(int(round(dup * k)), k - n_zero - n_os - n_app)
    n_priv = k - n_zero - n_os - n_app - n_dup
    distinct = max(1, int(round(n_dup / dup_copies)))
    dup_pool = image_content("dup", f"{guest_os}/{app or ''}", distinct)
    by_position = np.concatenate([
        np.zeros(n_zero, np.uint64),
        image_content("os", guest_os, n_os),
        image_content("app", app or "", n_app),
        dup_pool[np.arange(n_dup) % distinct],
        np.arange(n_priv, dtype=np.uint64),
    ])
    # Zeroed pages are what the guest keeps on its free list; OS, application and
    # duplicated pages are file-backed page cache it can drop; unique data is process
    # memory.
    kinds = np.concatenate([np.full(n_zero, GuestKind.FREE, np.uint8),
                            np.full(n_os + n_app + n_dup, GuestKind.CACHE, np.uint8),
                            np.full(n_priv, GuestKind.ANON, np.uint8)])
    rng = np.random.Generator(np.random.PCG64(seed))
    order = rng.permutation(n)[:k].astype(np.int64)
    content = np.zeros(n, np.uint64)
    unique = np.zeros(n, np.bool_)
    kind = np.full(n, GuestKind.FREE, np.uint8)
    content[order] = by_position
    unique[order[k - n_priv:]] = True
    kind[order] = kinds
    touched = np.ones(n, np.bool_) if zero_fill else np.zeros(n, np.bool_)
    touched[order] = True
    return _finish(n, touched, content, unique, kind, order, zero_fill, n_priv)


def _image_pages(kind: str, name: str, img: AppImage, pages: int) -> tuple[U64, Bool, U8]:
    """Content, unique flag and guest kind of one image's pages: zero and private pages
    picked by a hash of (image, page), so they are the same pages in every VM."""
    h = splitmix64(np.arange(pages, dtype=np.uint64) ^ name_key("layout", f"{kind}:{name}"))
    frac = h.astype(np.float64) / _UNIT
    zero = frac < img.zero
    private = ~zero & (frac < img.zero + img.private)
    content = image_content(kind, name, pages)
    content[zero] = 0
    content[private] = np.arange(int(private.sum()), dtype=np.uint64)
    # Shared binaries are file-backed (page cache the guest could drop); zeroed and
    # modified data are the process's own.
    kinds = np.where(zero | private, GuestKind.ANON, GuestKind.CACHE).astype(np.uint8)
    return content, private, kinds


def _images(key: ImagesKey) -> Template:
    _, n, page_size, guest_os, app, extra, zero_fill, touch = key
    lib = library()
    images: list[tuple[str, str, AppImage]] = [("os", guest_os, lib.os[guest_os])]
    images += [("app", name, lib.app[name]) for name in ([app] if app else []) + list(extra)]
    parts: list[tuple[U64, Bool, U8]] = []
    unique_so_far = 0
    for image_kind, name, img in images:
        content, private, kinds = _image_pages(image_kind, name, img, img.image // page_size)
        content[private] += np.uint64(unique_so_far)
        unique_so_far += int(private.sum())
        parts.append((content, private, kinds))
        if image_kind == "os":  # kernel data the boot writes: unique, the guest's own
            t = int(round(touch * n))
            parts.append((np.arange(unique_so_far, unique_so_far + t, dtype=np.uint64),
                          np.ones(t, np.bool_), np.full(t, GuestKind.ANON, np.uint8)))
            unique_so_far += t
    loaded = min(sum(c.size for c, _, _ in parts), n)
    content = np.zeros(n, np.uint64)
    unique = np.zeros(n, np.bool_)
    kind = np.full(n, GuestKind.FREE, np.uint8)
    content[:loaded] = np.concatenate([c for c, _, _ in parts])[:loaded]
    unique[:loaded] = np.concatenate([u for _, u, _ in parts])[:loaded]
    kind[:loaded] = np.concatenate([k for _, _, k in parts])[:loaded]
    touched = np.ones(n, np.bool_) if zero_fill else np.arange(n) < loaded
    return _finish(n, touched, content, unique, kind, np.arange(loaded, dtype=np.int64),
                   zero_fill, int(unique[:loaded].sum()))


def _finish(n: int, touched: Bool, content: U64, unique: Bool, kind: U8, order: I64,
            zero_fill: bool, n_unique: int) -> Template:
    kind = np.where(touched, kind, GuestKind.FREE).astype(np.uint8)
    touched_pages = np.flatnonzero(touched).astype(np.int64)
    counts = np.bincount(kind, minlength=N_KIND).astype(np.int64)
    location = np.where(touched, Loc.PRIVATE, Loc.UNTOUCHED).astype(np.uint8)
    unique_u64 = unique.astype(np.uint64)
    for arr in (touched, content, unique, kind, order, touched_pages, counts, location,
                unique_u64):
        arr.flags.writeable = False  # shared by every VM of the template
    return Template(n, touched, content, unique, kind, order, zero_fill, n_unique, counts,
                    touched_pages, bool(touched_pages.size == 0 or
                                        touched_pages[-1] == touched_pages.size - 1),
                    location, unique_u64)


MixKey = tuple[str, int, int, str, "str | None", float, float, float, float, float, float,
               float, bool, int]
ImagesKey = tuple[str, int, int, str, "str | None", tuple[str, ...], bool, float]


def template_key(spec: VMSpec, n: int, max_pages: int, page_size: int,
                 seed: int) -> MixKey | ImagesKey:
    """Everything a VM's template depends on (VMs with equal keys share a template)."""
    plan = boot_plan(spec)
    c = spec.content
    if c.compose == "images":
        return ("images", n, page_size, spec.guest_os, spec.app, tuple(c.images),
                plan.zero_fill, plan.touch)
    return ("mix", n, min(max_pages, n), spec.guest_os, spec.app, c.zero, c.os, c.app, c.dup,
            c.private, c.resident, c.dup_copies, plan.zero_fill,
            int(name_key("layout-seed", f"{seed}")))


@lru_cache(maxsize=256)
def _build(key: MixKey | ImagesKey) -> Template:
    if key[0] == "images":
        return _images(key)  # type: ignore[arg-type]
    return _mix(key)  # type: ignore[arg-type]


def template(spec: VMSpec, n: int, max_pages: int, page_size: int, seed: int) -> Template:
    return _build(template_key(spec, n, max_pages, page_size, seed))
