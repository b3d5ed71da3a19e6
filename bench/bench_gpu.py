"""The ``--gpu`` benchmark: bert-base's architecture, A / B / C eager and compiled, MFU over a bf16/fp16 peak."""

from __future__ import annotations

from pathlib import Path

from bench_report import busy_reasons, gpu_report_lines, speedup_line, summarize
from bench_runs import matmul_peak_isolated, run_isolated

PEAK_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
"""The matmul dtype whose peak is the MFU denominator of a run in each precision."""


def gpu_benchmark(
    spec: dict, compile_modes=(False, True), run=run_isolated, measure_peak=matmul_peak_isolated, log=print
) -> dict:
    """A, B and C eager and compiled; the report's ``speedup`` compares the eager runs, ``compile_gain`` C's two.
    MFU is over the peak of a matmul in the runs' precision (bf16 or fp16), measured after the runs."""
    results = []
    for compiled in compile_modes:
        for setting in "ABC":
            result = run(setting, {**spec, "compile": compiled})
            result["setting"] = setting + ("+compile" if compiled else "")
            results.append(result)
            peak = result.get("peak_cuda_allocated_mb", result["peak_rss_mb"])
            log(
                f"  {result['setting']:10} {result['precision']}: {result['samples_per_s']:.0f} samples/s after warm-up, "
                f"{result['train_seconds']:.1f} s for all {result['steps']} steps "
                f"({'3 epochs' if spec['steps'] < 0 else 'quick'}), padding {result['padding_efficiency']:.3f}, "
                f"peak {peak:.0f} MiB"
            )
    precision = results[0]["precision"]
    peak = measure_peak({**spec, "peak_dtype": PEAK_DTYPES[precision]})
    summary = summarize(results, peak["flops_per_s"])
    report = {
        "config": {k: v for k, v in spec.items() if k != "workdir"},
        "precision": precision,
        "peak": peak,
        "runs": results,
        "summary": summary,
        "speedup": speedup_line(summary),
    }
    report["busy"] = busy_reasons(report)  # one run per setting: only an MFU over 100% can show it
    if "C+compile" in summary:
        report["compile_gain"] = summary["C+compile"]["samples_per_s"] / summary["C"]["samples_per_s"]
    for line in gpu_report_lines(report, epochs=spec["epochs"] if spec["steps"] < 0 else None):
        log(line)
    return report


def save_random_bert_base(folder: Path, tokenizer_source: str) -> Path:
    """bert-base-uncased's configuration with random weights, saved with a bert-base-uncased vocabulary tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel, set_seed

    from mrpc_finetune.models import resolve_model_path

    set_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)  # BertConfig() defaults are bert-base: 12 x 768, vocab 30522
    AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_source)).save_pretrained(folder)
    return folder
