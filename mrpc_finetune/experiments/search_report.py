"""What ``search`` reports: one line per trial, ``search.json`` (the best point and every trial), the history plot
and, on request, the best point as a recipe file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrpc_finetune.run.rundir import atomic_write_json


def results(study, storage: str, metric: str, info: dict[str, Any]) -> dict[str, Any]:
    """``search.json``: the study's best complete trial and every trial."""
    import optuna

    trials = [_trial_row(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t["state"] == "complete"]
    best = None
    if complete:
        chosen = study.best_trial
        best = {"trial": chosen.number, "params": chosen.params, "value": chosen.value, **_extras(chosen)}
    states = [t["state"] for t in trials]
    return {
        **info,
        "study": study.study_name,
        "storage": storage,
        "direction": study.direction.name.lower(),
        "objective": f"mean over seeds {info['seeds']} of {metric} of each run's chosen checkpoint (validation)",
        "note": (
            f"best.value is the best of {len(complete)} noisy validation scores, so it is optimistic: confirm the "
            f"point with `mrpc-finetune repeat` on seeds the search did not use; no test split chose anything"
        ),
        "counts": {state.name.lower(): states.count(state.name.lower()) for state in optuna.trial.TrialState},
        "best": best,
        "trials": trials,
    }


def _trial_row(trial) -> dict[str, Any]:
    row = {"number": trial.number, "state": trial.state.name.lower(), "params": trial.params, "value": trial.value}
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        step = max(trial.intermediate_values)
        row["pruned_at"] = {"step": step, "value": trial.intermediate_values[step]}
    if trial.datetime_start and trial.datetime_complete:
        row["seconds"] = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return {**row, **_extras(trial)}


def _extras(trial) -> dict[str, Any]:
    keys = ("values", "dir", "stopped", "retry_of", "recipe_point")
    extras = {key: trial.user_attrs[key] for key in keys if key in trial.user_attrs}
    if "failed_trial" in trial.system_attrs:
        extras["retry_of"] = trial.system_attrs["failed_trial"]
    return extras


def reporter(out: Path, storage: str, metric: str, info: dict[str, Any]):
    """After each trial: one line, and ``search.json`` brought up to date."""

    def report(study, trial) -> None:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        if trial.state.name == "COMPLETE":
            outcome = f"{metric}={trial.value:.4f}"
        elif trial.state.name == "PRUNED":
            outcome = "pruned" + (f" at step {max(trial.intermediate_values)}" if trial.intermediate_values else "")
        else:
            outcome = trial.state.name.lower()
        try:
            best = f"; best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = ""
        own = " (the recipe's own point)" if trial.user_attrs.get("recipe_point") else ""
        print(f"trial {trial.number}: {outcome} [{params}]{own}{best}", flush=True)
        atomic_write_json(out / "search.json", results(study, storage, metric, info))

    return report


def write_outputs(study, out: Path, result: dict[str, Any], write_recipe: str | None = None) -> None:
    """``search.json``, the history plot and, with ``write_recipe``, ``recipes/<write_recipe>.py``."""
    from mrpc_finetune.experiments.plots import history_figure
    from mrpc_finetune.recipe.new_recipe import write_new_recipe

    atomic_write_json(out / "search.json", result)
    print(f"wrote {out / 'search.json'}")
    if result["best"] is None:
        print("no trial completed yet: nothing to call best")
        return
    print(f"wrote {history_figure(out / 'optimization_history.png', study, result['metric'])}")
    best = result["best"]
    print(f"best: trial {best['trial']}, {result['metric']}={best['value']:.4f}, params {best['params']}")
    if write_recipe:
        chosen = [f"{key}={value}" for key, value in best["params"].items()]
        path = write_new_recipe(write_recipe, result["recipe"], [*result["overrides"], *chosen])
        print(
            f"wrote {path}; confirm it on seeds the search did not use: mrpc-finetune repeat {write_recipe} --seeds 5"
        )
