"""bench/bench.py on the tiny model and data: every setting runs, the report has its parts, the last line its form."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import torch

from mrpc_finetune.hardware import pad_to_multiple_of, select_precision

from .conftest import REPO

TINY_ENCODER_PARAMS = 2 * (4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 4 * 32)
"""Non-embedding encoder parameters of conftest's tiny BERT: 2 layers, width 32, feed-forward 64."""


def tiny_spec(model_dir, data_dir, **settings) -> dict:
    """A benchmark spec for the tiny model and fixture data: 2 steps of batch 8."""
    return {"model": str(model_dir), "data": str(data_dir), "seed": 0, "batch_size": 8, "steps": 2, **settings}


@pytest.fixture(scope="module")
def bench():
    """bench/bench.py, the command; loading it puts bench/ on sys.path for its bench_* modules."""
    spec = importlib.util.spec_from_file_location("mrpc_bench", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(bench):
    return importlib.import_module("bench_runs")


@pytest.fixture(scope="module")
def reporting(bench):
    return importlib.import_module("bench_report")


@pytest.mark.slow  # benchmark drivers: timed runs of every setting
def test_bench_settings_and_report(bench, runs, reporting, tiny_model_dir, tiny_mrpc_dir, tmp_path):
    spec = tiny_spec(tiny_model_dir, tiny_mrpc_dir, warmup=1, workdir=str(tmp_path / "work"), overhead=True)
    logged = []
    results = bench.run_benchmark(spec, repeats=1, isolate=False, log=logged.append)
    assert [r["setting"] for r in results] == ["A", "B", "C"] and len(logged) == 3
    by_setting = {r["setting"]: r for r in results}
    for result in results:
        assert result["steps"] == 2 and result["steps_timed"] == 1 and result["samples"] == 8
        assert result["seconds"] > 0 and result["ms_per_step"] > 0 and result["peak_rss_mb"] > 0
    assert by_setting["A"]["padded_tokens"] == 8 * 128  # every row padded to max_length
    assert by_setting["A"]["padding_efficiency"] < by_setting["B"]["padding_efficiency"]
    assert by_setting["C"]["padding_efficiency"] > 0.8  # one length-bucket batch of the 64 tiny rows
    assert set(by_setting["C"]["overhead"]) >= {"trainer_ms_per_step", "bare_ms_per_step", "ratio", "cpu_ratio"}
    assert "overhead" not in by_setting["A"] and "overhead" not in by_setting["B"]
    # model FLOPs count the real tokens only: A trains the same rows as B with more padding, not more model FLOPs
    for result in results:
        assert result["model_flops"] > 6 * TINY_ENCODER_PARAMS * result["real_tokens"]
        assert result["model_flops_per_s"] == pytest.approx(result["model_flops"] / result["seconds"])

    peak = runs.matmul_peak({"peak_size": 128})
    assert peak["dtype"] == "float32" and peak["device"] == "cpu" and peak["flops_per_s"] > 0
    summary = reporting.summarize(results, peak["flops_per_s"])
    for setting in "ABC":
        assert summary[setting]["mfu"] == pytest.approx(summary[setting]["model_flops_per_s"] / peak["flops_per_s"])
    report = {
        "summary": summary,
        "peak": peak,
        "overhead": reporting.overhead_summary(results),
        "startup": None,
        "json": str(tmp_path / "bench.json"),
        "png": str(tmp_path / "bench.png"),
    }
    lines = reporting.report_lines(report)
    assert re.fullmatch(r"speedup C/A=\d+\.\d\d C/B=\d+\.\d\d", lines[-1])
    ratio = summary["C"]["samples_per_s"] / summary["A"]["samples_per_s"]
    assert lines[-1].startswith(f"speedup C/A={ratio:.2f} ")
    assert any(line.startswith("framework overhead:") for line in lines)
    assert any(line.startswith("MFU = model FLOPs of the real tokens") for line in lines)
    assert lines[0].split()[8] == "MFU" and re.fullmatch(r"\d+\.\d%", lines[1].split()[6])
    json.dumps(report)  # the report is written as JSON
    reporting.plot(summary, tmp_path / "bench.png", "tiny")
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_mode_refuses_without_cuda(bench, tiny_mrpc_dir, capsys):
    assert bench.main(["--data", str(tiny_mrpc_dir), "--gpu"]) == 2
    assert "--gpu needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow  # two full CLI runs: ~15 s on a quiet machine, more under load
def test_startup_probe_finds_the_map_cache(bench, tiny_model_dir, tiny_mrpc_dir, tmp_path):
    """Two real `mrpc-finetune train ... train.max_steps=1` runs: the second tokenizes nothing."""
    startup = importlib.import_module("bench_startup").measure_startup(
        str(tiny_mrpc_dir), str(tiny_model_dir), str(tmp_path)
    )
    assert startup["retokenized_nothing"]
    warm = startup["warm_run"]
    assert 0 < warm["seconds_to_first_step"] < warm["total_seconds"]
    assert set(warm["tokenized"]) == set(startup["first_run"]["tokenized"]) and len(warm["tokenized"]) == 2


@pytest.mark.slow  # benchmark drivers: timed runs of every setting
def test_gpu_benchmark_driver_runs_on_cpu(runs, reporting, tiny_model_dir, tiny_mrpc_dir, tmp_path):
    """The --gpu driver's glue, eager only and in this process (its CUDA runs need the lead's GPU machine)."""
    spec = tiny_spec(tiny_model_dir, tiny_mrpc_dir, epochs=3, warmup=10, workdir=str(tmp_path), peak_size=128)
    logged = []
    report = importlib.import_module("bench_gpu").gpu_benchmark(
        spec, compile_modes=(False,), run=runs.run_setting, measure_peak=runs.matmul_peak, log=logged.append
    )
    precision = select_precision("auto")  # fp32 here; bf16 or fp16 on a CUDA host
    assert list(report["summary"]) == ["A", "B", "C"] and report["precision"] == precision
    dtypes = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    assert report["peak"]["dtype"] == dtypes[precision]  # the peak is measured in the runs' precision
    assert re.fullmatch(r"speedup C/A=\d+\.\d\d C/B=\d+\.\d\d", report["speedup"])
    header, table, peak_line = logged[-5], logged[-4:-1], logged[-1]  # after the three per-run lines
    assert "all steps (quick)" in header  # spec steps > 0; a full run says "3 MRPC epochs"
    assert "3 MRPC epochs" in reporting.gpu_report_lines(report, epochs=3)[0]
    for line, setting in zip(table, "ABC", strict=True):
        seconds, mfu = line.split()[1], line.split()[5]
        assert line.startswith(setting) and float(seconds) > 0 and re.fullmatch(r"\d+\.\d%", mfu)
    assert peak_line.startswith("MFU = model FLOPs") and "float32 matmul peak" in peak_line
    json.dumps(report)


def test_compiled_runs_pad_to_a_multiple_of_16(runs, tiny_model_dir, tiny_mrpc_dir, tmp_path):
    """torch.compile recompiles per shape: compiled B and C batches are padded to 16, 32, ...; A stays at 128."""
    from mrpc_finetune.train.preparation import prepare

    spec = tiny_spec(tiny_model_dir, tiny_mrpc_dir, workdir=str(tmp_path))
    recipe = runs.setting_recipe("C", spec)
    prepared = prepare(recipe)
    longest = max(len(prepared.splits["train"][i]["input_ids"]) for i in range(5))
    eager = pad_to_multiple_of(select_precision("auto")) or 1  # fp32 on a CPU: no rounding; 8 under bf16 / fp16
    for compiled, expected in ((True, -(-longest // 16) * 16), (False, -(-longest // eager) * eager)):
        for setting in "ABC":
            train, collate = runs.setting_batches(setting, {**spec, "compile": compiled}, prepared, 128)
            width = collate([train[i] for i in range(5)])["input_ids"].shape[1]
            assert width == (128 if setting == "A" else expected)
