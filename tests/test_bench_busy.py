"""``make bench`` notices a busy machine: matmul peaks or one setting's rounds that disagree by more than 15%, or an
MFU over 100%, are said in the report, and ``--strict`` exits 1. Fed made-up rounds; the benchmark does not run."""

from __future__ import annotations

import importlib.util
import json

import pytest

from .conftest import REPO

GFLOP = 1e9


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("mrpc_bench_busy", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts bench/ on sys.path for bench_report
    return module


@pytest.fixture(scope="module")
def reporting(bench):
    return importlib.import_module("bench_report")


def a_round(setting: str, repeat: int, seconds: float, flops_per_token: float = 1e5) -> dict:
    """One timed run: 10 steps of batch 32, 1600 real of 3200 padded tokens."""
    real, padded = 1600, 3200
    return {
        "setting": setting,
        "repeat": repeat,
        "seconds": seconds,
        "cpu_seconds": seconds,
        "samples": 320,
        "real_tokens": real,
        "padded_tokens": padded,
        "steps_timed": 10,
        "model_flops": real * flops_per_token,
        "train_seconds": seconds,
        "samples_per_s": 320 / seconds,
        "peak_rss_mb": 1000.0,
        "rss_growth_mb": 10.0,
        "padding_efficiency": real / padded,
        "ms_per_step": 100 * seconds,
    }


def a_peak(flops_per_s: float) -> dict:
    return {"flops_per_s": flops_per_s, "dtype": "float32", "device": "cpu", "size": 64, "torch_threads": 1}


def a_report(reporting, runs: list[dict], peaks: list[float]) -> dict:
    report = {"peaks": peaks, "peak": a_peak(max(peaks)), "runs": runs}
    report["summary"] = reporting.summarize(runs, max(peaks))
    return report


QUIET = [a_round(s, r, seconds) for r in (0, 1) for s, seconds in zip("ABC", (2.0, 1.5, 1.0), strict=True)]
"""Rounds that agree (each setting's two rounds take the same time); MFU far below 100%."""


def test_a_quiet_machine_gets_no_warning(reporting):
    report = a_report(reporting, QUIET, [100 * GFLOP, 95 * GFLOP, 97 * GFLOP])  # peaks within 5%
    assert reporting.busy_reasons(report) == []
    report["busy"] = []
    lines = reporting.report_lines(report)
    assert not any("busy" in line for line in lines)
    assert lines[-1].startswith("speedup C/A=2.00 C/B=1.50")


def test_peaks_that_disagree_mean_a_busy_machine(reporting):
    report = a_report(reporting, QUIET, [100 * GFLOP, 80 * GFLOP, 99 * GFLOP])  # 20% apart
    (reason,) = reporting.busy_reasons(report)
    assert reason == "the matmul peak varied by 20% over the run (80.0 to 100.0 GFLOP/s over 3 timings)"
    report["busy"] = [reason]
    lines = reporting.report_lines(report)
    assert f"WARNING: the machine was busy: these figures are not comparable (margin 15%): {reason}" in lines
    assert lines[-1].startswith("speedup C/A=")  # still the last line


def test_rounds_that_disagree_mean_a_busy_machine(reporting):
    runs = [*QUIET[:3], a_round("A", 1, 2.0), a_round("B", 1, 2.0), a_round("C", 1, 1.0)]  # B: 1.5 s then 2.0 s
    (reason,) = reporting.busy_reasons(a_report(reporting, runs, [100 * GFLOP, 100 * GFLOP]))
    assert reason == "B's 2 rounds differ by 25% (1600 to 2133 padded tokens/s)"
    runs = [*QUIET[:3], a_round("A", 1, 2.0), a_round("B", 1, 1.6), a_round("C", 1, 1.0)]  # 6%: noise
    assert reporting.busy_reasons(a_report(reporting, runs, [100 * GFLOP, 100 * GFLOP])) == []


def test_an_mfu_over_100_percent_means_a_busy_machine(reporting):
    runs = [a_round(s, 0, 1.0, flops_per_token=1e5 if s != "C" else 1e8) for s in "ABC"]  # C: 160 GFLOP/s
    report = a_report(reporting, runs, [100 * GFLOP])
    assert reporting.busy_reasons(report) == ["C's MFU is 160%, over 100%"]


def test_gpu_report_says_it_too(reporting):
    runs = [a_round(s, 0, 1.0, flops_per_token=1e8) for s in "ABC"]
    report = {"peak": a_peak(100 * GFLOP)}
    report["summary"] = reporting.summarize(runs, 100 * GFLOP)
    report["busy"] = reporting.busy_reasons(report)
    assert len(report["busy"]) == 3
    lines = reporting.gpu_report_lines(report, epochs=3)
    assert sum(line.startswith("WARNING: the machine was busy") for line in lines) == 3


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("busy", [False, True])
def test_strict_exits_1_only_on_a_busy_machine(bench, monkeypatch, tmp_path, tiny_mrpc_dir, capsys, strict, busy):
    """The command's wiring: peaks timed before and after each round, `busy` in bench.json, --strict's exit code."""
    peaks = iter([100 * GFLOP, 99 * GFLOP, 70 * GFLOP if busy else 98 * GFLOP])

    def fake_peak(function, spec):
        return a_peak(next(peaks))

    def fake_runs(spec, repeats, after_round):
        rounds = []
        for repeat in range(repeats):
            rounds += [a_round(s, repeat, seconds) for s, seconds in zip("ABC", (2.0, 1.5, 1.0), strict=True)]
            after_round()
        return rounds

    monkeypatch.setattr(bench, "in_fresh_process", fake_peak)
    monkeypatch.setattr(bench, "run_benchmark", fake_runs)
    monkeypatch.setattr(bench, "plot", lambda *args: None)
    argv = ["--data", str(tiny_mrpc_dir), "--out", str(tmp_path), "--no-startup", "--repeats", "2"]
    code = bench.main(argv + (["--strict"] if strict else []))
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["peaks"] == [100 * GFLOP, 99 * GFLOP, (70 if busy else 98) * GFLOP]
    assert written["peak"]["flops_per_s"] == 100 * GFLOP  # the highest timing is MFU's denominator
    assert bool(written["busy"]) == busy and ("WARNING: the machine was busy" in printed) == busy
    assert code == (1 if strict and busy else 0)
