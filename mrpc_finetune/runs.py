"""The run directory: its layout, the resume / overwrite policy, and atomic writes of final results.

RUN/recipe.json      the resolved recipe; `mrpc-finetune train RUN/recipe.json` repeats the run
RUN/checkpoints/     checkpoint-<step>/ folders (model, optimizer, scheduler, RNG state)
RUN/tensorboard/     event files: `tensorboard --logdir RUN/tensorboard`
RUN/model/           final model + tokenizer, `AutoModelForSequenceClassification.from_pretrained(RUN/model)`
RUN/metrics.json     final evaluation metrics (eval_accuracy, eval_f1, ...) and run figures
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .recipe import Recipe, to_dict


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def recipe_file(self) -> Path:
        return self.root / "recipe.json"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def model(self) -> Path:
        return self.root / "model"

    def last_checkpoint(self) -> Path | None:
        """The ``checkpoint-<step>`` folder with the highest step, or None."""
        steps = [
            (int(m.group(1)), p)
            for p in (self.checkpoints.iterdir() if self.checkpoints.is_dir() else [])
            if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir()
        ]
        return max(steps)[1] if steps else None


def check_can_start(recipe: Recipe) -> RunDir:
    """Apply the resume / overwrite policy and check writability, touching nothing on disk."""
    run = RunDir(recipe.run_dir)
    root = run.root
    if root.exists() and not root.is_dir():
        raise UserError(f"output_dir={root} exists and is not a folder")
    non_empty = root.is_dir() and any(root.iterdir())
    if non_empty and not (recipe.resume or recipe.overwrite):
        raise UserError(
            f"output_dir={root} already holds a run; add resume=true to continue it, overwrite=true to "
            f"replace it, or choose another output_dir="
        )
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output_dir={root}: {existing} is not writable")
    return run


def create(recipe: Recipe) -> RunDir:
    """Make (or, with overwrite=true, remake) the run directory and record the resolved recipe in it."""
    run = check_can_start(recipe)
    if recipe.overwrite and run.root.exists():
        shutil.rmtree(run.root)
    run.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.recipe_file, to_dict(recipe))
    return run


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_model(model, tokenizer, destination: Path) -> None:
    """``save_pretrained`` into a temporary folder beside ``destination``, then swap it in by rename."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        old = destination.with_name(f".{destination.name}.old")
        if destination.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
        os.replace(tmp, destination)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_metrics(run: RunDir) -> dict[str, Any]:
    return json.loads(run.metrics_file.read_text()) if run.metrics_file.is_file() else {}


def open_run(path: str | Path) -> tuple[RunDir, Recipe]:
    """A finished run directory and the recipe it was trained with (for eval and predict)."""
    from .recipe import load_recipe

    run = RunDir(Path(path))
    if not run.recipe_file.is_file():
        raise UserError(f"{run.root}: not a run directory (no recipe.json in it)")
    if not (run.model / "config.json").is_file():
        raise UserError(f"{run.root}: the run has no final model yet ({run.model} is missing); finish or resume it")
    return run, load_recipe(str(run.recipe_file))


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def finish(run: RunDir, model, tokenizer, metrics: dict[str, Any]) -> None:
    """Save the final model, then ``metrics.json`` last: its presence means the run is complete."""
    atomic_save_model(model, tokenizer, run.model)
    atomic_write_json(run.metrics_file, metrics)


def summary(run: RunDir, metrics: dict[str, Any]) -> str:
    shown = "  ".join(
        f"{k}={v:.4f}"
        for k, v in metrics.items()
        if k.startswith("eval_") and isinstance(v, float) and not k.endswith(("runtime", "per_second", "loss"))
    )
    return (
        f"done: {shown}\n"
        f"  run:         {run.root}\n"
        f"  model:       {run.model}\n"
        f"  metrics:     {run.metrics_file}\n"
        f"  tensorboard: tensorboard --logdir {run.tensorboard}  (or `make tensorboard`)"
    )
