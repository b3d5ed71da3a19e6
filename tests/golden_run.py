"""Golden runs: train through the command line on the CPU, then write each run's curves as JSON.

    python tests/golden_run.py SPEC_JSON     # [{"out": "curves.json", "arguments": ["mrpc", "loop=torch", ...]}, ...]

The runs share one process (its imports cost more than a tiny run), each from a clean Accelerate state. That
process is its own so that it is the CPU's fp32 path even on a CUDA host (``CUDA_VISIBLE_DEVICES`` is
emptied before torch loads) and on one thread (the same reduction order on any machine). What it records reads only
the run folder a user gets (``metrics.json`` and the TensorBoard events), never the package's internals, so moving
code cannot change what the golden test sees.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Before torch loads: no GPU, one thread.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

SCORE_TAGS = ("loss", "accuracy", "f1", "matthews_correlation", "pearson", "spearmanr")
"""The ``eval/*`` tags that are scores or losses: never runtimes, throughput or memory."""


def curves(run_dir: Path) -> dict:
    """Per-step training losses, every evaluation's loss and scores (by step), and the final scores of
    ``metrics.json``, as plain JSON."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    train_loss = {str(e.step): e.value for e in events.Scalars("train/loss")}
    evaluations: dict[str, dict[str, float]] = {}
    for tag in tags:
        name = tag.removeprefix("eval/")
        if tag.startswith("eval/") and name in SCORE_TAGS:
            points = events.Scalars(tag)
            # The last point of each eval tag is the final evaluation of the best checkpoint (metrics.json has it).
            for event in points[:-1]:
                evaluations.setdefault(str(event.step), {})[name] = event.value
    metrics = json.loads((run_dir / "metrics.json").read_text())
    final = {
        key: value
        for key, value in metrics.items()
        if key == "train_loss" or (key.startswith("eval_") and key.removeprefix("eval_") in SCORE_TAGS)
    }
    final["global_step"] = metrics["global_step"]
    return {"train_loss": train_loss, "evaluations": evaluations, "final": final}


def main() -> int:
    import torch
    from accelerate.state import AcceleratorState, GradientState

    from mrpc_finetune.cli import main as cli_main

    torch.set_num_threads(1)
    for run in json.loads(Path(sys.argv[1]).read_text()):
        AcceleratorState._reset_state(reset_partial_state=True)  # as a fresh process starts
        GradientState._reset_state()
        code = cli_main(["train", *run["arguments"]])
        if code != 0:
            return code
        output_dir = next(a.split("=", 1)[1] for a in run["arguments"] if a.startswith("output_dir="))
        Path(run["out"]).write_text(json.dumps(curves(Path(output_dir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
