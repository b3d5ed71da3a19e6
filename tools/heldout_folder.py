"""Write the held-out layout the quality measurements use: train carved as `search` carves it, the official
validation split kept aside as ``test.jsonl``, so that it chooses nothing (no epoch, no checkpoint, no setting).

    python tools/heldout_folder.py DIR OUT [--task mrpc] [--fraction 0.1] [--split-seed 0]
    mrpc-finetune repeat mrpc_minilm --seeds 5 --output-dir EXP data.dir=OUT   # carve picks, test.jsonl scores

OUT gets train.jsonl (the rows left after the carve), validation.jsonl (the carve) and test.jsonl (DIR's
validation.jsonl, unchanged). docs/benchmarks.md, "Held out: a score that chose nothing".
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mrpc_finetune.data.loading import carve_validation, find_split_files, load_split_file
from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.tasks import get_task


def write_heldout_folder(source: Path, out: Path, *, task_name: str, fraction: float, split_seed: int) -> dict:
    """The carve of ``source``'s train split and its validation split as test; returns the row counts."""
    task = get_task(task_name)
    files = find_split_files(source, task)
    if "validation" not in files:
        raise UserError(f"{source}: no validation file to keep aside as test.jsonl")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: exists and is not empty; pick a new folder")
    carved = carve_validation(load_split_file(files["train"]), task, fraction, split_seed, str(files["train"]))
    out.mkdir(parents=True, exist_ok=True)
    carved["train"].to_json(out / "train.jsonl", lines=True)
    carved["validation"].to_json(out / "validation.jsonl", lines=True)
    shutil.copyfile(files["validation"], out / "test.jsonl")
    return {"train": carved["train"].num_rows, "validation": carved["validation"].num_rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with train.jsonl and validation.jsonl")
    parser.add_argument("out", type=Path, help="new folder for train / validation (the carve) / test")
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of train carved out (search's default)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the carve (search's default)")
    args = parser.parse_args(argv)
    try:
        counts = write_heldout_folder(
            args.source, args.out, task_name=args.task, fraction=args.fraction, split_seed=args.split_seed
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{args.out}: train {counts['train']} rows, validation (carve) {counts['validation']}, test = "
        f"{args.source}'s validation"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
