"""The loop contract: every test here runs against every loop (``loop=trainer``, ``torch``, ``accelerate``).

A loop keeps the README's promises when it passes this module: it learns; a nan or inf loss stops it with exit 2
and finite checkpoints; the best checkpoint follows the metric's direction; SIGKILL + ``resume=true`` ends where
an unbroken run ends; it writes the same ``metrics.json`` keys and TensorBoard tags; regression and two dev splits
work; gradient accumulation equals a large batch; ``eval.patience`` stops it; a labelled test split is scored once
and never picks a checkpoint; bad ``eval.metric`` / ``data.max_length`` stop it before any run; and under
``torchrun`` two processes write one run whose metrics equal a single-process evaluation of its model.
Tiny random BERT on CPU; each run takes seconds.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mrpc_finetune.cli import main as cli_main
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.run import rundir
from mrpc_finetune.train import hf_adapter, loop_parts, train_with_loop

from .conftest import REPO, free_port, mrpc_rows, write_jsonl

LOOPS = ["trainer", "torch", "accelerate"]
ON_CPU = not torch.cuda.is_available()
CLOSE = 1e-5 if ON_CPU else 2e-2
"""Relative tolerance between runs that should compute the same numbers (looser under a GPU's mixed precision)."""


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons; each run in this process starts from a clean state."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def one_loop_fast(fast: str) -> list:
    """Every loop, with all but ``fast`` marked slow: a check that costs seconds per loop runs for one loop in
    ``make test`` (each such check picks another, so every loop is in the fast suite) and for all in ``make test-all``."""
    return [pytest.param(name, marks=() if name == fast else pytest.mark.slow) for name in LOOPS]


@pytest.fixture(params=LOOPS)
def loop(request):
    reset_accelerate_state()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only fight over the shared cores
    yield request.param
    torch.set_num_threads(threads)
    reset_accelerate_state()


def keyword_recipe(loop: str, model_dir: Path, data_dir: Path, out: Path, *extra: str):
    return load_recipe(
        "sst2",
        [
            f"loop={loop}",
            f"model.name={model_dir}",
            f"data.dir={data_dir}",
            f"output_dir={out}",
            # found by a sweep: learns every draw of rows tried, in every loop (1e-2 stalls at ln 2 on some)
            "train.batch_size=8",
            "train.lr=3e-3",
            "train.warmup_ratio=0.1",
            "train.epochs=8",
            "train.logging_steps=3",
            "eval.batch_size=16",
            *extra,
        ],
    )


def train(recipe) -> tuple[dict, list[tuple[int, dict]]]:
    """The final metrics and every (step, metrics) reported by the evaluations during training."""
    history = []
    metrics = train_with_loop(recipe, on_evaluate=lambda m, step: history.append((step, dict(m))))
    return metrics, history


def tensorboard_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


# --- learning, keys, the held-out test split ------------------------------------------------------------------

EVAL_KEYS = {"loss", "accuracy", "runtime", "samples_per_second", "steps_per_second", "rows"}
RUN_KEYS = {
    "epoch",
    "train_loss",
    "train_runtime",
    "global_step",
    "best_checkpoint",
    "stopped_early",
    "loop",
    "precision",
    "num_processes",
    "effective_batch_size",
    "wall_seconds",
    "peak_memory_mb",
}
TAGS = {
    *("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "train/train_loss", "train/train_runtime"),
    *(f"{split}/{key}" for split in ("eval", "test") for key in EVAL_KEYS - {"rows"}),
}
"""Every TensorBoard tag of the keyword run, the same in every loop (and so in MLflow and W&B, fed the same logs)."""


@pytest.fixture(scope="module", params=LOOPS)
def keyword_run(request, tiny_model_dir, keyword_dir, tmp_path_factory):
    """One learning run per loop (8 epochs, an evaluation and a checkpoint each), shared by the tests below."""
    reset_accelerate_state()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    recipe = keyword_recipe(request.param, tiny_model_dir, keyword_dir, tmp_path_factory.mktemp("run") / "run")
    try:
        metrics, history = train(recipe)
    finally:
        torch.set_num_threads(threads)
        reset_accelerate_state()
    return recipe, metrics, history


def test_it_learns(keyword_run):
    recipe, metrics, history = keyword_run
    majority = 0.5  # validation alternates the two labels
    assert metrics["eval_accuracy"] >= majority + 0.4, metrics  # an untrained or broken loop stays near 0.5
    assert metrics["eval_loss"] < math.log(2), metrics  # a coin flip scores ln 2; the best checkpoint (the first
    # to reach the top accuracy) need not have the lowest loss
    assert history[0][1]["eval_loss"] > metrics["eval_loss"]  # and it got there by training
    assert metrics["global_step"] == 96 and not metrics["stopped_early"]  # 96 / 8 = 12 steps x 8 epochs


def test_held_out_test_is_scored_once_and_never_selects(keyword_run):
    recipe, metrics, history = keyword_run
    accuracies = [m["eval_accuracy"] for _, m in history]
    assert min(accuracies) < max(accuracies)  # selecting by the flipped test split would pick another checkpoint
    best_step = history[accuracies.index(max(accuracies))][0]  # the first of equals, as the Trainer keeps it
    assert Path(metrics["best_checkpoint"]).name == f"checkpoint-{best_step}"
    assert metrics["test_accuracy"] == pytest.approx(1 - metrics["eval_accuracy"])  # the selected model, scored
    assert metrics["test_rows"] == metrics["eval_rows"] == 40
    assert not any(key.startswith("test_") for _, m in history for key in m)  # never during training
    summary = rundir.summary(rundir.RunDir(recipe.run_dir), metrics)
    assert "test_accuracy" in summary and "not used for selection" in summary


def test_same_metrics_keys_and_tensorboard_tags(keyword_run):
    recipe, metrics, _ = keyword_run
    expected = {f"eval_{k}" for k in EVAL_KEYS} | {f"test_{k}" for k in EVAL_KEYS} | RUN_KEYS
    saved = json.loads((recipe.run_dir / "metrics.json").read_text())
    assert set(saved) == expected, set(saved) ^ expected
    assert saved["loop"] == recipe.loop and saved["num_processes"] == 1 and saved["effective_batch_size"] == 8
    tags = tensorboard_tags(recipe.run_dir / "tensorboard")
    assert tags == TAGS, " ".join(sorted(tags ^ TAGS))  # the same set from every loop, not merely a common core
    assert load_recipe(str(recipe.run_dir / "recipe.json")) == recipe  # the run can be repeated from its recipe


def test_provenance_and_model_card(keyword_run, keyword_dir):
    import hashlib

    from huggingface_hub import ModelCard

    recipe, metrics, _ = keyword_run
    info = json.loads((recipe.run_dir / "run_info.json").read_text())
    assert (info["num_processes"], info["precision"]) == (1, metrics["precision"])
    files = info["data"]["files"]
    assert set(files) == {"train", "validation", "test"}
    for split, record in files.items():
        assert record["sha256"] == hashlib.sha256((keyword_dir / f"{split}.jsonl").read_bytes()).hexdigest()
    assert {"torch", "transformers", "datasets", "accelerate"} <= set(info["versions"])
    card = ModelCard.load(recipe.run_dir / "model" / "README.md")
    scores = {
        (result.dataset_split, result.metric_type): result.metric_value for result in card.data.eval_results or []
    }
    assert scores[("validation", "accuracy")] == pytest.approx(metrics["eval_accuracy"])
    assert scores[("test", "accuracy")] == pytest.approx(metrics["test_accuracy"])
    assert "not used for selection" in card.text


@pytest.mark.slow  # MLflow's import and store cost seconds; tests/test_trackers.py checks the MLflow backend fast
def test_mlflow_run_shows_the_recipe_curves_final_metrics_and_model(loop, tiny_overrides, tmp_path, monkeypatch):
    """A real local MLflow store (SQLite) after a real run: the recipe as params, the TensorBoard tags as per-step
    curves, metrics.json's numbers as final metrics, and the model with its card as artifacts."""
    from mlflow import MlflowClient

    from mrpc_finetune.run.trackers import recipe_params

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)  # MLflow keeps a SQLite store's artifacts in ./mlruns
    extra = [f"loop={loop}", "train.report_to=[tensorboard,mlflow]", "train.max_steps=4", "eval.strategy=steps"]
    recipe = load_recipe("mrpc_minilm", [*tiny_overrides, *extra, "eval.steps=2", "train.logging_steps=1"])
    metrics, history = train(recipe)

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("mrpc_minilm").experiment_id])
    assert run.info.status == "FINISHED"
    recorded = load_recipe(str(recipe.run_dir / "recipe.json"))
    assert run.data.params == {key: str(value) for key, value in recipe_params(recorded).items()}
    curve = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval/accuracy")]
    assert sorted(curve)[:2] == [(step, pytest.approx(m["eval_accuracy"])) for step, m in history]
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 4
    saved = json.loads((recipe.run_dir / "metrics.json").read_text())
    for key, value in saved.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert run.data.metrics[key] == pytest.approx(value), key
    model_files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.safetensors", "model/README.md", "model/config.json"} <= model_files


# --- stopping: nan, patience -----------------------------------------------------------------------------------


def run_cli(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = cli_main(list(argv))
    return code, capsys.readouterr().err


def checkpoint_eval_loss(checkpoint: Path, data_dir: Path) -> float:
    """A checkpoint loaded as ``model.name=CHECKPOINT`` would load it: its mean loss on the validation rows."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    rows = [json.loads(line) for line in (data_dir / "validation.jsonl").read_text().splitlines()]
    batch = tokenizer([r["sentence1"] for r in rows], [r["sentence2"] for r in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch, labels=torch.tensor([r["label"] for r in rows])).loss.item()


def test_nan_loss_stops_with_exit_2_and_finite_checkpoints(
    loop, capsys, tiny_overrides, tiny_mrpc_dir, tmp_path, monkeypatch
):
    from transformers import BertForSequenceClassification

    original, training_forwards = BertForSequenceClassification.forward, []

    @functools.wraps(original)  # the Trainer reads the signature to pick the input columns
    def forward(self, *args, **kwargs):
        outputs = original(self, *args, **kwargs)
        if self.training:
            training_forwards.append(1)
            if len(training_forwards) >= 7:
                outputs.loss = outputs.loss * float("nan")
        return outputs

    monkeypatch.setattr(BertForSequenceClassification, "forward", forward)
    extra = ["eval.strategy=steps", "eval.steps=4", "train.max_steps=12", f"loop={loop}"]
    code, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, *extra)
    checkpoints = tmp_path / "run" / "checkpoints"
    last_line = err.splitlines()[-1]
    assert code == 2 and last_line.startswith("error: the training loss is nan at step 7"), err
    assert f"model.name={checkpoints / 'checkpoint-4'}" in last_line and "Traceback" not in err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-4"]
    assert all(torch.isfinite(t).all() for t in weights(checkpoints / "checkpoint-4").values())
    assert not (tmp_path / "run" / "metrics.json").exists()
    # the advice holds: the named checkpoint is a model folder a new run can start from, and it evaluates finite
    assert math.isfinite(checkpoint_eval_loss(checkpoints / "checkpoint-4", tiny_mrpc_dir))


def test_diverging_learning_rate_stops_with_one_line(loop, capsys, tiny_overrides, tiny_mrpc_dir, tmp_path):
    """The issue's case: a huge learning rate without clipping, on every loop. Weights one step from nan can still
    be finite: an evaluation of them that is not stops the run before they are kept as a checkpoint."""
    extra = ["train.lr=1e30", "train.max_grad_norm=0", "train.max_steps=15", "eval.strategy=steps", "eval.steps=1"]
    code, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, *extra, f"loop={loop}")
    last_line = err.splitlines()[-1]
    assert code == 2 and last_line.startswith(("error: the training loss is", "error: the evaluation loss")), err
    assert "train.lr (now 1e+30)" in last_line  # the recipe's rate, in every loop (not the warm-up's current one)
    assert not (tmp_path / "run" / "metrics.json").exists()
    kept = sorted((tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    assert all(math.isfinite(checkpoint_eval_loss(path, tiny_mrpc_dir)) for path in kept), kept


def test_patience_stops_after_evaluations_without_improvement(loop, tiny_model_dir, keyword_dir, tmp_path):
    # A learning rate too small to move any prediction: accuracy stays put, so no evaluation improves on the first.
    extra = ["train.lr=1e-9", "eval.strategy=steps", "eval.steps=2", "train.max_steps=20", "eval.patience=2"]
    metrics, history = train(keyword_recipe(loop, tiny_model_dir, keyword_dir, tmp_path / "run", *extra))
    assert [step for step, _ in history] == [2, 4, 6]  # the first sets the best, two more do not improve it
    assert metrics["global_step"] == 6 and metrics["stopped_early"]
    assert Path(metrics["best_checkpoint"]).name == "checkpoint-2"


# --- the best checkpoint follows the metric's direction ---------------------------------------------------------


@pytest.mark.parametrize("metric", ["loss", pytest.param("accuracy", marks=pytest.mark.slow)])
@pytest.mark.parametrize("loop", one_loop_fast("trainer"), indirect=True)
def test_best_checkpoint_follows_the_metric_direction(loop, metric, tiny_model_dir, keyword_dir, tmp_path):
    extra = [f"eval.metric={metric}", "eval.strategy=steps", "eval.steps=8", "train.max_steps=48"]
    metrics, history = train(keyword_recipe(loop, tiny_model_dir, keyword_dir, tmp_path / "run", *extra))
    values = [m[f"eval_{metric}"] for _, m in history]
    best = min(values) if metric == "loss" else max(values)
    assert min(values) < max(values)  # the two directions would pick different checkpoints
    assert Path(metrics["best_checkpoint"]).name == f"checkpoint-{history[values.index(best)][0]}"
    assert metrics[f"eval_{metric}"] == pytest.approx(best, rel=CLOSE)  # the final evaluation is of that checkpoint
    kept = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert len(kept) == 2 and {Path(metrics["best_checkpoint"]).name, "checkpoint-48"} <= kept  # the default limit


@pytest.mark.parametrize("loop", one_loop_fast("accelerate"), indirect=True)
def test_a_limit_of_one_checkpoint_ends_with_the_best_alone(loop, tiny_model_dir, keyword_dir, tmp_path):
    """As the Trainer does: the newest checkpoint stays beside the best while training (to resume from), and goes
    once the run is finished."""
    extra = ["eval.strategy=steps", "eval.steps=8", "train.max_steps=96", "eval.save_total_limit=1"]
    metrics, history = train(keyword_recipe(loop, tiny_model_dir, keyword_dir, tmp_path / "run", *extra))
    best = Path(metrics["best_checkpoint"]).name
    assert best != "checkpoint-96", history  # the first to reach the top accuracy, not the last
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [best]


# --- a killed run resumes to the unbroken result ---------------------------------------------------------------


MIXED_PRECISION = {"trainer": "bf16", "torch": "fp16", "accelerate": "bf16"}
"""What each loop runs under mixed precision on a CPU as on a GPU (the torch loop's fp16 has a GradScaler to keep)."""


@pytest.mark.slow  # a SIGKILLed subprocess and two more runs, per loop and variant
@pytest.mark.parametrize("variant", ["fp32", "mixed", "mean"])
def test_sigkill_then_resume_ends_like_an_unbroken_run(loop, variant, overrides, tmp_path):
    """Killed (SIGKILL) when evaluating step 6, i.e. mid-epoch with checkpoint-3 complete; dropout on, gradient
    accumulation on. The resumed run ends with the unbroken run's weights, losses and metrics: in fp32 with the
    recipe's pooler, under mixed precision, and with mean pooling. Under fp16 the GradScaler grows its scale every 2
    steps, so a resume that lost the scaler's state ends with another scale."""
    mixed = variant == "mixed"
    pooler = "mean" if variant == "mean" else "identity"
    common = [*overrides, f"model.pooler={pooler}"]
    # 64 rows / batch 8 = 8 micro-batches, 4 optimizer steps per epoch; evaluations at 3, 6, 9, 10.
    common += [f"loop={loop}", "train.grad_accum=2", "train.max_steps=10", "eval.strategy=steps", "eval.steps=3"]
    precision = MIXED_PRECISION[loop] if mixed else "fp32"
    common.append(f"train.precision={precision}")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}

    def worker(recipe: str, *arguments: str, kill: list[str] = ()) -> subprocess.CompletedProcess:
        command = [sys.executable, str(REPO / "tests" / "loop_worker.py"), "--scaler-growth-interval", "2", *kill]
        return subprocess.run([*command, recipe, *arguments], env=env, capture_output=True, text=True, timeout=300)

    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    assert worker("mrpc_minilm", *common, f"output_dir={unbroken}").returncode == 0
    result = worker("mrpc_minilm", *common, f"output_dir={killed}", kill=["--kill-at-step", "6"])
    assert result.returncode == -9, result.stderr[-3000:]  # SIGKILL
    assert rundir.RunDir(killed).last_checkpoint().name == "checkpoint-3"
    assert not (killed / "metrics.json").exists()
    resumed_from = weights(killed / "checkpoints" / "checkpoint-3")
    result = worker(str(killed), "resume=true")  # as `mrpc-finetune train RUN resume=true`
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stderr and "checkpoint-3" in result.stderr

    want, got = (json.loads((run / "metrics.json").read_text()) for run in (unbroken, killed))
    assert got["global_step"] == want["global_step"] == 10
    assert got["precision"] == want["precision"] == precision
    for key in ("train_loss", "eval_loss", "eval_accuracy"):
        assert got[key] == pytest.approx(want[key], rel=CLOSE if precision == "fp32" else 2e-2), key
    final = "checkpoints/checkpoint-10"
    a, b = weights(unbroken / final), weights(killed / final)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6 if ON_CPU else 1e-3, msg=key)
    assert any(not torch.equal(resumed_from[k], a[k]) for k in a)  # resumed from checkpoint-3, then trained on
    if precision == "fp16":
        scales = [torch.load(run / final / "scaler.pt", weights_only=True) for run in (unbroken, killed)]
        assert scales[0]["scale"] == scales[1]["scale"] > 2.0**16  # grown from torch's 2^16 start, and kept
        assert scales[0]["_growth_tracker"] == scales[1]["_growth_tracker"]


# --- task shapes: regression, two dev splits --------------------------------------------------------------------


def glue_shape_dir(folder: Path, task: str) -> Path:
    rng = random.Random(0)
    folder.mkdir(parents=True)
    if task == "stsb":
        splits = {"train": 24, "validation": 10}
        make = lambda i: {"sentence1": f"a {i} b", "sentence2": f"c {i % 3} d", "label": rng.uniform(0, 5), "idx": i}  # noqa: E731
    else:
        splits = {"train": 24, "validation_matched": 9, "validation_mismatched": 7}
        make = lambda i: {"premise": f"x {i} y", "hypothesis": f"z {i % 4}", "label": i % 3, "idx": i}  # noqa: E731
    for split, n in splits.items():
        write_jsonl(folder / f"{split}.jsonl", [make(i) for i in range(n)])
    return folder


@pytest.mark.parametrize(
    "task, keys",
    [
        ("stsb", ["eval_pearson", "eval_spearmanr", "eval_loss"]),
        ("mnli", ["eval_validation_matched_accuracy", "eval_validation_mismatched_accuracy"]),
    ],
)
@pytest.mark.parametrize("loop", one_loop_fast("accelerate"), indirect=True)
def test_regression_and_two_dev_splits(loop, task, keys, tiny_model_dir, tmp_path):
    recipe = load_recipe(
        task,
        [
            f"loop={loop}",
            f"model.name={tiny_model_dir}",
            f"data.dir={glue_shape_dir(tmp_path / 'data', task)}",
            f"output_dir={tmp_path / 'run'}",
            "train.batch_size=8",
            "train.max_steps=6",
            "eval.strategy=steps",
            "eval.steps=3",
        ],
    )
    metrics, history = train(recipe)
    for key in keys:
        assert math.isfinite(metrics[key]) and all(math.isfinite(m[key]) for _, m in history), key
    if task == "mnli":
        assert metrics["eval_validation_matched_rows"] == 9 and metrics["eval_validation_mismatched_rows"] == 7
    assert Path(metrics["best_checkpoint"]).parent == recipe.run_dir / "checkpoints"


@pytest.mark.parametrize("loop", one_loop_fast("accelerate"), indirect=True)
def test_both_orders_score_the_final_model_as_eval_does_and_choose_nothing(loop, tiny_model_dir, tmp_path):
    """``eval.both_orders`` on STS-B (a regression: the two orders' scores averaged): the end of the run adds
    ``eval_both_orders_*`` and ``test_both_orders_*``, equal to ``mrpc-finetune eval`` of the saved model, while the
    evaluations that pick the best checkpoint score one order."""
    from mrpc_finetune.inference.evaluation import evaluate_run

    data = glue_shape_dir(tmp_path / "data", "stsb")
    write_jsonl(
        data / "test.jsonl", [{"sentence1": f"e {i}", "sentence2": f"f {i % 2}", "label": i / 2} for i in range(8)]
    )
    extra = ["eval.both_orders=true", "train.batch_size=8", "train.max_steps=4", "eval.strategy=steps", "eval.steps=2"]
    recipe = load_recipe(
        "stsb",
        [f"loop={loop}", f"model.name={tiny_model_dir}", f"data.dir={data}", f"output_dir={tmp_path / 'run'}", *extra],
    )
    metrics, history = train(recipe)
    assert history and not any("both_orders" in key for _, m in history for key in m)
    for split, rows in (("validation", 10), ("test", 8)):
        evaluated = evaluate_run(recipe.run_dir, split=split)
        prefix = "eval" if split == "validation" else "test"
        assert evaluated["eval_rows"] == metrics[f"{prefix}_rows"] == rows
        for metric in ("pearson", "spearmanr", "loss") if ON_CPU else ("loss",):  # a GPU's loops run autocast
            mine, theirs = metrics[f"{prefix}_both_orders_{metric}"], evaluated[f"eval_both_orders_{metric}"]
            # the tiny model's scores differ by 1e-5 between rows, so a one-ulp difference in a score (the model in
            # memory and the one read back) moves the Pearson correlation, computed in float32, by about 1e-4
            assert math.isfinite(mine) and mine == pytest.approx(
                theirs, rel=CLOSE, abs=1e-3 if metric == "pearson" else 0
            )
        one_order = metrics[f"{prefix}_pearson"]
        assert metrics[f"{prefix}_both_orders_pearson"] != one_order  # another score than one order's


# --- gradient accumulation ---------------------------------------------------------------------------------------


def test_accumulation_matches_a_large_batch(loop, tiny_overrides, tmp_path, monkeypatch):
    """Batches of 24 and accumulated windows of 3 batches of 8 make the same 3 updates (dropout off).

    64 rows: 24 + 24 + 16 against (8, 8, 8) + (8, 8, 8) + (8, 8), so the short last window is covered too.
    AdamW's first steps are nearly the gradient's sign, blind to a wrongly scaled loss; plain SGD is not.
    """

    def sgd(model, train):
        return torch.optim.SGD(model.parameters(), lr=train.lr)

    def trainer_sgd(self):
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.args.learning_rate)
        return self.optimizer

    monkeypatch.setattr(loop_parts, "build_optimizer", sgd)
    monkeypatch.setattr(hf_adapter.LengthBatchedTrainer, "create_optimizer", trainer_sgd)
    common = [
        *tiny_overrides,
        f"loop={loop}",
        "model.dropout=0",
        "model.classifier_dropout=0",
        "train.sampler=random",  # the same shuffled rows whatever the batch size
        "train.max_steps=3",
        "train.max_grad_norm=0",
        "train.lr=0.5",
        "eval.strategy=no",
    ]

    def run(batch_size: int, grad_accum: int):
        reset_accelerate_state()
        out = tmp_path / f"{batch_size}x{grad_accum}"
        recipe = load_recipe(
            "mrpc_minilm",
            [*common, f"train.batch_size={batch_size}", f"train.grad_accum={grad_accum}", f"output_dir={out}"],
        )
        return train_with_loop(recipe), weights(out / "model")

    large_metrics, large = run(24, 1)
    accumulated_metrics, accumulated = run(8, 3)
    _, small = run(8, 1)  # control: 3 steps on 8 rows each end visibly elsewhere

    assert accumulated_metrics["train_loss"] == pytest.approx(large_metrics["train_loss"], rel=CLOSE)
    for key in large:
        torch.testing.assert_close(accumulated[key], large[key], rtol=1e-4 if ON_CPU else 1e-2, atol=1e-6, msg=key)
    assert max((small[k] - large[k]).abs().max().item() for k in large) > 1e-3


# --- the optimizer, the training rows ------------------------------------------------------------------------------


def test_every_loop_builds_its_optimizer_from_the_recipe(loop, tiny_overrides, monkeypatch):
    """One AdamW definition for all loops (the Trainer's create_optimizer included): layer-wise rates reach each."""
    built = []
    original = loop_parts.build_optimizer

    def recording(model, train_config):
        optimizer = original(model, train_config)
        built.append(sorted({group["lr"] for group in optimizer.param_groups}))  # before the schedule moves them
        return optimizer

    monkeypatch.setattr(loop_parts, "build_optimizer", recording)
    extra = ["train.lr=1e-3", "train.layer_lr_decay=0.5", "train.max_steps=2", "eval.strategy=no", f"loop={loop}"]
    train(load_recipe("mrpc_minilm", [*tiny_overrides, *extra]))
    assert len(built) == 1
    assert built[0] == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])  # embeddings, layer 0, layer 1, the top


@pytest.mark.parametrize("loop", one_loop_fast("torch"), indirect=True)
def test_mean_pooling_learns_with_the_head_at_the_top_rate_and_reloads_alike(
    loop, tiny_model_dir, keyword_dir, tmp_path, monkeypatch
):
    """``model.pooler=mean``: the head reads the mean of the tokens (no pooler), trains at the top layer-wise rate,
    and ``eval`` of the finished run (this package's loader) gives back the run's own final scores."""
    from mrpc_finetune.inference.evaluation import evaluate_run

    rates = {}
    original = loop_parts.build_optimizer

    def recording(model, train_config):
        optimizer = original(model, train_config)
        lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
        rates.update({name: lr_of[id(p)] for name, p in model.named_parameters()})
        return optimizer

    monkeypatch.setattr(loop_parts, "build_optimizer", recording)
    extra = ("model.pooler=mean", "train.layer_lr_decay=0.5")
    recipe = keyword_recipe(loop, tiny_model_dir, keyword_dir, tmp_path / "run", *extra)
    metrics, _ = train(recipe)
    assert metrics["eval_accuracy"] >= 0.9, metrics
    assert not any("pooler" in name for name in rates)
    assert rates["classifier.weight"] == rates["classifier.bias"] == pytest.approx(3e-3)  # the top rate
    assert rates["bert.encoder.layer.1.output.dense.weight"] == pytest.approx(1.5e-3)
    assert rates["bert.embeddings.word_embeddings.weight"] == pytest.approx(3e-3 / 8)
    again = evaluate_run(recipe.run_dir)
    assert again["eval_accuracy"] == metrics["eval_accuracy"]
    assert again["eval_loss"] == pytest.approx(metrics["eval_loss"], rel=CLOSE)


def test_swapped_pairs_double_the_training_rows(loop, tiny_overrides):
    extra = ["data.swap_pairs=true", "train.epochs=1", "eval.strategy=no", f"loop={loop}"]
    metrics, _ = train(load_recipe("mrpc_minilm", [*tiny_overrides, *extra]))
    assert metrics["global_step"] == 16  # 64 rows and their 64 swapped twins, batches of 8


# --- checks before any run ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "eval.metric=acuracy",
            "eval.metric: 'acuracy' is not a metric of task mrpc (accuracy, f1, loss); did you mean accuracy?",
        ),
        ("eval.metric=pearson", "eval.metric: 'pearson' is not a metric of task mrpc"),
        ("data.max_length=1024", "data.max_length=1024: model.name="),
        ("data.task=sst2", "data.swap_pairs: needs a pair task (two text columns); sst2 has 1: sentence"),
    ],
)
@pytest.mark.parametrize("loop", one_loop_fast("torch"), indirect=True)
def test_bad_settings_stop_before_any_run(loop, override, message, capsys, tiny_overrides, tmp_path):
    swap = ["data.swap_pairs=true"] if "swap_pairs" in message else []
    code, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, f"loop={loop}", *swap, override)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


# --- two processes under torchrun ---------------------------------------------------------------------------------


@pytest.mark.slow  # torchrun: two processes per loop
def test_two_processes_write_one_run_that_evaluates_alike(loop, tiny_model_dir, tmp_path):
    """torchrun, 2 gloo processes: one run directory, each of the 21 validation rows counted once, and the same
    accuracy, F1 and loss as a single-process evaluation of the saved model."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_jsonl(data_dir / "train.jsonl", mrpc_rows(40, seed=3))
    write_jsonl(data_dir / "validation.jsonl", mrpc_rows(21, seed=4))  # odd: uneven shares would show duplicates
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "mrpc_finetune",
        "train",
        "mrpc_minilm",
        f"loop={loop}",
        f"model.name={tiny_model_dir}",
        f"data.dir={data_dir}",
        f"output_dir={run}",
        "train.batch_size=4",
        "train.max_steps=4",
        "train.lr=1e-3",
        "eval.batch_size=4",  # 21 rows: the last batch of a share is short
        "eval.strategy=steps",
        "eval.steps=2",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["num_processes"], metrics["effective_batch_size"], metrics["eval_rows"]) == (2, 8, 21)
    assert metrics["global_step"] == 4 and metrics["loop"] == loop
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "metrics.json",
        "model",
        "recipe.json",
        "run_info.json",
        "tensorboard",
    ]
    assert json.loads((run / "run_info.json").read_text())["num_processes"] == 2
    assert (run / "model" / "README.md").is_file()  # the model card, written by the main process alone
    # One process, every row of the file, the saved model: `mrpc-finetune eval` on the CPU like the two processes,
    # so that the figures must agree on a CUDA host too.
    evaluated = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "eval", str(run)], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    single = json.loads((run / "eval_validation.json").read_text())
    assert single["eval_rows"] == 21
    assert single["eval_accuracy"] == metrics["eval_accuracy"] and single["eval_f1"] == metrics["eval_f1"]
    assert metrics["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-5)
    assert np.isfinite(metrics["train_loss"])
