"""The same recipe through the three training loops; prints a Markdown table (loop, minutes, accuracy, F1).

.venv/bin/python bench/parity.py --data DIR --out bench/out/parity
.venv/bin/python bench/parity.py --data DIR --out DIR --processes 2 train.max_steps=30   # extra KEY=VALUE overrides

Each loop runs as its own `python -m mrpc_finetune train` process (the Accelerate loop under
`accelerate launch` when --processes > 1), so no loop inherits another's state; minutes are wall-clock
minutes of that whole command, start-up and final evaluation included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def command(loop: str, processes: int, overrides: list[str]) -> list[str]:
    train = ["-m", "mrpc_finetune", "train", "mrpc_minilm", f"loop={loop}", *overrides]
    if loop == "accelerate" and processes > 1:
        launch = ["-m", "accelerate.commands.launch", "--multi_gpu", f"--num_processes={processes}"]
        return [sys.executable, *launch, "--num_machines=1", *train]
    return [sys.executable, *train]


def run_loop(loop: str, args, extra: list[str]) -> dict:
    out = Path(args.out) / loop
    overrides = [f"data.dir={args.data}", f"output_dir={out}", "overwrite=true", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    subprocess.run(command(loop, args.processes, overrides), check=True, env=env, cwd=REPO)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"loop": loop, "minutes": (time.perf_counter() - started) / 60, **metrics}


def table(rows: list[dict]) -> str:
    lines = [
        "| loop | minutes | accuracy | F1 | steps | train loss | precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['loop']} | {row['minutes']:.1f} | {row['eval_accuracy']:.4f} | {row['eval_f1']:.4f} | "
            f"{row['global_step']} | {row['train_loss']:.4f} | {row['precision']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with train/validation files (data.dir)")
    parser.add_argument("--out", default="bench/out/parity", help="one run directory per loop is made in it")
    parser.add_argument("--loops", default="trainer,torch,accelerate", help="comma-separated loops to run")
    parser.add_argument("--processes", type=int, default=1, help="processes for the Accelerate loop")
    args, extra = parser.parse_known_args(argv)
    rows = [run_loop(loop, args, extra) for loop in args.loops.split(",")]
    print(table(rows))


if __name__ == "__main__":
    main()
