import threading

import pytest

from realtime_feat.offline.prefetch import prefetch


def test_order_and_exceptions_arrive_after_the_items_before_them():
    def items():
        yield from range(5)
        raise ValueError("broken at 5")

    got = []
    with pytest.raises(ValueError, match="broken at 5"):
        for x in prefetch(items(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_abandoning_stops_the_worker():
    before = threading.active_count()
    gen = prefetch(iter(range(10_000)), depth=2)
    assert next(gen) == 0
    gen.close()
    assert threading.active_count() == before
