"""The run directory: its layout, the resume / overwrite policy, and atomic writes of final results.

RUN/recipe.json      the resolved recipe; `mrpc-finetune train RUN/recipe.json` repeats the run
RUN/checkpoints/     checkpoint-<step>/ folders (model, optimizer, scheduler, RNG state)
RUN/tensorboard/     event files: `tensorboard --logdir RUN/tensorboard`
RUN/model/           final model + tokenizer, `AutoModelForSequenceClassification.from_pretrained(RUN/model)`
RUN/metrics.json     final evaluation metrics (eval_accuracy, eval_f1, ...) and run figures
RUN/run_info.json    provenance: command, absolute paths, data fingerprints, versions, device, git commit
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.overrides import flat_dict, to_dict
from mrpc_finetune.recipe.schema import Recipe

TRACKERS_STATE = "trackers.json"
"""The MLflow and W&B run ids of a run, so that a resumed run goes on logging into the same runs."""


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

    @property
    def run_info(self) -> Path:
        return self.root / "run_info.json"

    @property
    def trackers_state(self) -> Path:
        return self.root / TRACKERS_STATE

    def last_checkpoint(self) -> Path | None:
        """The complete ``checkpoint-<step>`` folder with the highest step, or None."""
        steps = [
            (int(m.group(1)), p)
            for p in (self.checkpoints.iterdir() if self.checkpoints.is_dir() else [])
            if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and is_complete_checkpoint(p)
        ]
        return max(steps)[1] if steps else None

    def incomplete_checkpoints(self) -> list[Path]:
        """``checkpoint-<step>`` folders a killed process left half-written."""
        folders = self.checkpoints.iterdir() if self.checkpoints.is_dir() else []
        return sorted(p for p in folders if re.fullmatch(r"checkpoint-(\d+)", p.name) and not is_complete_checkpoint(p))


CHECKPOINT_STATES = ("trainer_state.json", "loop_state.json")
"""Written last into a checkpoint (the Trainer writes ``trainer_state.json``; the torch and Accelerate loops write
``loop_state.json`` with ``atomic_write_json``), so a checkpoint folder without a readable one was cut off
mid-save and is never resumed from."""


def is_complete_checkpoint(folder: Path) -> bool:
    for name in CHECKPOINT_STATES:
        try:
            json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        return True
    return False


RESUME_MAY_CHANGE = ("resume", "overwrite", "output_dir", "data.num_proc", "train.num_workers")
"""Recipe keys a resumed run may set differently: they change how the run is started or fed, not what it computes."""


def check_can_start(recipe: Recipe) -> RunDir:
    """Apply the resume / overwrite policy and check that ``output_dir`` can be written, before any work.

    Leaves nothing on disk (the write probe removes its file at once).
    """
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
    if non_empty and not run.recipe_file.is_file():
        # overwrite=true deletes the folder: never do that to a folder this project did not make.
        flag = "resume=true" if recipe.resume else "overwrite=true"
        raise UserError(
            f"output_dir={root} is not empty and is not a run directory (no recipe.json in it); {flag} "
            f"refuses to touch it: choose another output_dir="
        )
    if recipe.resume and run.metrics_file.is_file():
        raise UserError(
            f"output_dir={root} holds a finished run (its metrics.json is written), so there is nothing to resume; "
            f"add overwrite=true to train it again, or choose another output_dir="
        )
    if recipe.resume and run.recipe_file.is_file():
        _check_same_recipe(run, recipe)
    _check_writable(root)
    return run


def _check_same_recipe(run: RunDir, recipe: Recipe) -> None:
    """A resumed run must compute what the recorded one did: the Trainer would keep the checkpoint's
    learning-rate schedule and step count anyway, so a changed recipe would silently not apply."""
    from mrpc_finetune.recipe.loading import load_recipe

    recorded = flat_dict(to_dict(load_recipe(str(run.recipe_file))))
    wanted = flat_dict(to_dict(recipe))
    changed = [key for key in wanted if key not in RESUME_MAY_CHANGE and wanted[key] != recorded.get(key)]
    if changed:
        key = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise UserError(
            f"resume=true: {key}={wanted[key]!r} differs from {key}={recorded.get(key)!r} recorded in "
            f"{run.recipe_file}{more}; resume with `mrpc-finetune train {run.root} resume=true`, or start "
            f"a new run (overwrite=true or another output_dir=)"
        )


def _check_writable(root: Path) -> None:
    """Create (and remove) a file in ``root`` or its nearest existing ancestor: ``os.access`` alone says yes to
    root on a read-only mount, and a path below a regular file would only fail at ``mkdir``."""
    existing = root.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"output_dir={root}: {existing} is a file, so no folder can be made below it")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".mrpc-finetune-write-test-"):
            pass
    except OSError as err:
        raise UserError(f"output_dir={root}: cannot write in {existing} ({err.strerror or err})") from None


def create(recipe: Recipe) -> RunDir:
    """Make (or, with overwrite=true, remake) the run directory and record the resolved recipe in it."""
    run = check_can_start(recipe)
    if recipe.overwrite and run.root.exists():
        shutil.rmtree(run.root)
    run.root.mkdir(parents=True, exist_ok=True)
    # resume / overwrite say how this run was started, not what it is: `train RUN/recipe.json` must repeat it.
    atomic_write_json(run.recipe_file, to_dict(dataclasses.replace(recipe, resume=False, overwrite=False)))
    return run


def prepare_resume(run: RunDir, recipe: Recipe) -> None:
    """With resume=true, on the main process before the others read it: remove the checkpoints a killed process left
    half-written, so no loop reads or rotates them, and say where the run goes on (``run.last_checkpoint()``, which
    every process then reads after a barrier), or that it starts from scratch."""
    if not recipe.resume:
        return
    for folder in run.incomplete_checkpoints():
        print(f"note: removing {folder}, a checkpoint cut off while it was being saved", file=sys.stderr)
        shutil.rmtree(folder)
    checkpoint = run.last_checkpoint()
    if checkpoint is None:
        print(
            f"note: resume=true, but {run.root} has no complete checkpoint yet; starting from scratch", file=sys.stderr
        )
    else:
        print(f"resuming from {checkpoint}", file=sys.stderr)


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def atomic_save_model(model, tokenizer, destination: Path, describe: Callable[[Path], Any] | None = None) -> None:
    """``save_pretrained`` into a temporary folder beside ``destination``, then swap it in by rename.

    ``describe(folder)`` writes more into the folder before the swap (the model card). A crash at any point leaves
    either the previous complete model or the new one at ``destination``, never a half-written folder, and no
    temporary folders behind.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    old = destination.with_name(f".{destination.name}.old")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if describe is not None:
            describe(tmp)
        if destination.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
        os.replace(tmp, destination)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not destination.exists():
            os.replace(old, destination)  # put the previous model back
        raise


def open_run(path: str | Path) -> tuple[RunDir, Recipe]:
    """A finished run directory and the recipe it was trained with (for eval and predict)."""
    from mrpc_finetune.recipe.loading import load_recipe

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


def finish(
    run: RunDir, model, tokenizer, metrics: dict[str, Any], describe: Callable[[Path], Any] | None = None
) -> None:
    """Save the final model (with what ``describe`` adds to its folder), then ``metrics.json`` last: its presence
    means the run is complete."""
    atomic_save_model(model, tokenizer, run.model, describe)
    atomic_write_json(run.metrics_file, metrics)


def summary(run: RunDir, metrics: dict[str, Any]) -> str:
    """What a finished run prints: the dev metrics, the held-out test metrics (marked as never used to pick the
    checkpoint), and where everything is."""

    def shown(prefix: str) -> str:
        return "  ".join(
            f"{k}={v:.4f}"
            for k, v in metrics.items()
            if k.startswith(prefix) and isinstance(v, float) and not k.endswith(("runtime", "per_second", "loss"))
        )

    test = shown("test")
    lines = [f"done: {shown('eval_')}"]
    if test:
        lines.append(f"  held out:    {test}  (not used for selection)")
    if metrics.get("stopped_early"):
        lines.append(f"  stopped early at step {metrics.get('global_step')}: eval.patience evaluations without a gain")
    lines += [f"  run:         {run.root}", f"  model:       {run.model}", f"  metrics:     {run.metrics_file}"]
    if run.tensorboard.is_dir():  # train.report_to holds tensorboard
        lines.append(f"  tensorboard: tensorboard --logdir {run.tensorboard}  (or `make tensorboard`)")
    if run.trackers_state.is_file():
        for name, state in json.loads(run.trackers_state.read_text()).items():
            where = f" in {state['tracking_uri']}" if state.get("tracking_uri") else ""
            lines.append(f"  {name + ':':12} run {state.get('run_id')}{where}")
    return "\n".join(lines)
