"""Trackers against the real libraries: a local MLflow SQLite store read back with MlflowClient, a W&B offline run
read back from its transaction log, TensorBoard event files read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe import Recipe, TrainConfig
from mrpc_finetune.run import tracker_backends
from mrpc_finetune.run import trackers as trackers_module
from mrpc_finetune.run.rundir import RunDir
from mrpc_finetune.run.trackers import check_trackers, open_trackers, recipe_params
from mrpc_finetune.train import callbacks

from .conftest import REPO, free_port

STEPS = {
    1: {"train/loss": 0.69, "train/learning_rate": 1e-4, "train/epoch": 0.25},
    2: {"train/loss": 0.61, "train/learning_rate": 5e-5, "train/epoch": 0.5, "eval/accuracy": 0.7, "eval/f1": 0.8},
    4: {"train/loss": 0.52, "train/learning_rate": 0.0, "train/epoch": 1.0, "eval/accuracy": 0.75, "eval/f1": 0.82},
}
FINAL = {"eval_accuracy": 0.75, "eval_f1": 0.82, "eval_rows": 20, "global_step": 4, "loop": "torch", "train_loss": 0.6}


def make_recipe(tmp_path: Path, report_to: list[str], **fields) -> Recipe:
    fields = {"output_dir": str(tmp_path / "run"), **fields}
    return Recipe(
        name="tiny_mrpc", description="a tracker test", train=TrainConfig(lr=1e-4, report_to=report_to), **fields
    )


def finished_run(recipe: Recipe, enabled: bool = True) -> Path:
    """What a loop does: open after the run directory exists, params once, per-step values, final, close."""
    root = recipe.run_dir
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "model" / "config.json").write_text('{"model_type": "bert"}')
    (root / "model" / "model.safetensors").write_bytes(b"\0" * 64)
    (root / "recipe.json").write_text("{}")
    trackers = open_trackers(recipe, root, enabled=enabled)
    trackers.log_params(recipe_params(recipe))
    for step, values in STEPS.items():
        trackers.log(values, step)
    trackers.log_final(FINAL, root / "model")
    trackers.close()
    return root


def logged(key: str) -> list[tuple[int, float]]:
    return [(step, values[key]) for step, values in STEPS.items() if key in values]


# ------------------------------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> str:
    """One MLflow database for the module: creating its tables takes a second or two."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def mlflow_run(uri: str, recipe: Recipe):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(recipe.name)
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_name = '{recipe.run_dir.name}'"
    )
    return client, run


def test_mlflow_records_params_metric_histories_final_metrics_and_model(tmp_path, monkeypatch, sqlite_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    recipe = make_recipe(tmp_path, ["mlflow"])
    root = finished_run(recipe)

    client, run = mlflow_run(sqlite_store, recipe)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params == {key: str(value) for key, value in recipe_params(recipe).items()}
    assert run.data.params["train.lr"] == "0.0001" and "resume" not in run.data.params
    for key in ("train/loss", "train/learning_rate", "eval/accuracy", "eval/f1"):
        history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(history) == logged(key), key
    assert run.data.metrics["eval_accuracy"] == 0.75 and run.data.metrics["eval_rows"] == 20
    assert "loop" not in run.data.metrics  # text values stay in the metrics.json artifact
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "metrics.json", "recipe.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {
        "model/config.json",
        "model/model.safetensors",
    }
    saved = json.loads(Path(client.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path))).read_text())
    assert saved == FINAL
    state = json.loads(RunDir(root).trackers_state.read_text())
    assert state["mlflow"] == {"run_id": run.info.run_id, "tracking_uri": sqlite_store}


@pytest.mark.slow  # MLflow's default store in a fresh folder, twice
def test_mlflow_default_store_and_resume_from_another_folder(tmp_path, monkeypatch):
    """No MLFLOW_TRACKING_URI: MLflow's default, ./mlflow.db with artifacts in ./mlruns. A resumed run continues the
    same MLflow run in that store even when started from another folder."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first_folder, other_folder = tmp_path / "a", tmp_path / "b"
    first_folder.mkdir(), other_folder.mkdir()
    monkeypatch.chdir(first_folder)
    recipe = make_recipe(tmp_path, ["mlflow"])
    recipe.run_dir.mkdir()
    broken = open_trackers(recipe, recipe.run_dir)
    broken.log_params(recipe_params(recipe))
    broken.log(STEPS[1], 1)
    broken.close("KILLED")
    assert (first_folder / "mlflow.db").is_file()
    uri = f"sqlite:///{first_folder / 'mlflow.db'}"
    client, run = mlflow_run(uri, recipe)
    assert run.info.status == "KILLED"

    monkeypatch.chdir(other_folder)
    resumed = make_recipe(tmp_path, ["mlflow"], resume=True)
    with open_trackers(resumed, resumed.run_dir) as trackers:
        trackers.log_params(recipe_params(resumed))  # already recorded: no "changing a parameter" error
        trackers.log(STEPS[2], 2)
    assert not (other_folder / "mlflow.db").exists()
    client, again = mlflow_run(uri, recipe)
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(history) == [(1, 0.69), (2, 0.61)]


def test_mlflow_run_that_raises_is_marked_failed(tmp_path, monkeypatch, sqlite_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.chdir(tmp_path)
    recipe = make_recipe(tmp_path, ["mlflow"], output_dir=str(tmp_path / "crashed"))
    recipe.run_dir.mkdir()
    with pytest.raises(RuntimeError), open_trackers(recipe, recipe.run_dir):
        raise RuntimeError("diverged")
    assert mlflow_run(sqlite_store, recipe)[1].info.status == "FAILED"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:{tmp}/mlruns", "MLFLOW_ALLOW_FILE_STORE=true"),
        ("{tmp}/mlruns", "MLFLOW_ALLOW_FILE_STORE=true"),
        ("http://127.0.0.1:{port}", "cannot be reached"),
    ],
)
def test_mlflow_store_mlflow_refuses_or_cannot_reach_fails_before_the_run(tmp_path, monkeypatch, uri, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(tmp=tmp_path, port=free_port()))
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(UserError, match=message) as error:
        check_trackers(make_recipe(tmp_path, ["mlflow"]))
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # nothing written: no store, no run directory


def test_tracking_uri_password_is_never_written(tmp_path):
    assert tracker_backends.redact("postgresql://me:hunter2@db:5432/mlflow") == "postgresql://me:***@db:5432/mlflow"
    assert tracker_backends.redact("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_missing_package_is_a_one_line_error_naming_the_install(tmp_path, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # what find_spec reports for a package that is not installed
    with pytest.raises(UserError, match=rf"pip install {tracker}\b"):
        check_trackers(make_recipe(tmp_path, ["tensorboard", tracker]))


# ------------------------------------------------------------------------------------------------- W&B


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    import wandb

    home = tmp_path / "home"
    for variable, folder in [("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")]:
        monkeypatch.setenv(variable, str(home / folder))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / "netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb.teardown()  # the settings singleton reads the environment once
    yield
    wandb.teardown()


def wandb_records(path: Path) -> list:
    """The records of a W&B transaction log (``run-<id>.wandb``): a 7-byte header, then 32 KiB blocks of chunks,
    each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, position, pending = [], 7, b""
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:  # a block's tail too short for a chunk header is padding
            position += 32768 - position % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.mark.slow  # W&B starts its service process
def test_wandb_offline_run_lives_under_the_run_dir_with_the_logged_values(tmp_path, wandb_offline):
    recipe = make_recipe(tmp_path, ["wandb"])
    check_trackers(recipe)  # offline: no login needed
    root = finished_run(recipe)

    run_id = json.loads(RunDir(root).trackers_state.read_text())["wandb"]["run_id"]
    (log_file,) = (root / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    # run.finish() hands the records to W&B's service process, which writes them a moment later (a command that
    # exits waits for it): read the log once it holds the run's closing "exit" record.
    deadline = time.monotonic() + 30
    while True:
        records = wandb_records(log_file)
        kinds = [r.WhichOneof("record_type") for r in records]
        if "exit" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    run = records[kinds.index("run")].run
    assert run.display_name == "run" and run.project == "tiny_mrpc"

    config = {}
    for record in records:
        for item in record.config.update if record.HasField("config") else record.run.config.update:
            config[item.key] = json.loads(item.value_json)
    assert {k: v for k, v in config.items() if k != "_wandb"} == json.loads(json.dumps(recipe_params(recipe)))

    history = {}
    for record in records:
        if record.HasField("history"):
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history[row["_step"]] = {k: v for k, v in row.items() if not k.startswith("_")}
    assert history == STEPS

    summary = {}
    for record in records:
        if record.HasField("summary"):
            summary.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.summary.update})
    assert summary["eval_accuracy"] == 0.75 and summary["global_step"] == 4

    (artifact,) = [r.artifact for r in records if r.HasField("artifact")]
    assert artifact.type == "model" and artifact.name == "run-model"
    assert sorted(entry.path for entry in artifact.manifest.contents) == ["config.json", "model.safetensors"]


@pytest.mark.slow  # W&B starts its service process
def test_wandb_online_without_a_login_fails_before_the_run(tmp_path, wandb_offline, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "online")
    wandb.teardown()
    with pytest.raises(UserError, match="not logged in to W&B.*WANDB_MODE=offline"):
        check_trackers(make_recipe(tmp_path, ["wandb"]))


# ------------------------------------------------------------------------------------------------- TensorBoard


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = {}
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found[tag] = [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return found


def test_tensorboard_events_hold_exactly_the_tags_and_values_logged(tmp_path):
    root = finished_run(make_recipe(tmp_path, ["tensorboard"]))
    found = scalars(root / "tensorboard")
    assert set(found) == {key for values in STEPS.values() for key in values}
    for tag, points in found.items():
        assert points == [(step, pytest.approx(value, rel=1e-6)) for step, value in logged(tag)]
    assert not RunDir(root).trackers_state.exists()  # nothing to resume for TensorBoard


@pytest.mark.slow  # a TensorBoard server
def test_make_tensorboard_serves_the_runs_curves(tmp_path):
    """`make tensorboard` (RUNS= a folder of runs): the server lists each run's tags over its HTTP API."""
    import subprocess
    import urllib.request

    root = finished_run(make_recipe(tmp_path, ["tensorboard"]))
    port = free_port()
    command = ["make", "-s", "tensorboard", f"RUNS={tmp_path}", f"TENSORBOARD_PORT={port}"]
    server = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline, served = time.monotonic() + 90, None
        while served is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as answer:
                    served = json.loads(answer.read()) or None  # empty until the first scan of the folder
            except OSError:
                time.sleep(1)
        assert served is not None, server.stderr.read().decode()[-2000:] if server.poll() is not None else "no answer"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    run_name = str((root / "tensorboard").relative_to(tmp_path))
    assert set(served) == {run_name} and set(served[run_name]) == set(scalars(root / "tensorboard"))


def test_trainer_callback_sends_the_trainers_logs_under_the_same_tags(tmp_path):
    from transformers import TrainerControl, TrainerState

    recipe = make_recipe(tmp_path, ["tensorboard"])
    recipe.run_dir.mkdir()
    trackers = open_trackers(recipe, recipe.run_dir)
    callback = callbacks.TrackersCallback(trackers)
    state = TrainerState(global_step=5)
    logs = {"loss": 0.5, "learning_rate": 1e-4, "epoch": 0.5, "eval_rows": 20, "eval_f1": 0.8, "total_flos": 1e9}
    callback.on_log(None, state, TrainerControl(), logs=logs)  # total_flos: the Trainer's alone, so not logged
    trackers.close()
    found = scalars(recipe.run_dir / "tensorboard")
    assert set(found) == {"train/loss", "train/learning_rate", "train/epoch", "eval/f1"}
    assert found["train/loss"] == [(5, 0.5)]


def test_disabled_or_no_trackers_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    for report_to, enabled in [(["tensorboard", "mlflow", "wandb"], False), ([], True)]:
        recipe = make_recipe(tmp_path, report_to)
        root = finished_run(recipe, enabled=enabled)
        assert sorted(p.name for p in root.iterdir()) == ["model", "recipe.json"]
    assert not (tmp_path / "never.db").exists()


def test_close_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="FINISHED, FAILED, KILLED"):
        trackers_module.Trackers().close("DONE")


def test_a_gone_mlflow_run_is_noted_on_stderr(capsys):
    """Notes go to stderr with every other note: stdout holds only what a command reports."""
    from mlflow.exceptions import MlflowException

    class StoreWithoutTheRun:
        def update_run(self, run_id, status):
            raise MlflowException(f"run {run_id} not found")

    tracker = object.__new__(tracker_backends.MLflowTracker)
    tracker.client = StoreWithoutTheRun()
    assert tracker._continue("abc123") is None
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "MLflow run abc123 of this run directory is gone" in captured.err


def test_every_tracker_the_recipe_accepts_has_a_backend_that_keeps_the_protocol():
    """Adding a tracker is one class in tracker_backends.BACKENDS and its name in schema.TRACKERS: nothing else."""
    import inspect

    from mrpc_finetune.recipe.schema import TRACKERS
    from mrpc_finetune.run.tracker_backends import BACKENDS, TrackerBackend

    assert tuple(BACKENDS) == TRACKERS
    wanted = {"check", "log_params", "log", "log_final", "close"}
    for name, backend in BACKENDS.items():
        assert isinstance(backend.package, str) and backend.package, name
        assert wanted <= set(dir(backend)), name
        assert inspect.isfunction(inspect.getattr_static(backend, "check").__func__), f"{name}.check: a staticmethod"
        assert list(inspect.signature(backend).parameters) == ["recipe", "run_root", "state"], name
    assert wanted <= set(dir(TrackerBackend))
