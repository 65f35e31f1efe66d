"""Damaged and edited saves: the header (sidecar name, checksum, save id), every part of
the world's plain data (version, tick, money, history, streams, migrations, thresholds,
pending commands...), the arrays (refcounts, free lists, locations, dtypes, shapes,
pickled objects, a full hash table) and the sidecar file itself (missing, truncated, of
another save). A base save of the small fuzz scenario, mid-migration, is written once per
corpus with whatever code is under test, then copied and edited per case."""

from __future__ import annotations

import hashlib
import io
import shutil
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from tests.fuzz.runner import ACCEPT, EITHER, REFUSE, Case
from tests.fuzz.scenarios import small


def make_base(cache: Path, name: str = "base", seed: int = 3, ticks: int = 3) -> Path:
    """A save of the fuzz scenario after a few ticks (its migration under way)."""
    from app.savefile import write_save
    from engine import Simulation, parse_scenario

    path = cache / f"{name}.toml"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        sim = Simulation.from_spec(parse_scenario(small()), seed=seed)
        sim.step(ticks)
        write_save(path, sim)
    return path


def _copy_save(src: Path, folder: Path) -> tuple[Path, dict[str, Any], Path]:
    doc = tomllib.loads(src.read_text())
    sidecar = src.with_name(doc["overcommit_save"]["sidecar"])
    dst = folder / src.name
    shutil.copy(src, dst)
    shutil.copy(sidecar, folder / sidecar.name)
    return dst, doc, folder / sidecar.name


def _write_arrays(path: Path, arrays: dict[str, Any]) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _case(name: str, category: str, expect: str, base: Path,
          edit_doc: Callable[[dict[str, Any]], None] | None = None,
          edit_arrays: Callable[[dict[str, Any]], None] | None = None,
          edit_files: Callable[[Path, Path, dict[str, Any]], None] | None = None,
          argv: list[str] | None = None) -> Case:
    def build(folder: Path) -> list[str]:
        save, doc, sidecar = _copy_save(base, folder)
        if edit_arrays is not None:
            with np.load(sidecar, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            edit_arrays(arrays)
            # A careful editor fixes the checksum, so the deeper checks are what refuse.
            doc["overcommit_save"]["sidecar_sha256"] = _write_arrays(sidecar, arrays)
        if edit_doc is not None:
            edit_doc(doc)
        save.write_text(tomli_w.dumps(doc))
        if edit_files is not None:
            edit_files(save, sidecar, doc)
        return [a.replace("{save}", str(save)) for a in (argv or [
            "run", "--load", "{save}", "--ticks", "2", "--check", "--quiet"])]

    return Case(name, category, expect, build)


def _set(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return edit


def _vm_spec_edit(at: list[int], **change: Any) -> Callable[[dict[str, Any]], None]:
    """Give the scenario's first VMs' specs (changed) at indices `at` (schema 4: vm_specs
    holds the VMs that differ from the scenario's, vm_specs_at says which)."""
    def edit(doc: dict[str, Any]) -> None:
        world = doc["world"]
        own = world["scenario"]["vms"]
        world["vm_specs"] = [{**own[k], **change} for k in range(len(at))]
        world["vm_specs_at"] = at
    return edit


def _arr(name: str, fn: Callable[[np.ndarray], Any]) -> Callable[[dict[str, Any]], None]:
    def edit(arrays: dict[str, Any]) -> None:
        arrays[name] = fn(arrays[name].copy())
    return edit


def _zero(a: np.ndarray) -> np.ndarray:
    a[:] = 0
    return a


def _dup_free(a: np.ndarray) -> np.ndarray:
    a[1] = a[0] - 1  # slot 1 holds slot 0's frame (a slot holds its frame minus the slot)
    return a


def _first(a: np.ndarray, value: Any) -> np.ndarray:
    a.flat[0] = value
    return a


def _damage_hints(arrays: dict[str, Any]) -> None:
    """A full open-addressing hint table (a lookup that never ends), or, in the fixed-size
    layout, every slot naming a page that does not exist."""
    if "sharing.hints.keys" in arrays:
        arrays["sharing.hints.keys"] = np.full_like(arrays["sharing.hints.keys"], 7)
    else:
        arrays["sharing.hints.entry"] = np.full_like(arrays["sharing.hints.entry"],
                                                     (1 << 29) - 1)


def save_cases(cache: Path) -> Iterator[Case]:
    base = make_base(cache)
    other = make_base(cache, "other", seed=9, ticks=4)
    H, W, A, F = ("save: header", "save: world data", "save: arrays", "save: files")
    R = REFUSE
    W0 = ("world",)
    world_edits: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
        ("schema_version 0", R, _set(*W0, "schema_version", value=0)),
        ("schema_version -1", R, _set(*W0, "schema_version", value=-1)),
        ("schema_version 999", R, _set(*W0, "schema_version", value=999)),
        ("schema_version 'x'", R, _set(*W0, "schema_version", value="x")),
        ("negative tick", R, _set(*W0, "tick", value=-1)),
        ("tick 2^40", R, _set(*W0, "tick", value=2**40)),
        ("history a string", R, _set(*W0, "history", value="lots")),
        ("history of strings", R, _set(*W0, "history", value={"profit": ["x", "y"]})),
        ("history edited values", EITHER, _set(*W0, "history", value={"profit": [1.0, 2.0]})),
        ("money as a string", R, _set(*W0, "money", "revenue", value="a lot")),
        ("money infinite", R, _set(*W0, "money", "costs", value=float("inf"))),
        ("money missing", R, _set(*W0, "money", value={})),
        ("RNG state negative", R, _set(*W0, "streams", "workload", "state", value="-5")),
        ("RNG state 2^200", R, _set(*W0, "streams", "workload", "state", value=str(2**200))),
        ("RNG state a list", R, _set(*W0, "streams", "workload", value=[1])),
        ("unknown RNG stream", R, _set(*W0, "streams", "chaos", value={
            "state": "1", "inc": "1", "has_uint32": 0, "uinteger": 0})),
        ("short thresholds", R, _set(*W0, "reclaim_thresholds", value=[0.05])),
        ("rising thresholds", R, _set(*W0, "reclaim_thresholds",
                                      value=[0.01, 0.02, 0.03, 0.04])),
        ("salting level 7", R, _set(*W0, "sharing_salting", value=7)),
        ("timeline cursor past the end", R, _set(*W0, "timeline_next", value=99)),
        ("objective verdict of objective 99", R, _set(*W0, "objective_verdicts",
                                                      value=[[99, 1.0, True]])),
        ("pending garbage command", R, _set(*W0, "pending", value=[{"kind": "nope"}])),
        ("pending shares 1e23", R, _set(*W0, "pending", value=[
            {"kind": "set_shares", "vm": "a", "shares": 1e23}])),
        ("next_unique_content small", R, _set(*W0, "next_unique_content", value="5")),
        ("VM spec memory changed", R, _vm_spec_edit([0], memory=1 << 30)),
        ("vm_specs_at past the VMs", R, _vm_spec_edit([99])),
        ("vm_specs_at descending", R, _vm_spec_edit([1, 0])),
        ("vm_specs_at one short", R, lambda d: d["world"].update(vm_specs_at=[])
         if d["world"]["vm_specs"] else d["world"].update(vm_specs_at=[0])),
        # The migration table's plain part (its columns are arrays, edited below).
        ("migration rows miscounted", R, _set(*W0, "migrations", "n", value=2)),
        ("migration removed", R, _set(*W0, "migrations", value=[])),
        ("migration duplicated", R, lambda d: d["world"]["migrations"].update(
            n=2, reasons=d["world"]["migrations"]["reasons"] * 2,
            rounds=d["world"]["migrations"]["rounds"] * 2)),
        ("migration arena live negative", R, _set(*W0, "migrations", "live",
                                                  value=[-1, 0, 0, 0])),
        ("host renamed", R, _set(*W0, "scenario", "hosts", 0, "id", value="hX")),
        ("scenario VM host renamed", R, _set(*W0, "scenario", "vms", 0, "host", value="h9")),
        ("scenario page size changed", R, _set(*W0, "scenario", "scenario", "page_size",
                                               value=8192)),
        ("world missing", R, lambda d: d.pop("world")),
        ("world a list", R, _set("world", value=[1, 2])),
    ]
    yield _case("valid as written", "save: valid", ACCEPT, base)
    for name, expect, edit in world_edits:
        yield _case(name, W, expect, base, edit_doc=edit)
    header = ("overcommit_save",)
    header_edits: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("sidecar with ..", _set(*header, "sidecar", value="../base.arrays.npz")),
        ("sidecar with /", _set(*header, "sidecar", value="sub/base.arrays.npz")),
        ("sidecar absolute", _set(*header, "sidecar", value="/etc/passwd")),
        ("sidecar empty", _set(*header, "sidecar", value="")),
        ("sidecar a number", _set(*header, "sidecar", value=7)),
        ("checksum wrong", _set(*header, "sidecar_sha256", value="0" * 64)),
        ("checksum missing", lambda d: d["overcommit_save"].pop("sidecar_sha256")),
        ("header a string", _set(*header, value="yes")),
    ]
    for name, edit in header_edits:
        yield _case(name, H, R, base, edit_doc=edit)

    def other_sidecar(save: Path, sidecar: Path, doc: dict[str, Any]) -> None:
        # The sidecar of another save, its checksum copied too: only its id differs.
        odoc = tomllib.loads(other.read_text())
        src = other.with_name(odoc["overcommit_save"]["sidecar"])
        shutil.copy(src, sidecar)
        doc["overcommit_save"]["sidecar_sha256"] = odoc["overcommit_save"]["sidecar_sha256"]
        save.write_text(tomli_w.dumps(doc))

    def truncated(save: Path, sidecar: Path, doc: dict[str, Any]) -> None:
        data = sidecar.read_bytes()[:-500]
        sidecar.write_bytes(data)
        doc["overcommit_save"]["sidecar_sha256"] = hashlib.sha256(data).hexdigest()
        save.write_text(tomli_w.dumps(doc))

    def missing(save: Path, sidecar: Path, doc: dict[str, Any]) -> None:
        sidecar.unlink()

    def a_directory(save: Path, sidecar: Path, doc: dict[str, Any]) -> None:
        sidecar.unlink()
        sidecar.mkdir()

    def binary_toml(save: Path, sidecar: Path, doc: dict[str, Any]) -> None:
        save.write_bytes(b"[overcommit_save]\n\xff\xfe" + bytes(range(256)))

    for name, fn in (("another save's sidecar", other_sidecar), ("sidecar truncated", truncated),
                     ("sidecar missing", missing), ("sidecar a directory", a_directory),
                     ("save TOML binary", binary_toml)):
        yield _case(name, F, R, base, edit_files=fn)
    yield _case("validate a damaged save", F, R, base, edit_files=truncated,
                argv=["validate", "{save}"])
    array_edits: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("refcounts zeroed", _arr("frames.refcount", _zero)),
        ("duplicate free-frame entry", _arr("frames.free_stack_delta", _dup_free)),
        ("page location 99", _arr("pages.location", lambda a: _first(a, 99))),
        ("page frame out of range", _arr("pages.frame", lambda a: _first(a, 2**30))),
        ("page frame of another host", _arr("pages.frame", lambda a: np.where(
            a >= 0, a + a.size // 4, a).astype(a.dtype))),
        ("pages as int64", _arr("pages.frame", lambda a: a.astype(np.int64))),
        ("pages one short", _arr("pages.content", lambda a: a[:-1])),
        ("frames 2-D", _arr("frames.refcount", lambda a: a.reshape(1, -1))),
        ("reads 1e30 per second", _arr("vms.reads_per_s", lambda a: _first(a, 1e30))),
        ("VM host 99", _arr("vms.host", lambda a: _first(a, 99))),
        ("shares negative", _arr("vms.shares", lambda a: _first(a, -5))),
        ("throttle NaN", _arr("vms.throttle", lambda a: _first(a, np.nan))),
        ("hint table full or garbage", _damage_hints),
        ("frame keys of different lengths", _arr("sharing.frame_key_keys",
                                                 lambda a: np.append(a, np.uint64(5)))),
        ("frame key of a frame past the hosts'", lambda arrays: arrays.update({
            "sharing.frame_key_frames": np.append(arrays["sharing.frame_key_frames"],
                                                  np.int32(2**30)),
            "sharing.frame_key_keys": np.append(arrays["sharing.frame_key_keys"],
                                                np.uint64(5))})),
        ("free count above frames", _arr("hosts.free_count", lambda a: a + 10**6)),
        ("migration send list outside its VM", _arr("migrations.lists.entry",
                                                    lambda a: a + 10**7)),
        ("migration of VM 99", _arr("migrations.vm", lambda a: _first(a, 99))),
        ("migration to its source", lambda arrays: arrays.update(
            {"migrations.dst": arrays["migrations.src"].copy()})),
        ("migration status bogus", _arr("migrations.status", lambda a: _first(a, 17))),
        ("migration mode bogus", _arr("migrations.mode", lambda a: _first(a, 9))),
        ("migration cursor past the end", _arr("migrations.cursor",
                                               lambda a: _first(a, 10**9))),
        ("migration throttle 5", _arr("migrations.throttle", lambda a: _first(a, 5.0))),
        ("migration rate NaN", _arr("migrations.round_rate", lambda a: _first(a, np.nan))),
        ("migration bytes negative", _arr("migrations.bytes_sent",
                                          lambda a: _first(a, -5))),
        ("migration page region outside its arena", _arr("migrations.page_base",
                                                         lambda a: _first(a, 10**9))),
        ("array missing", lambda arrays: arrays.pop("pages.location")),
        ("object array", lambda arrays: arrays.update(
            {"pages.location": np.array([{"x": 1}], dtype=object)})),
        ("link capacity infinite", _arr("net.link_capacity",
                                        lambda a: _first(a, np.inf))),
    ]
    for name, edit in array_edits:
        yield _case(name, A, R, base, edit_arrays=edit)
