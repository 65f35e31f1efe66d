"""The whole fuzz corpus (tests/fuzz/): every malformed scenario, save, command line and
console command, each in a forked child under a timeout and a 4 GiB address-space limit,
then a table of outcomes by category and every finding.

    python benchmarks/fuzz.py [--only TEXT] [--timeout S] [--kill-points N] [--examples N]

The test suite runs a fixed sample of the same cases (tests/app/test_fuzz.py). Besides
the table, this runs the save-kill experiment at many points (benchmarks/fuzz.py
--kill-points) and the hypothesis state machines with more examples.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz.corpus import all_cases  # noqa: E402
from tests.fuzz.runner import Outcome, run_case  # noqa: E402
from tests.fuzz.savekill import kill_experiment  # noqa: E402


def run_all(only: str, timeout_s: float) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="overcommit-fuzz-") as tmp:
        cases = [c for c in all_cases(Path(tmp) / "cache")
                 if only in c.name or only in c.category]
        outcomes: list[Outcome] = []
        for i, case in enumerate(cases):
            outcomes.append(run_case(case, Path(tmp) / f"case{i}", timeout_s))
            done = outcomes[-1]
            mark = "." if done.verdict == "ok" else "!"
            print(mark, end="", flush=True)
        print()
    return outcomes


def table(outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    by_cat: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        by_cat[o.case.category][o.verdict] += 1
        kinds[o.case.category][o.kind] += 1
    verdicts = sorted({o.verdict for o in outcomes}, key=lambda v: (v != "ok", v))
    head = f"{'category':<32}{'cases':>6}  " + "  ".join(f"{v:>14}" for v in verdicts)
    print(head)
    print("-" * len(head))
    for cat in sorted(by_cat):
        row = by_cat[cat]
        print(f"{cat:<32}{sum(row.values()):>6}  "
              + "  ".join(f"{row.get(v, 0):>14}" for v in verdicts))
    total = Counter(o.verdict for o in outcomes)
    print("-" * len(head))
    print(f"{'all':<32}{len(outcomes):>6}  " + "  ".join(f"{total.get(v, 0):>14}"
                                                      for v in verdicts))
    refused = sum(1 for o in outcomes if o.kind == "error")
    accepted = sum(1 for o in outcomes if o.kind == "accepted")
    print(f"\noutcomes: {refused} one-line errors (exit 2), {accepted} accepted, "
          f"{len(outcomes) - refused - accepted} other; "
          f"slowest case {max(o.seconds for o in outcomes):.1f} s")
    findings = [o for o in outcomes if o.verdict != "ok"]
    if findings:
        print(f"\n{len(findings)} findings:")
        for o in findings:
            last = (o.stderr.strip().splitlines() or [""])[-1][:150]
            print(f"  [{o.verdict}] {o.case.category}: {o.case.name} (exit {o.code}) {last}")


def state_machines(examples: int) -> int:
    env = {**os.environ, "OVERCOMMIT_FUZZ_EXAMPLES": str(examples)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                             "-n", "0", "tests/engine/test_state_machine.py"],
                            cwd=ROOT, env=env, check=False)
    print(f"state machines at {examples} examples: exit {result.returncode} "
          f"({time.perf_counter() - start:.0f} s)")
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="cases whose name or category contains it")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--kill-points", type=int, default=60,
                        help="kills while overwriting a save (0: skip)")
    parser.add_argument("--examples", type=int, default=0,
                        help="hypothesis examples for the state machines (0: skip)")
    args = parser.parse_args()
    outcomes = run_all(args.only, args.timeout)
    table(outcomes)
    bad = sum(1 for o in outcomes if o.verdict != "ok")
    if args.kill_points:
        with tempfile.TemporaryDirectory(prefix="overcommit-kill-") as tmp:
            bad += kill_experiment(Path(tmp), args.kill_points, verbose=True)
    if args.examples:
        bad += state_machines(args.examples)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
