"""The summary of runs that differ only in their seed: ``summary.json``, ``summary.md`` and ``summary.png``.

Every numeric metric of every evaluated split (``eval_*``, ``eval_<split>_*``, ``test_*``) is aggregated over the
finished runs; see ``stats`` for the conventions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrpc_finetune.experiments import events, plots, stats
from mrpc_finetune.run.rundir import atomic_write_json, atomic_write_text


def selection_note(split: str, metric: str, *, chosen: bool = True) -> dict[str, Any]:
    """Which split chose what, for the reader of a summary: test scores must not have chosen anything.
    ``chosen=False``: the runs evaluated only at the end (``eval.strategy=no``), so ``split`` chose no checkpoint."""
    if not chosen:
        return {
            "checkpoint_chosen_on": None,
            "metric": metric,
            "test_used_for_any_choice": False,
            "note": (
                f"each run scores its last step's model (eval.strategy=no): no checkpoint was chosen, so the "
                f"{split} scores chose nothing either, and test_* metrics (when the data has a labelled test split) "
                f"are measured once on that model"
            ),
        }
    return {
        "checkpoint_chosen_on": split,
        "metric": metric,
        "test_used_for_any_choice": False,
        "note": (
            f"each run keeps the checkpoint with the best {metric} on {split}; test_* metrics (when the data has a "
            f"labelled test split) are measured once on that checkpoint and chose nothing: no checkpoint, epoch, "
            f"seed or setting"
        ),
    }


def build_summary(
    *, recipe: str, overrides: list[str], seeds: list[int], runs: list[tuple[int, Path, dict]], selection: dict
) -> dict[str, Any]:
    """``runs``: (seed, run dir, metrics.json) of the finished runs."""
    metrics = [m for _, _, m in runs]
    return {
        "recipe": recipe,
        "overrides": list(overrides),
        "seeds": list(seeds),
        "finished_seeds": [seed for seed, _, _ in runs],
        "runs": [{"seed": seed, "dir": str(folder), "metrics": m} for seed, folder, m in runs],
        "metrics": stats.aggregate(metrics),
        "run_figures": stats.aggregate(metrics, keep=lambda key: key in stats.RUN_FIGURES),
        "std": stats.STD_CONVENTION,
        "ci95": stats.CI_CONVENTION,
        "selection": selection,
    }


def write_summary(out: Path, summary: dict[str, Any]) -> list[Path]:
    """``OUT/summary.json``, ``OUT/summary.md`` and ``OUT/summary.png``; returns their paths."""
    json_path, md_path = out / "summary.json", out / "summary.md"
    atomic_write_json(json_path, summary)
    atomic_write_text(md_path, summary_markdown(summary))
    runs = [(run["seed"], run["metrics"]) for run in summary["runs"]]
    curves = {run["seed"]: events.eval_curves(Path(run["dir"])) for run in summary["runs"]}
    png = plots.seeds_figure(out / "summary.png", runs, curves, title=summary["recipe"])
    return [json_path, md_path, png]


def summary_markdown(summary: dict[str, Any]) -> str:
    seeds = ", ".join(map(str, summary["seeds"]))
    finished = summary["finished_seeds"]
    lines = [
        f"# {summary['recipe']} over {len(finished)} seeds",
        "",
        f"Seeds {seeds}; overrides: `{' '.join(summary['overrides']) or 'none'}`.",
        "",
        f"- std: {summary['std']}.",
        f"- ci95: {summary['ci95']}.",
        f"- {summary['selection']['note']}.",
    ]
    missing = [s for s in summary["seeds"] if s not in finished]
    if missing:
        lines.append(f"- not finished, left out: seeds {', '.join(map(str, missing))}.")
    lines += [
        "",
        "| metric | n | mean | std | median | min | max | 95% CI of the mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shown = {k: v for k, v in summary["metrics"].items() if stats.is_score(k)}
    for key, s in {**shown, **summary["run_figures"]}.items():
        ci = f"{s['ci95'][0]:.4f} to {s['ci95'][1]:.4f}" if s["ci95"] else "-"
        std = f"{s['std']:.4f}" if s["std"] is not None else "-"
        lines.append(
            f"| {key} | {s['n']} | {s['mean']:.4f} | {std} | {s['median']:.4f} | {s['min']:.4f} | {s['max']:.4f} "
            f"| {ci} |"
        )
    keys = list(shown)
    lines += ["", "| seed | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for run in summary["runs"]:
        values = [_cell(run["metrics"].get(k)) for k in keys]
        lines.append(f"| {run['seed']} | " + " | ".join(values) + " |")
    lines += ["", "![scores per seed and evaluation curves](summary.png)", ""]
    return "\n".join(lines)


def _cell(value) -> str:
    return f"{value:.4f}" if stats.is_number(value) else "-"
