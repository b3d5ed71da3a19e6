"""Evaluation curves read back from a run's TensorBoard events (``RUN/tensorboard``).

Every loop logs ``eval/<metric>`` after each evaluation during training, then once more at the last step for
the final evaluation of the best checkpoint; a resumed run logs again the steps after its last checkpoint.
``eval_curves`` keeps one point per evaluation during training: the final evaluation of a finished run (its last
``eval/`` event) is dropped, and for a step logged twice the later event wins.
"""

from __future__ import annotations

from pathlib import Path

from mrpc_finetune.metrics import is_evaluation_figure
from mrpc_finetune.run.rundir import RunDir


def scalars(log_dir: Path) -> dict[str, list[tuple[float, int, float]]]:
    """tag -> ``[(wall_time, step, value)]`` over every event file below ``log_dir``, oldest first."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[float, int, float]]] = {}
    folders = sorted({path.parent for path in log_dir.rglob("events.out.tfevents.*")})
    for folder in folders:
        # size_guidance 0 keeps every point (the default samples 10,000); a resumed run's repeated steps are
        # sorted out below, not purged.
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0}, purge_orphaned_data=False)
        events.Reload()
        for tag in events.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.wall_time, e.step, e.value) for e in events.Scalars(tag))
    return {tag: sorted(points) for tag, points in found.items()}


def eval_curves(folder: Path) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    """``(x_label, {metric: [(x, value)]})`` of the evaluations during training of the run in ``folder``.

    ``x`` is the epoch (from ``train/epoch``, which grows linearly with the step), else the optimizer step.
    Metric names are the tags without ``eval/``: ``accuracy``, ``f1``, ``loss``, ``validation_matched_accuracy``.
    """
    run = RunDir(folder)
    tags = scalars(run.tensorboard) if run.tensorboard.is_dir() else {}
    finished = run.metrics_file.is_file()
    epochs_per_step = _epochs_per_step(tags.get("train/epoch", []))
    curves = {}
    for tag, points in tags.items():
        name = tag.removeprefix("eval/")
        if not tag.startswith("eval/") or is_evaluation_figure(name):
            continue
        during_training = points[:-1] if finished else points
        by_step = {step: value for _, step, value in during_training}  # later events win
        curves[name] = [(_x(step, epochs_per_step), value) for step, value in sorted(by_step.items())]
    return ("epoch" if epochs_per_step else "step"), {k: v for k, v in curves.items() if v}


def _epochs_per_step(epoch_points: list[tuple[float, int, float]]) -> float | None:
    steps = [(step, epoch) for _, step, epoch in epoch_points if step > 0]
    if not steps:
        return None
    step, epoch = max(steps)
    return epoch / step


def _x(step: int, epochs_per_step: float | None) -> float:
    return round(step * epochs_per_step, 3) if epochs_per_step else step
