"""A closed-loop workload's pace (engine/workloads/phase.py): it issues its next operation
when the last is done, so its waits on faults set how much of its nominal rate it runs."""

import numpy as np

from engine.state import GuestKind
from tests.conftest import paper_vms_at

FIG7 = "esx-fig7-idle-tax"  # an idle VM and a closed-loop dbench with a cold page cache


def test_a_cold_page_cache_slows_the_first_tick_not_the_next() -> None:
    """dbench in Fig. 7 reads 20,000 blocks a second, and every read of its cold cache
    misses and waits 500 us for the guest's disk: about 1,800 reads a second fit. With the
    pace one tick behind, its first tick ran at the full 20,000 a second at any tick
    length, so its cache after 4 s held 19,447 pages at 0.5 s ticks, 21,840 at 1 s and
    21,531 at 2 s; paced by the misses its cache's state predicts, the first tick is as
    slow as the ones after it, and the three agree."""
    dbench = paper_vms_at(FIG7, 1.0, 1.0).index("vm2-dbench")
    cached = []
    for tick in (0.5, 1.0, 2.0):
        vms = paper_vms_at(FIG7, tick, tick)  # its first tick
        assert vms["file_reads_tick"][dbench] / tick < 3000
        assert vms["speed"][dbench] < 0.2
        cached.append(paper_vms_at(FIG7, tick, 4.0)["kind_count"][dbench, GuestKind.CACHE])
    np.testing.assert_allclose(cached, cached[0], rtol=0.05)
