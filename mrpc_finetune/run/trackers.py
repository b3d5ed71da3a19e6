"""Experiment trackers behind one small API, so every loop sends the same keys to TensorBoard, MLflow and W&B.

    check_trackers(recipe)                            # before the run directory exists: packages, store, login
    trackers = open_trackers(recipe, run.root, enabled=is_main_process)
    trackers.log_params(recipe_params(recipe))        # once
    trackers.log({"train/loss": 0.61, "train/learning_rate": 2e-5}, step=10)
    trackers.log_final(metrics, run.model)            # after RUN/model and RUN/metrics.json are written
    trackers.close()                                  # or close("FAILED") / close("KILLED")

``train.report_to`` picks the trackers. MLflow logs to ``MLFLOW_TRACKING_URI``, else to MLflow's own default
(since MLflow 3.7: ``sqlite:///mlflow.db`` in the working folder, artifacts in ``./mlruns``, which a plain
``mlflow ui`` started there serves); experiment = recipe name, run name = run folder name. W&B writes under
``RUN/wandb`` and honours ``WANDB_MODE=offline``. A resumed run (``resume=true``) continues the same MLflow and W&B
runs, whose ids are kept in ``RUN/trackers.json``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.overrides import flat_dict, to_dict
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run import rundir
from mrpc_finetune.run.tracker_backends import BACKENDS

STATUSES = ("FINISHED", "FAILED", "KILLED")
NOT_PARAMS = ("resume", "overwrite")
"""Recipe keys that say how a run was started, not what it computes (``runs.create`` records them as false)."""


def recipe_params(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as tracker parameters: ``{"train.lr": 1e-4, "data.dir": "...", ...}``."""
    return {key: value for key, value in flat_dict(to_dict(recipe)).items() if key not in NOT_PARAMS}


class Trackers:
    """The trackers a run reports to; every call goes to each of them (none: every call is a no-op)."""

    def __init__(self, backends: list | None = None):
        self.backends = list(backends or [])

    def log_params(self, params: dict[str, Any]) -> None:
        for backend in self.backends:
            backend.log_params(params)

    def log(self, values: dict[str, Any], step: int) -> None:
        """Scalars under TensorBoard-style tags (``train/loss``, ``eval/accuracy``); other values are skipped."""
        scalars = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if scalars:
            for backend in self.backends:
                backend.log(scalars, step)

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        """The final metrics (``metrics.json``) and the final model folder, as each tracker keeps them."""
        for backend in self.backends:
            backend.log_final(metrics, Path(model_dir))

    def close(self, status: str = "FINISHED") -> None:
        """End every tracker's run with ``status`` (FINISHED, FAILED or KILLED); later calls do nothing."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        backends, self.backends = self.backends, []
        errors = []
        for backend in backends:
            try:
                backend.close(status)
            except Exception as err:  # close the others all the same
                errors.append(err)
        if errors:
            raise errors[0]

    def __enter__(self) -> Trackers:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close("FINISHED" if kind is None else "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")


def check_trackers(recipe: Recipe) -> None:
    """Fail in seconds, before the run directory exists, when a tracker cannot work: a package not installed, an
    MLflow store MLflow refuses or cannot reach, W&B online without a login or a server."""
    state = _read_state(recipe.run_dir)
    for name in recipe.train.report_to:
        _require(name)
        BACKENDS[name].check(recipe, state)


def open_trackers(recipe: Recipe, run_root: Path, *, enabled: bool = True) -> Trackers:
    """Start the recipe's trackers for the run in ``run_root`` (which must exist); ``enabled=False`` (processes other
    than the main one) or ``train.report_to=[]`` give trackers whose every call does nothing."""
    if not enabled or not recipe.train.report_to:
        return Trackers()
    run_root = Path(run_root)
    state = _read_state(run_root) if recipe.resume else {}
    trackers = Trackers()
    try:
        for name in recipe.train.report_to:
            _require(name)
            trackers.backends.append(BACKENDS[name](recipe, run_root, state))
    except BaseException:
        trackers.close("FAILED")
        raise
    if state:
        rundir.atomic_write_json(rundir.RunDir(run_root).trackers_state, state)
    return trackers


# ---------------------------------------------------------------------------------------------------------------
# Checks and helpers
# ---------------------------------------------------------------------------------------------------------------


def _require(tracker: str) -> None:
    package = BACKENDS[tracker].package
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"train.report_to={tracker}: the {package} package is not installed; run `pip install {package}` "
            f"(or `pip install 'mrpc-finetune[trackers]'`), or drop {tracker} from train.report_to"
        )


def _read_state(run_root: Path) -> dict:
    try:
        return json.loads(rundir.RunDir(run_root).trackers_state.read_text())
    except (OSError, ValueError):
        return {}
