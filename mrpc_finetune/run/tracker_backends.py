"""The tracker backends behind ``trackers.Trackers``: one class per tracker, writing through the library's own
client (SummaryWriter, MlflowClient, wandb). Adding a tracker is a class here that keeps ``TrackerBackend``, its
entry in ``BACKENDS``, and its name in ``recipe/schema.py`` ``TRACKERS`` (the names ``train.report_to`` accepts).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from mrpc_finetune.errors import UserError, first_line, redact
from mrpc_finetune.recipe.schema import Recipe


class TrackerBackend(Protocol):
    """What ``trackers.Trackers`` asks of a backend (the main process alone makes one, after the run folder exists).

    ``state`` is the run's ``RUN/trackers.json``, read back by a resumed run: the constructor must write what a
    resumed run needs to go on logging into the same run under ``state[<tracker>]`` (MLflow and W&B: the run id),
    or a resume starts a second run. ``check`` runs before the run folder exists and raises ``UserError`` (one line)
    for what would fail later: a store that cannot be reached, a missing login."""

    package: ClassVar[str]
    """The Python package the tracker needs (also its pip name): a missing one is reported before anything runs."""

    @staticmethod
    def check(recipe: Recipe, state: dict) -> None: ...

    def __init__(self, recipe: Recipe, run_root: Path, state: dict) -> None: ...

    def log_params(self, params: dict[str, Any]) -> None:
        """The resolved recipe, once per run (``{"train.lr": 1e-4, ...}``)."""

    def log(self, scalars: dict[str, float], step: int) -> None:
        """Scalars under TensorBoard-style tags (``train/loss``, ``eval/f1``) at an optimizer step."""

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        """``metrics.json`` and ``RUN/model``, after both are written."""

    def close(self, status: str) -> None:
        """End the run as FINISHED, FAILED or KILLED."""


class TensorBoardTracker:
    """Event files in ``RUN/tensorboard`` with exactly the tags given; the recipe as a text summary."""

    package = "tensorboard"

    @staticmethod
    def check(recipe: Recipe, state: dict) -> None:
        """Nothing can fail before the event files are written."""

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

    package = "mlflow"

    @staticmethod
    def check(recipe: Recipe, state: dict) -> None:
        """A store MLflow refuses (a file store) or cannot reach (a tracking server that is down)."""
        check_mlflow_store(mlflow_uri(recipe, state))

    def __init__(self, recipe: Recipe, run_root: Path, state: dict):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.run_root = run_root
        uri = mlflow_uri(recipe, state)
        check_mlflow_store(uri)
        self.client = MlflowClient(tracking_uri=uri)
        previous = state.get("mlflow", {}).get("run_id")
        try:
            self.run_id = self._continue(previous) if previous else None
            if self.run_id is None:
                self.run_id = self._start(recipe, run_root)
        except MlflowException as err:
            raise UserError(f"train.report_to=mlflow: {redact(uri)}: {first_line(err)}") from None
        state["mlflow"] = {"run_id": self.run_id, "tracking_uri": redact(_absolute_sqlite(uri))}

    def _continue(self, run_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.update_run(run_id, status="RUNNING")
        except MlflowException:
            print(f"note: MLflow run {run_id} of this run directory is gone; starting a new one", file=sys.stderr)
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

    package = "wandb"

    @staticmethod
    def check(recipe: Recipe, state: dict) -> None:
        """Online W&B without a login or without a reachable server (offline mode needs neither)."""
        import wandb

        from mrpc_finetune import hub

        settings = wandb.setup().settings
        if settings.mode in ("offline", "dryrun", "disabled"):
            return
        if not wandb.login(verify=False, prompt=False):
            raise UserError(
                "train.report_to=wandb: not logged in to W&B; run `wandb login` or set WANDB_API_KEY, "
                "or set WANDB_MODE=offline to keep the run under RUN/wandb (`wandb sync` uploads it later)"
            )
        if not hub.reachable(settings.base_url):
            raise UserError(
                f"train.report_to=wandb: {settings.base_url} cannot be reached; set WANDB_MODE=offline to keep the "
                f"run under RUN/wandb (`wandb sync` uploads it later)"
            )

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


def mlflow_uri(recipe: Recipe, state: dict) -> str:
    """``MLFLOW_TRACKING_URI``; for a resumed run the store it started in; else MLflow's default (made absolute)."""
    import mlflow

    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    recorded = state.get("mlflow", {}).get("tracking_uri") if recipe.resume else None
    if recorded and "***" not in recorded:
        return recorded
    return mlflow.get_tracking_uri()


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


def check_mlflow_store(uri: str) -> None:
    from mrpc_finetune import hub

    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https") and not hub.reachable(uri):
        raise UserError(
            f"train.report_to=mlflow: the tracking server {redact(uri)} cannot be reached; start it, or unset "
            f"MLFLOW_TRACKING_URI to log to a local mlflow.db"
        )
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
        raise UserError(
            f"train.report_to=mlflow: {uri} is an MLflow file store, which MLflow 3 refuses unless "
            f"MLFLOW_ALLOW_FILE_STORE=true; use a database, e.g. MLFLOW_TRACKING_URI=sqlite:///mlflow.db "
            f"(`mlflow migrate-filestore` moves old runs into one)"
        )


BACKENDS: dict[str, type[TrackerBackend]] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": MLflowTracker,
    "wandb": WandbTracker,
}
"""``train.report_to`` name -> backend class; ``recipe/schema.py`` ``TRACKERS`` lists the same names."""
