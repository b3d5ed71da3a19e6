"""``compare``: runs and experiments side by side: one Markdown table and one PNG of evaluation curves.

mrpc-finetune compare runs/mrpc_minilm /tmp/run
mrpc-finetune compare runs/mrpc_minilm-seeds                     # a repeat folder: one row per seed
mrpc-finetune compare runs/mrpc_minilm-seeds runs/mrpc_minilm-search --summary --plot compare.png
mrpc-finetune compare runs/mrpc_minilm-seeds runs/mrpc_minilm-seeds/ensemble --summary   # the seeds' mean, their ensemble

The table holds every score in the runs' ``metrics.json`` (validation and test), the wall time, the peak memory
and the recipe keys whose values differ between the rows (from each run's ``recipe.json``); the curves come
from the runs' TensorBoard events. An experiment folder expands to its finished runs; with ``--summary`` it is
one row: mean ± sample std over a ``repeat``'s seeds, or over the seeds of a ``search``'s best trial. An
``ensemble`` folder is one row of its own scores; its minutes are its members' summed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments import events, plots, stats
from mrpc_finetune.experiments.folders import NOT_COMPARED, find_runs, read_metrics, recipe_value
from mrpc_finetune.recipe.loading import load_recipe
from mrpc_finetune.recipe.overrides import all_keys
from mrpc_finetune.run.ensemble_dir import EnsembleDir, is_ensemble
from mrpc_finetune.run.rundir import RunDir


@dataclass
class Row:
    label: str
    runs: list[Path]
    """The finished runs behind the row: one, or an experiment's."""
    cells: dict[str, str] = field(default_factory=dict)
    """Column -> text: scores, minutes, peak memory, and every recipe key."""


def compare(paths: list[Path], plot: Path | None = None, summary_rows: bool = False) -> str:
    """The Markdown table (and the PNG of curves at ``plot``, named on a last ``plot: PATH`` line) for ``paths``."""
    rows, left_out = [], 0
    for path in paths:
        found, skipped = _rows(path, summary_rows)
        rows += found
        left_out += skipped
    scores = sorted({k for row in rows for k in row.cells if stats.is_score(k)}, key=lambda k: (k.startswith("t"), k))
    differing = [k for k in all_keys() if k not in NOT_COMPARED and len({row.cells.get(k) for row in rows}) > 1]
    columns = [*scores, "minutes", "peak MB", *differing]
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row.label} | " + " | ".join(row.cells.get(c, "-") for c in columns) + " |" for row in rows]
    if left_out:
        lines.append(f"\n{left_out} unfinished run(s) left out (interrupted, or pruned by a search).")
    if plot is not None:
        groups = {row.label: [events.eval_curves(run) for run in row.runs] for row in rows if row.runs}
        saved = plots.curves_figure(plot, groups, title="evaluation during training")
        lines.append(f"\nplot: {saved.resolve()}")  # absolute: the default lands in whatever folder this ran in
    return "\n".join(lines)


def _rows(path: Path, summary_rows: bool) -> tuple[list[Row], int]:
    """The rows for one argument, and how many unfinished runs it held."""
    if is_ensemble(path):
        return [_ensemble_row(path)], 0
    if RunDir(path).recipe_file.is_file():
        if read_metrics(path) is None:
            raise UserError(f"{path}: the run is not finished (no metrics.json); finish or resume it first")
        return [_run_row(str(path), [path])], 0
    if not path.is_dir():
        raise UserError(f"{path}: not a run directory or an experiment folder")
    runs = find_runs(path)
    finished = [run for run in runs if read_metrics(run) is not None]
    if not finished:
        raise UserError(f"{path}: no finished run below it (a run directory holds recipe.json and metrics.json)")
    if not summary_rows:
        return [_run_row(str(run), [run]) for run in finished], len(runs) - len(finished)
    best = _best_trial_dir(path)
    if best is not None:
        chosen = [run for run in finished if best in run.parents]
        return [_run_row(f"{path} (best: {best.name})", chosen)], 0
    return [_run_row(f"{path} (mean ± std)", finished)], len(runs) - len(finished)


def _best_trial_dir(folder: Path) -> Path | None:
    """The best trial's folder of a ``search`` experiment (its ``search.json``), else None."""
    result = folder / "search.json"
    if not result.is_file():
        return None
    best = json.loads(result.read_text()).get("best")
    return folder / Path(best["dir"]).name if best else None


def _run_row(label: str, runs: list[Path]) -> Row:
    metrics = [read_metrics(run) for run in runs]
    row = Row(label, runs)
    figures = stats.aggregate(metrics, keep=lambda k: stats.is_score(k) or k in stats.RUN_FIGURES)
    for key, values in figures.items():
        row.cells[key] = f"{values['mean']:.4f}" if len(runs) == 1 else stats.format_stats(values)
    if "wall_seconds" in figures:
        row.cells["minutes"] = f"{figures['wall_seconds']['mean'] / 60:.2f}"
    if "peak_memory_mb" in figures:
        row.cells["peak MB"] = f"{figures['peak_memory_mb']['mean']:.0f}"
    _recipe_cells(row, runs)
    return row


def _ensemble_row(path: Path) -> Row:
    """An ``ensemble`` folder: its own scores (one model, not its members' mean); minutes are its members' training
    minutes summed, what the ensemble cost; no curves of its own, so it is left out of the plot."""
    members = EnsembleDir(path).members()
    gone = next((member for member in members if not RunDir(member).recipe_file.is_file()), None)
    if gone is not None:
        raise UserError(f"{path}: its member {gone} is not there (no recipe.json); ensemble.json names where it was")
    ensemble_metrics = read_metrics(path)  # an ensemble folder keeps it where a run does
    if ensemble_metrics is None:
        raise UserError(f"{path}: the ensemble has no metrics.json; build it again with `mrpc-finetune ensemble`")
    row = Row(f"{path} (ensemble of {len(members)})", runs=[])
    for key, value in ensemble_metrics.items():
        if stats.is_score(key) and stats.is_number(value):
            row.cells[key] = f"{value:.4f}"
    seconds = [(read_metrics(member) or {}).get("wall_seconds") for member in members]
    if all(stats.is_number(s) for s in seconds):
        row.cells["minutes"] = f"{sum(seconds) / 60:.2f} (members)"
    _recipe_cells(row, members)
    return row


def _recipe_cells(row: Row, runs: list[Path]) -> None:
    """Each recipe key's value in the row's runs (several, comma-separated, where they differ: seeds)."""
    recipes = [load_recipe(str(RunDir(run).recipe_file)) for run in runs]
    for key in all_keys():
        row.cells[key] = ",".join(dict.fromkeys(str(recipe_value(r, key)) for r in recipes))
