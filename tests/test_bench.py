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


class _Clock:
    """A fake clock: each call of ``fn`` takes ``step`` seconds; ``calls`` logs which ran."""

    def __init__(self, step):
        self.now, self.step, self.calls = 0.0, step, 0

    def __call__(self):
        return self.now

    def fn(self):
        self.calls += 1
        self.now += self.step


def test_a_turn_warms_for_its_seconds_then_times_a_block_of_calls(monkeypatch):
    clock = _Clock(0.003)
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    # 0.02 s of warm calls at 3 ms each: 7 calls (the 7th crosses 0.02); then the block
    seconds, calls = bench._timed(clock.fn, 0.02, 0.02)
    assert calls == 7 and seconds == pytest.approx(0.003) and clock.calls == 14
    # warm 0: no untimed call; block 0: one timed call
    clock.calls = 0
    assert bench._timed(clock.fn, 0, 0) == (pytest.approx(0.003), 1) and clock.calls == 1
    # a call longer than warm and block: one of each, never none
    clock.calls, clock.step = 0, 0.5
    assert bench._timed(clock.fn, 0.02, 0.02) == (pytest.approx(0.5), 1) and clock.calls == 2


def test_a_block_times_the_mean_of_its_calls(monkeypatch):
    steps = iter([0.010, 0.001, 0.001, 0.002, 0.006])  # one warm call, then four timed ones
    clock = _Clock(0)

    def fn():
        clock.now += next(steps)

    monkeypatch.setattr(bench.time, "perf_counter", clock)
    assert bench._timed(fn, 0.005, 0.01) == (pytest.approx(0.0025), 4)


def test_the_table_states_the_protocol():
    report = {"frameworks": {"tconv": "ok"}, "info": {}, "repeats": 7, "settle_seconds": 0.15,
              "warm_seconds": 0.02, "block_seconds": 0.03, "rows": [], "summary": {}}
    assert ("untimed calls for 0.02 s (at least one), then timed calls back to back for 0.03 s (at least one), "
            "the turn's time their mean") in bench.format_table(report)
    report["block_seconds"] = 0
    assert "(at least one), then one timed call" in bench.format_table(report)
    report["warm_seconds"] = 0
    assert "0.15 s quiet, one timed call (cold)" in bench.format_table(report)


def test_the_protocol_reaches_the_worker():
    """One repeat of one tiny workload through a real tconv worker process, warm and cold."""
    tiny = [bench.Workload("tiny", "transpose", 1, (4, 4), 8, 4, 3, 2)]
    for warm, block in ((0, 0), (0.001, 0.01)):
        report = bench.run(tiny, frameworks=("tconv",), repeats=1, settle=0, warm=warm, block=block)
        assert report["frameworks"] == {"tconv": "ok"}
        assert (report["warm_seconds"], report["block_seconds"]) == (warm, block)
        timed = report["rows"][0]["frameworks"]["tconv"]
        assert timed["median_ms"] > 0
        # a tiny layer takes well under a millisecond: a 10 ms block holds many calls
        assert (timed["timed_calls_per_turn"] == 1) if block == 0 else (timed["timed_calls_per_turn"] > 1)


def test_cold_and_explicit_turn_lengths_exclude_each_other(capsys):
    from tconv.cli import main

    assert main(["bench", "--cold", "--warm", "0.1", "--frameworks", "tconv"]) == 2
    assert "--cold=True sets --warm and --block to 0 itself" in capsys.readouterr().err
    assert main(["bench", "--block", "-1", "--frameworks", "tconv"]) == 2
    assert "--block=-1.0 must be between 0 and 60 seconds" in capsys.readouterr().err
