"""One Markdown table of the GLUE experiments that `make glue` writes: EXP/<task>/summary.json of each
`mrpc-finetune repeat <task>_minilm` (see docs/benchmarks.md, "GLUE tasks with all-MiniLM-L6-v2").

    python tools/glue_table.py runs/glue                          # prints the table, writes runs/glue/glue_table.md
    python tools/glue_table.py runs/glue --data GLUE_DATA         # adds what a constant answer scores

Reads only the JSON files (no import of mrpc_finetune): per task the validation score of every finished seed, its
mean ± sample std, the 95% interval of the mean (from repeat's summary.json) and min-max, minutes per run
(metrics.json `wall_seconds`), and which split chose the scored checkpoint (the run's recipe.json: `eval.strategy`
"no" scores the last step's model, so validation chose nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

TASKS = ("cola", "sst2", "stsb", "rte", "wnli")
METRICS = {  # the task's GLUE metric(s), as metrics.json names them
    "cola": ("matthews_correlation",),
    "sst2": ("accuracy",),
    "stsb": ("pearson", "spearmanr"),
    "rte": ("accuracy",),
    "wnli": ("accuracy",),
}


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (one run)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def selection(run_dir: Path) -> str:
    recipe = json.loads((run_dir / "recipe.json").read_text())
    steps = recipe["train"]["max_steps"]
    epochs = recipe["train"]["epochs"]
    length = f"{steps} steps" if steps > 0 else f"{epochs:g} epoch{'' if epochs == 1 else 's'}"
    if recipe["eval"]["strategy"] == "no":
        return f"last step of {length}; validation chose nothing"
    return f"best of {length} on validation (checkpoint chosen on the scored split)"


def constant_answer(data: Path | None, task: str) -> str:
    """What answering the validation split's most common class every time scores, in the task's metric."""
    path = data / task / "validation.jsonl" if data else None
    if task == "stsb" or path is None or not path.is_file():
        return "–"
    labels = Counter(json.loads(line)["label"] for line in path.open() if line.strip())
    share = labels.most_common(1)[0][1] / sum(labels.values())
    if task == "cola":  # Matthews correlation is 0 for any constant answer
        return f"0 (the majority class is {share:.4f} of rows)"
    return f"{share:.4f}"


def interval(summary: dict, metric: str) -> str:
    """The 95% interval of the mean that repeat wrote into summary.json; blank for a single run."""
    bounds = summary.get("metrics", {}).get(f"eval_{metric}", {}).get("ci95")
    return f"{bounds[0]:.4f}-{bounds[1]:.4f}" if bounds else ""


def rows(exp: Path, data: Path | None) -> list[str]:
    lines = []
    for task in TASKS:
        path = exp / task / "summary.json"
        if not path.is_file():
            lines.append(f"| {task} | not measured | | | | | | | |")
            continue
        summary = json.loads(path.read_text())
        runs = summary["runs"]
        seeds = ",".join(str(run["seed"]) for run in runs)
        scored = selection(exp / task / f"seed-{runs[0]['seed']}")
        minutes = [run["metrics"]["wall_seconds"] / 60 for run in runs if "wall_seconds" in run["metrics"]]
        for metric in METRICS[task]:
            values = [run["metrics"][f"eval_{metric}"] for run in runs]
            lines.append(
                f"| {task} | {metric} | {seeds} | **{spread(values)}** | {interval(summary, metric)} "
                f"| {min(values):.4f}-{max(values):.4f} | {statistics.mean(minutes):.1f} | {scored} "
                f"| {constant_answer(data, task)} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exp", type=Path, help="the folder of the task folders (make glue: GLUE_EXP)")
    parser.add_argument(
        "--data", type=Path, help="the GLUE folder, for what a constant answer scores on each validation split"
    )
    args = parser.parse_args()
    header = [
        "| task | validation metric | seeds | mean ± std | 95% interval of the mean | min-max | minutes/run "
        "| scored checkpoint | a constant answer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    table = "\n".join(header + rows(args.exp, args.data)) + "\n"
    (args.exp / "glue_table.md").write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
