"""The vectorised hash map behaves exactly like a dict under any operation sequence."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.hashtable import U64Map, fix_key

keys_st = st.lists(st.integers(0, 40), max_size=30)  # small key space: many collisions
ops_st = st.lists(st.tuples(st.sampled_from(["put", "delete", "keep"]), keys_st), max_size=40)


@settings(max_examples=300, deadline=None)
@given(ops_st, st.integers(0, 3))
def test_matches_a_dict(ops: list[tuple[str, list[int]]], shift: int) -> None:
    table = U64Map(4)
    model: dict[int, tuple[int, int]] = {}
    for step, (op, raw) in enumerate(ops):
        keys = fix_key(np.array(raw, np.uint64) << np.uint64(shift * 20))
        if op == "put":
            vals = np.arange(len(raw), dtype=np.int64) + step * 100
            aux = (vals * 7).astype(np.uint64)
            table.put(keys, vals, aux)
            for k, v, a in zip(keys.tolist(), vals.tolist(), aux.tolist(), strict=True):
                model[k] = (v, a)
        elif op == "delete":
            removed = table.delete(keys)
            gone = {k for k in keys.tolist() if k in model}
            for k in gone:
                del model[k]
            assert removed == len(gone)
        else:
            k_all, v_all, _ = table.items()
            keep = (v_all % 2) == 0
            table.keep_only(keep)
            model = {k: va for k, va in model.items() if va[0] % 2 == 0}
        assert len(table) == len(model)
        probe = fix_key(np.arange(0, 45, dtype=np.uint64) << np.uint64(shift * 20))
        found, vals_out, aux_out = table.get(probe)
        for k, f, v, a in zip(probe.tolist(), found.tolist(), vals_out.tolist(),
                              aux_out.tolist(), strict=True):
            assert f == (k in model)
            if f:
                assert (v, a) == model[k]


def test_grows_and_survives_a_round_trip() -> None:
    table = U64Map(16)
    keys = fix_key(np.arange(10_000, dtype=np.uint64) * np.uint64(2654435761))
    table.put(keys, np.arange(10_000, dtype=np.int64), keys)
    assert len(table) == 10_000 and table.capacity >= 20_000
    again = U64Map.from_arrays(table.to_arrays("t"), "t")
    found, vals, aux = again.get(keys)
    assert found.all() and np.array_equal(vals, np.arange(10_000)) and np.array_equal(aux, keys)
