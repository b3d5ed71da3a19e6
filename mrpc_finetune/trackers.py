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
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import UserError, first_line
from .recipe import Recipe, flat_dict, to_dict

STATE_FILE = "trackers.json"
"""``RUN/trackers.json``: the MLflow and W&B run ids a resumed run continues."""
STATUSES = ("FINISHED", "FAILED", "KILLED")
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
"""Tracker -> the Python package (and pip name) it needs."""
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
    for name in recipe.train.report_to:
        _require(name)
    if "mlflow" in recipe.train.report_to:
        _check_mlflow_store(_mlflow_uri(recipe, recipe.run_dir))
    if "wandb" in recipe.train.report_to:
        _check_wandb()


def open_trackers(recipe: Recipe, run_root: Path, *, enabled: bool = True) -> Trackers:
    """Start the recipe's trackers for the run in ``run_root`` (which must exist); ``enabled=False`` (processes other
    than the main one) or ``train.report_to=[]`` give trackers whose every call does nothing."""
    if not enabled or not recipe.train.report_to:
        return Trackers()
    run_root = Path(run_root)
    state = _read_state(run_root) if recipe.resume else {}
    openers = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker, "wandb": WandbTracker}
    trackers = Trackers()
    try:
        for name in recipe.train.report_to:
            _require(name)
            trackers.backends.append(openers[name](recipe, run_root, state))
    except BaseException:
        trackers.close("FAILED")
        raise
    if state:
        from .runs import atomic_write_json

        atomic_write_json(run_root / STATE_FILE, state)
    return trackers


# ---------------------------------------------------------------------------------------------------------------
# Backends: one class per tracker, each with log_params / log / log_final / close
# ---------------------------------------------------------------------------------------------------------------


class TensorBoardTracker:
    """Event files in ``RUN/tensorboard`` with exactly the tags given; the recipe as a text summary."""

    def __init__(self, recipe: Recipe, run_root: Path, state: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_root / "tensorboard"))

    def log_params(self, params: dict[str, Any]) -> None:
        text = json.dumps(params, indent=2, default=str)
        self.writer.add_text("recipe", "    " + text.replace("\n", "\n    "))  # indented: Markdown code block
        self.writer.flush()

    def log(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        """Nothing more: the loops log the final evaluation's scalars through ``log`` as the Trainer does."""

    def close(self, status: str) -> None:
        self.writer.close()


class MLflowTracker:
    """A run in experiment ``recipe.name`` named after the run folder: parameters, per-step metrics, then the final
    metrics under their ``metrics.json`` names and ``RUN/model`` (with ``metrics.json``, ``recipe.json`` and
    ``run_info.json``) as artifacts."""

    def __init__(self, recipe: Recipe, run_root: Path, state: dict):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.run_root = run_root
        uri = _mlflow_uri(recipe, run_root)
        _check_mlflow_store(uri)
        self.client = MlflowClient(tracking_uri=uri)
        previous = state.get("mlflow", {}).get("run_id")
        try:
            self.run_id = self._continue(previous) if previous else None
            if self.run_id is None:
                self.run_id = self._start(recipe, run_root)
        except MlflowException as err:
            raise UserError(f"train.report_to=mlflow: {_redact(uri)}: {first_line(err)}") from None
        state["mlflow"] = {"run_id": self.run_id, "tracking_uri": _redact(_absolute_sqlite(uri))}

    def _continue(self, run_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.update_run(run_id, status="RUNNING")
        except MlflowException:
            print(f"note: MLflow run {run_id} of this run directory is gone; starting a new one")
            return None
        return run_id

    def _start(self, recipe: Recipe, run_root: Path) -> str:
        from mlflow.exceptions import MlflowException

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or recipe.name or "mrpc_finetune"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(name)
            except MlflowException:  # another process created it in between
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tags = {"mrpc_finetune.run_dir": str(run_root.absolute()), "mrpc_finetune.loop": recipe.loop}
        if recipe.description:
            tags["mlflow.note.content"] = recipe.description  # the run's description in the UI
        return self.client.create_run(experiment_id, run_name=run_root.name, tags=tags).info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Parameters are write-once in MLflow: a resumed run adds only keys it has not recorded yet."""
        from mlflow.entities import Param

        recorded = self.client.get_run(self.run_id).data.params
        new = [Param(_mlflow_name(k), str(v)) for k, v in params.items() if _mlflow_name(k) not in recorded]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 parameters per call
            self.client.log_batch(self.run_id, params=new[start : start + 100])

    def log(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(_mlflow_name(k), v, now, step) for k, v in scalars.items()])

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        final = _numbers(metrics)
        self.log(final, int(metrics.get("global_step") or 0))
        self.client.log_dict(self.run_id, metrics, "metrics.json")
        for name in ("recipe.json", "run_info.json"):
            if (self.run_root / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_root / name))
        self.client.log_artifacts(self.run_id, str(model_dir), artifact_path="model")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)


class WandbTracker:
    """A W&B run in project ``recipe.name`` (or ``WANDB_PROJECT``) named after the run folder, its files under
    ``RUN/wandb``: the recipe as config, per-step history, the final metrics as summary, ``RUN/model`` as a model
    artifact."""

    def __init__(self, recipe: Recipe, run_root: Path, state: dict):
        import wandb

        previous = state.get("wandb", {}).get("run_id")
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or recipe.name or "mrpc_finetune",
                name=run_root.name,
                dir=str(run_root),
                id=previous,
                resume="allow" if previous else None,
                reinit="create_new",  # several runs in one process (tests, seed repeats) stay apart
                notes=recipe.description or None,
            )
        except (wandb.Error, OSError) as err:
            raise UserError(f"train.report_to=wandb: {first_line(err)}") from None
        self.run_root = run_root
        state["wandb"] = {"run_id": self.run.id}

    def log_params(self, params: dict[str, Any]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        import wandb

        final = _numbers(metrics)
        self.run.summary.update(final)
        name = re.sub(r"[^\w.-]", "-", self.run_root.name) + "-model"  # artifact names: letters, digits, - _ .
        artifact = wandb.Artifact(name, type="model", metadata=final)
        artifact.add_dir(str(model_dir), policy="immutable")  # no staging copy: the folder stays as it is
        self.run.log_artifact(artifact)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)


# ---------------------------------------------------------------------------------------------------------------
# Checks and helpers
# ---------------------------------------------------------------------------------------------------------------


def _require(tracker: str) -> None:
    package = PACKAGES[tracker]
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"train.report_to={tracker}: the {package} package is not installed; run `pip install {package}` "
            f"(or `pip install 'mrpc-finetune[trackers]'`), or drop {tracker} from train.report_to"
        )


def _read_state(run_root: Path) -> dict:
    try:
        return json.loads((run_root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _mlflow_uri(recipe: Recipe, run_root: Path) -> str:
    """``MLFLOW_TRACKING_URI``; for a resumed run the store it started in; else MLflow's default (made absolute)."""
    import mlflow

    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    recorded = _read_state(Path(run_root)).get("mlflow", {}).get("tracking_uri") if recipe.resume else None
    if recorded and "***" not in recorded:
        return recorded
    return mlflow.get_tracking_uri()


def _check_mlflow_store(uri: str) -> None:
    from . import modeling

    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https") and not modeling.reachable(uri):
        raise UserError(
            f"train.report_to=mlflow: the tracking server {_redact(uri)} cannot be reached; start it, or unset "
            f"MLFLOW_TRACKING_URI to log to a local mlflow.db"
        )
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
        raise UserError(
            f"train.report_to=mlflow: {uri} is an MLflow file store, which MLflow 3 refuses unless "
            f"MLFLOW_ALLOW_FILE_STORE=true; use a database, e.g. MLFLOW_TRACKING_URI=sqlite:///mlflow.db "
            f"(`mlflow migrate-filestore` moves old runs into one)"
        )


def _check_wandb() -> None:
    import wandb

    from . import modeling

    settings = wandb.setup().settings
    if settings.mode in ("offline", "dryrun", "disabled"):
        return
    if not wandb.login(verify=False, prompt=False):
        raise UserError(
            "train.report_to=wandb: not logged in to W&B; run `wandb login` or set WANDB_API_KEY, "
            "or set WANDB_MODE=offline to keep the run under RUN/wandb (`wandb sync` uploads it later)"
        )
    if not modeling.reachable(settings.base_url):
        raise UserError(
            f"train.report_to=wandb: {settings.base_url} cannot be reached; set WANDB_MODE=offline to keep the "
            f"run under RUN/wandb (`wandb sync` uploads it later)"
        )


def _mlflow_name(key: str) -> str:
    """A legal MLflow name: letters, digits and ``_ - . / : space``, with no empty, ``.`` or ``..`` path part."""
    key = re.sub(r"[^\w./ :-]", "_", key)
    return "/".join(part for part in key.split("/") if part not in ("", ".", "..")) or "_"


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _absolute_sqlite(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working folder) -> ``sqlite:////abs/mlflow.db``, to resume from
    anywhere."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(uri.removeprefix("sqlite:///"))
    return uri


def _redact(uri: str) -> str:
    """The URI without a password (``postgresql://user:***@host/db``), fit to print or write down."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
