"""The benchmark's arithmetic (no timing here: speed is measured by `tconv bench`, not tests)."""

from __future__ import annotations

import math

import pytest

from tconv import bench


def _row(kind, ratios, of_minimums):
    return {"spec": {"kind": kind}, "ratios": ratios, "ratios_of_minimums": of_minimums}


def test_summary_geometric_means_from_medians_and_minimums():
    rows = [_row("transpose", {"torch": 2.0, "onnxruntime": 0.5}, {"torch": 1.0, "onnxruntime": 0.25}),
            _row("transpose", {"torch": 0.5, "onnxruntime": 2.0}, {"torch": 4.0, "onnxruntime": 1.0}),
            _row("conv", {"torch": 3.0}, {"torch": 3.0})]
    s = bench._summary(rows, ["torch", "onnxruntime"])
    assert s["transpose"]["torch"] == pytest.approx({"geomean": 1.0, "min": 0.5, "geomean_of_minimums": 2.0})
    assert s["transpose"]["onnxruntime"] == pytest.approx({"geomean": 1.0, "min": 0.5,
                                                           "geomean_of_minimums": 0.5})
    # the fastest framework per workload: 0.5 on both (medians), 0.25 and 1.0 (minimums)
    assert s["transpose"]["fastest_of_others"] == pytest.approx({"geomean": 0.5, "min": 0.5,
                                                                 "geomean_of_minimums": 0.5})
    assert s["conv"]["torch"]["geomean"] == pytest.approx(3.0)
    assert "onnxruntime" not in s["conv"] and s["unet"] == {}


def test_multiply_adds_follow_the_geometry():
    w = bench.Workload("seed", "transpose", 1, (8, 8), 1024, 512, 3, 2)
    assert bench.multiply_adds(w) == 8 * 8 * 9 * 1024 * 512
    grad = bench.Workload("seed", "transpose-grad", 1, (8, 8), 1024, 512, 3, 2)
    assert bench.multiply_adds(grad) == 2 * bench.multiply_adds(w)
    assert math.isclose(bench.multiply_adds(bench.Workload("c", "conv", 2, (4, 4), 3, 5, 3, 1)), 2 * 16 * 9 * 15)


def test_a_turn_times_one_call_after_its_warm_calls():
    calls = []

    def fn():
        calls.append(len(calls))

    assert bench._timed(fn, 2) >= 0 and len(calls) == 3
    assert bench._timed(fn, 0) >= 0 and len(calls) == 4


def test_the_table_states_the_protocol():
    report = {"frameworks": {"tconv": "ok"}, "info": {}, "repeats": 7, "settle_seconds": 0.15,
              "warm_calls_per_turn": 1, "rows": [], "summary": {}}
    assert "1 untimed call, then the timed call (warm)" in bench.format_table(report)
    report["warm_calls_per_turn"] = 0
    assert "then the timed call (cold)" in bench.format_table(report)


def test_the_protocol_reaches_the_worker():
    """One repeat of one tiny workload through a real tconv worker process, warm and cold."""
    tiny = [bench.Workload("tiny", "transpose", 1, (4, 4), 8, 4, 3, 2)]
    for warm in (0, 1):
        report = bench.run(tiny, frameworks=("tconv",), repeats=1, settle=0, warm=warm)
        assert report["frameworks"] == {"tconv": "ok"} and report["warm_calls_per_turn"] == warm
        assert report["rows"][0]["frameworks"]["tconv"]["median_ms"] > 0
