"""PNG figures of experiments: the spread of scores over seeds, and evaluation curves side by side.

Drawn on a plain ``matplotlib.figure.Figure`` (no pyplot, so no display or backend is needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrpc_finetune.experiments.stats import is_number, is_score, split_of

Curves = tuple[str, dict[str, list[tuple[float, float]]]]
"""``events.eval_curves`` output: x label and metric -> points."""


def seeds_figure(path: Path, runs: list[tuple[int, dict[str, Any]]], curves: dict[int, Curves], title: str) -> Path:
    """Top: each score (every split, loss left out) as a box with one labelled point per seed.
    Bottom: each evaluation metric during training, one line per seed."""
    from matplotlib.figure import Figure

    keys = sorted({k for _, m in runs for k, v in m.items() if is_score(k) and is_number(v) and "loss" not in k})
    names = sorted({name for _, found in curves.values() for name in found if name != "loss"})
    figure = Figure(figsize=(max(8, 4 * len(names)), 8), layout="constrained")
    grid = figure.add_gridspec(2, max(1, len(names)))
    top = figure.add_subplot(grid[0, :])
    for position, key in enumerate(keys, start=1):
        points = [(seed, m[key]) for seed, m in runs if is_number(m.get(key))]
        top.boxplot([v for _, v in points], positions=[position], widths=0.5, showfliers=False)
        for i, (seed, value) in enumerate(points):
            x = position + 0.25 * ((i % 5) - 2) / 2  # spread the points a little, the same way every time
            top.scatter(x, value, color=f"C{i % 10}", zorder=3)
            top.annotate(str(seed), (x, value), textcoords="offset points", xytext=(4, 2), fontsize=7)
    top.set_xticks(range(1, len(keys) + 1), [f"{split_of(k)}\n{_metric_name(k)}" for k in keys])
    top.set_title(f"{title}: final score per seed (points) over the spread (box)")
    top.grid(axis="y", alpha=0.3)
    for column, name in enumerate(names):
        axes = figure.add_subplot(grid[1, column])
        for i, (seed, (x_label, found)) in enumerate(sorted(curves.items())):
            if name in found:
                xs, ys = zip(*found[name], strict=True)
                axes.plot(xs, ys, marker="o", color=f"C{i % 10}", label=f"seed {seed}")
                axes.set_xlabel(x_label)
        axes.set_title(f"eval/{name} during training")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    return _save(figure, path)


def curves_figure(path: Path, groups: dict[str, list[Curves]], title: str) -> Path:
    """One panel per evaluation metric; each group (a run, or the runs of an experiment) in its own colour."""
    from matplotlib.figure import Figure

    names = sorted({name for curves in groups.values() for _, found in curves for name in found})
    figure = Figure(figsize=(max(6, 4.5 * len(names)), 4.5), layout="constrained")
    panels = figure.subplots(1, max(1, len(names)), squeeze=False)[0]
    for axes, name in zip(panels, names, strict=False):
        for i, (label, curves) in enumerate(groups.items()):
            for j, (x_label, found) in enumerate(curves):
                if name in found:
                    xs, ys = zip(*found[name], strict=True)
                    axes.plot(xs, ys, marker="o", color=f"C{i % 10}", alpha=0.8, label=label if j == 0 else None)
                    axes.set_xlabel(x_label)
        axes.set_title(f"eval/{name}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(title)
    return _save(figure, path)


def history_figure(path: Path, study, metric: str) -> Path:
    """Optuna's optimization history (each complete trial's value and the best so far)."""
    import matplotlib

    matplotlib.use("Agg")  # Optuna draws through pyplot: no display here
    from matplotlib import pyplot
    from optuna.visualization.matplotlib import plot_optimization_history

    with matplotlib.rc_context():  # Optuna switches pyplot's style to ggplot: keep that to this figure
        axes = plot_optimization_history(study, target_name=metric)
        axes.set_title(f"{metric} of each complete trial (pruned ones not shown)")
        _save(axes.figure, path)
        pyplot.close(axes.figure)
    return path


def _metric_name(key: str) -> str:
    """``eval_validation_matched_accuracy`` -> ``accuracy``."""
    rest = key.partition("_")[2]
    split = split_of(key)
    for prefix in (f"{split}_", f"{split.partition('_')[2]}_"):
        if prefix != "_" and rest.startswith(prefix):
            return rest[len(prefix) :]
    return rest


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path
