"""Kill a process while it overwrites a save; what is left must load, old or new.

A child process (forked) overwrites an existing save and is SIGKILLed at a chosen point:
before its k-th file-system call (open, fsync, rename, unlink, close...), or after a random
delay. The parent then loads the save: it must be the old world or the new one, never
refused. A further save in the same folder must leave no temp file and no orphan sidecar.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fuzz.scenarios import small

HOOKED = ("open", "fsync", "replace", "unlink", "close", "fdopen", "rename", "scandir")


def _worlds(ticks: tuple[int, int] = (3, 6)) -> tuple[Any, Any]:
    from engine import Simulation, parse_scenario

    old = Simulation.from_spec(parse_scenario(small()))
    old.step(ticks[0])
    new = Simulation.from_spec(parse_scenario(small()))
    new.step(ticks[1])
    return old, new


def _hook_os(kill_at: int) -> Callable[[], int]:
    """Count calls of the hooked os functions; SIGKILL ourselves before call `kill_at`."""
    calls = [0]
    for name in HOOKED:
        real = getattr(os, name)

        def wrapper(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            calls[0] += 1
            return _real(*args, **kwargs)

        setattr(os, name, wrapper)
    return lambda: calls[0]


def _save_in_child(path: Path, sim: Any, kill_at: int | None) -> int:
    """Fork; the child overwrites the save (killed at `kill_at`, or not). Returns the
    number of hooked calls the child made when it was not killed (its exit status)."""
    from app.savefile import write_save

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        count = _hook_os(-1 if kill_at is None else kill_at)
        write_save(path, sim)
        os.write(write, str(count()).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    data = os.read(read, 64)
    os.close(read)
    return int(data) if os.WIFEXITED(status) and data else -1


def _timed_kill(path: Path, sim: Any, delay_s: float) -> None:
    from app.savefile import write_save

    pid = os.fork()
    if pid == 0:
        write_save(path, sim)
        os._exit(0)
    time.sleep(delay_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _check_left(path: Path, old_tick: int, new_tick: int) -> str | None:
    """What a killed save left: a loadable save (old or new), then, after one more save,
    no temp file and no orphan sidecar."""
    from app.savefile import read_save, write_save
    from engine import InputError

    try:
        sim = read_save(path)
    except InputError as err:
        return f"refused after the kill: {err}"
    if sim.tick not in (old_tick, new_tick):
        return f"loaded tick {sim.tick}, neither the old {old_tick} nor the new {new_tick}"
    write_save(path, sim)
    doc = tomllib.loads(path.read_text())
    expected = {path.name, doc["overcommit_save"]["sidecar"]}
    extra = sorted(p.name for p in path.parent.iterdir())
    left = [name for name in extra if name not in expected]
    return f"left behind after the next save: {left}" if left else None


def kill_experiment(folder: Path, points: int, verbose: bool = False,
                    every: int = 1) -> int:
    """Kill at every `every`-th file-system call of a save (all of them by default), then
    at `points` random moments; returns the number of failures."""
    from app.savefile import write_save

    old, new = _worlds()
    probe = folder / "probe"
    probe.mkdir(parents=True)
    write_save(probe / "s.toml", old)
    total_calls = _save_in_child(probe / "s.toml", new, None)
    start = time.perf_counter()
    write_save(probe / "t.toml", new)
    save_s = time.perf_counter() - start
    failures: list[str] = []
    kills = [("call", k) for k in range(0, total_calls + 1, every)]
    rng = random.Random(17)
    kills += [("time", rng.uniform(0.0, save_s * 1.5)) for _ in range(points)]
    for i, (how, at) in enumerate(kills):
        case = folder / f"kill{i}"
        case.mkdir()
        path = case / "s.toml"
        write_save(path, old)
        if how == "call":
            _save_in_child(path, new, int(at))
        else:
            _timed_kill(path, new, float(at))
        problem = _check_left(path, old.tick, new.tick)
        if problem:
            failures.append(f"kill at {how} {at}: {problem}")
    if verbose:
        print(f"\nsave killed at {len(kills)} points ({total_calls + 1} file-system calls of "
              f"a save, {points} random moments within {save_s * 1000:.0f} ms): "
              f"{len(kills) - len(failures)} left a loadable save, {len(failures)} did not")
        for failure in failures:
            print(f"  {failure}")
    return len(failures)
