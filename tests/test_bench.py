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


def _timed_row(kind, turns):
    """A row as :func:`bench.run` writes it, from each framework's turns (ms, one a repeat)."""
    import statistics

    frameworks = {name: {"median_ms": statistics.median(t), "min_ms": min(t), "turns_ms": list(t)}
                  for name, t in turns.items()}
    ours = frameworks["tconv"]
    return {"spec": {"kind": kind}, "frameworks": frameworks,
            "ratios": {n: f["median_ms"] / ours["median_ms"] for n, f in frameworks.items() if n != "tconv"},
            "ratios_of_minimums": {n: f["min_ms"] / ours["min_ms"] for n, f in frameworks.items() if n != "tconv"}}


def test_summary_intervals_resample_the_repeats_paired():
    # the machine's speed moves each repeat (x1 .. x2), torch 1.5x tconv's time in every one:
    # paired by repeat the ratio never moves, drawn apart it would
    speed = [1.0, 2.0, 1.2, 1.8, 1.1, 1.9, 1.5]
    rows = [_timed_row("transpose", {"tconv": [s for s in speed], "torch": [1.5 * s for s in speed]}),
            _timed_row("transpose", {"tconv": [2 * s for s in speed], "torch": [s for s in speed]})]
    s = bench._summary(rows, ["torch"], resamples=300)["transpose"]["torch"]
    assert s["geomean"] == pytest.approx(math.sqrt(1.5 * 0.5)) and s["min"] == pytest.approx(0.5)
    assert s["geomean_interval"] == pytest.approx([s["geomean"]] * 2)
    assert s["min_interval"] == pytest.approx([0.5, 0.5])
    assert bench._summary(rows, ["torch"], resamples=300)["transpose"]["fastest_of_others"] == s


def test_percentiles_interpolate_between_neighbours():
    assert bench._percentiles(list(range(101)), 0.05) == [5, 95]
    assert bench._percentiles([3.0, 1.0], 0.25) == [1.5, 2.5]
    assert bench._percentiles([2.0], 0.05) == [2.0, 2.0]


def test_summary_intervals_span_the_noise_and_are_reproducible(monkeypatch):
    tconv_turns = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    torch_turns = [1.0, 1.4, 1.1, 1.3, 1.2, 1.6, 1.15]  # noise that is torch's own
    rows = [_timed_row("transpose", {"tconv": tconv_turns, "torch": torch_turns, "onnxruntime": tconv_turns}),
            _timed_row("conv", {"tconv": tconv_turns, "torch": tconv_turns})]
    summary = bench._summary(rows, ["torch", "onnxruntime"], resamples=500)
    torch = summary["transpose"]["torch"]
    lo, hi = torch["geomean_interval"]
    assert torch["geomean"] == pytest.approx(1.2) and lo < 1.2 < hi  # 1.2: the median of torch's turns
    assert 1.0 <= lo and hi <= 1.6 and torch["min_interval"] == [lo, hi]  # one row: its lowest is its mean
    # onnxruntime's turns equal tconv's, so it is the fastest of the others in every resample
    assert summary["transpose"]["fastest_of_others"]["geomean_interval"] == pytest.approx([1.0, 1.0])
    assert summary["conv"]["torch"]["geomean_interval"] == pytest.approx([1.0, 1.0])
    # more rows of their own noise: a mean of many values, which moves from draw to draw
    rng = __import__("random").Random(1)
    noisy = [_timed_row("transpose", {"tconv": [rng.uniform(1, 2) for _ in range(9)],
                                      "torch": [rng.uniform(1, 2) for _ in range(9)]}) for _ in range(6)]
    wide = bench._summary(noisy, ["torch"], resamples=400)["transpose"]["torch"]
    assert bench._summary(noisy, ["torch"], resamples=400)["transpose"]["torch"] == wide  # seeded
    assert wide["geomean_interval"][0] < wide["geomean"] < wide["geomean_interval"][1]
    monkeypatch.setattr(bench, "INTERVAL", 0.5)  # the middle half of the same draws: inside, narrower
    half = bench._summary(noisy, ["torch"], resamples=400)["transpose"]["torch"]["geomean_interval"]
    assert wide["geomean_interval"][0] < half[0] < half[1] < wide["geomean_interval"][1]
    # rows written before turns were kept: no interval, the rest as before
    for row in rows:
        for f in row["frameworks"].values():
            del f["turns_ms"]
    assert "geomean_interval" not in bench._summary(rows, ["torch"], resamples=50)["transpose"]["torch"]


def test_the_summary_line_gives_the_intervals():
    report = {"frameworks": {"tconv": "ok", "torch": "ok"}, "info": {}, "repeats": 7, "settle_seconds": 0.15,
              "warm_seconds": 0.02, "block_seconds": 0.02, "rows": [], "interval": 0.9,
              "summary": {"transpose": {"torch": {"geomean": 1.17, "min": 0.91, "geomean_of_minimums": 1.1,
                                                  "geomean_interval": [1.12, 1.21], "min_interval": [0.86, 0.95]}}}}
    assert ("- transpose: tconv vs torch: geometric-mean speed ratio 1.17, lowest 0.91 (from minimums: 1.10); "
            "over the repeats resampled (90% interval): mean 1.12-1.21, lowest 0.86-0.95") in bench.format_table(report)


def test_the_gemm_share_divides_by_the_median_of_the_runs_measurements():
    samples = [{"2048": 122.0, "4096": 135.0}, {"2048": 190.0, "4096": 180.0}, {"2048": 185.0, "4096": 150.0}]
    assert bench._gemm_summary(samples) == {"2048": 185.0, "4096": 150.0}
    report = {"frameworks": {"tconv": "ok"}, "repeats": 2, "settle_seconds": 0.15, "warm_seconds": 0.02,
              "block_seconds": 0.02, "rows": [], "summary": {},
              "info": {"tconv": {"processor": "p", "cores": 2, "python": "3", "numpy": "2", "blas": [],
                                 "gemm_gflops": bench._gemm_summary(samples), "gemm_gflops_measured": samples}}}
    assert ("float32 GEMM: 2048^3 185 GFLOP/s (median of 3: 122-190), 4096^3 150 GFLOP/s (median of 3: 135-180)"
            in bench.format_table(report))


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
        assert timed["median_ms"] > 0 and timed["turns_ms"] == [timed["median_ms"]]  # one repeat
        # the GEMM measured at the setup and again after the repeat; the share divides by their median
        machine = report["info"]["tconv"]
        measured = machine["gemm_gflops_measured"]
        assert len(measured) == 2 and machine["gemm_gflops"] == bench._gemm_summary(measured)
        row = report["rows"][0]
        assert row["tconv_gemm_share"] == pytest.approx(row["tconv_gflops"] / max(machine["gemm_gflops"].values()))
        # a tiny layer takes well under a millisecond: a 10 ms block holds many calls
        assert (timed["timed_calls_per_turn"] == 1) if block == 0 else (timed["timed_calls_per_turn"] > 1)


def test_cold_and_explicit_turn_lengths_exclude_each_other(capsys):
    from tconv.cli import main

    assert main(["bench", "--cold", "--warm", "0.1", "--frameworks", "tconv"]) == 2
    assert "--cold=True sets --warm and --block to 0 itself" in capsys.readouterr().err
    assert main(["bench", "--block", "-1", "--frameworks", "tconv"]) == 2
    assert "--block=-1.0 must be between 0 and 60 seconds" in capsys.readouterr().err
