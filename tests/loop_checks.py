"""Checks that the plain PyTorch loop and the Accelerate loop must both pass (called from their test files)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from mrpc_finetune import loop_utils
from mrpc_finetune.loop_utils import LoopState
from mrpc_finetune.recipe import Recipe, load_recipe

REQUIRED_TAGS = {"train/loss", "train/learning_rate", "eval/loss", "eval/accuracy", "eval/f1"}


class Interrupted(Exception):
    """Raised by a test right after a checkpoint is written, as a crash or Ctrl-C would stop a run."""


def tensorboard_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def model_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def trainer_reference(model_dir: Path, data_dir: Path, out: Path) -> dict:
    from mrpc_finetune import trainer_loop

    overrides = [f"model.name={model_dir}", f"data.dir={data_dir}", f"output_dir={out / 'run'}"]
    recipe = load_recipe(
        "mrpc_minilm", [*overrides, "train.batch_size=8", "train.max_steps=2", "train.logging_steps=1"]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only fight over the shared cores
    try:
        metrics = trainer_loop.main(recipe)
    finally:
        torch.set_num_threads(threads)
    return {"metric_keys": set(metrics), "tags": tensorboard_tags(recipe.run_dir / "tensorboard")}


def check_smoke(main, recipe: Recipe, tiny_model_dir: Path, reference: dict) -> None:
    """It learns, checkpoints, logs the Trainer's tags and leaves the Trainer's run layout and metrics keys."""
    metrics = main(recipe)
    run = recipe.run_dir

    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["eval_loss"])
    saved = json.loads((run / "metrics.json").read_text())
    assert set(saved) == reference["metric_keys"]
    assert saved["loop"] == recipe.loop and saved["global_step"] == 16 and saved["eval_rows"] == 20
    assert 0.0 <= saved["eval_accuracy"] <= 1.0
    assert load_recipe(str(run / "recipe.json")) == recipe
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-16", "checkpoint-8"]
    assert Path(saved["best_checkpoint"]).parent == run / "checkpoints"
    tags = tensorboard_tags(run / "tensorboard")
    assert REQUIRED_TAGS <= tags <= reference["tags"], tags - reference["tags"]

    trained = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert trained.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    key = next(k for k in initial if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.equal(initial[key], trained.bert.encoder.layer[0].attention.self.query.weight)


def check_resume(module, overrides: list[str], tmp_path: Path, monkeypatch, between_runs=lambda: None) -> None:
    """Stopped right after checkpoint-3 (mid-epoch, dropout on), then resumed: the same weights as an unbroken run."""
    extra = ["train.grad_accum=2", "eval.strategy=steps", "eval.steps=3"]  # 4 steps/epoch, 8 in all
    unbroken = load_recipe("mrpc_minilm", [*overrides, *extra, f"output_dir={tmp_path / 'unbroken'}"])
    broken = dataclasses.replace(unbroken, output_dir=str(tmp_path / "broken"))
    torch.use_deterministic_algorithms(True)
    try:
        expected = module.main(unbroken)
        between_runs()
        save = module._save_checkpoint

        def save_then_stop(*args, **kwargs):
            save(*args, **kwargs)
            raise Interrupted

        with monkeypatch.context() as patch:
            patch.setattr(module, "_save_checkpoint", save_then_stop)
            with pytest.raises(Interrupted):
                module.main(broken)
        between_runs()
        assert not (broken.run_dir / "metrics.json").exists()
        assert [p.name for p in (broken.run_dir / "checkpoints").iterdir()] == ["checkpoint-3"]
        loaded = []
        load = LoopState.load

        def recording_load(path):
            loaded.append(Path(path).name)
            return load(path)

        with monkeypatch.context() as patch:
            patch.setattr(LoopState, "load", staticmethod(recording_load))
            resumed = module.main(dataclasses.replace(broken, resume=True))
        assert loaded == ["checkpoint-3"]  # it went on from the checkpoint, not from scratch
    finally:
        torch.use_deterministic_algorithms(False)

    assert resumed["global_step"] == expected["global_step"] == 8
    assert resumed["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)
    assert resumed["eval_loss"] == pytest.approx(expected["eval_loss"], rel=1e-6)
    want, got = model_weights(unbroken.run_dir), model_weights(broken.run_dir)
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-6, msg=key)


def check_accumulation(main, overrides: list[str], tmp_path: Path, monkeypatch) -> None:
    """Batches of 24 and accumulated windows of 3 batches of 8 make the same 3 updates (dropout off).

    64 rows: 24 + 24 + 16 against (8, 8, 8) + (8, 8, 8) + (8, 8), so the short last window is covered too.
    AdamW's first steps are nearly the gradient's sign, blind to a wrongly scaled loss; plain SGD is not.
    """
    monkeypatch.setattr(
        loop_utils, "build_optimizer", lambda model, train: torch.optim.SGD(model.parameters(), lr=train.lr)
    )
    common = [
        *overrides,
        "model.dropout=0",
        "model.classifier_dropout=0",
        "train.sampler=random",  # the same shuffled rows whatever the batch size
        "train.max_steps=3",
        "train.warmup_ratio=0",
        "train.max_grad_norm=0",
        "train.lr=0.5",
        "eval.strategy=no",
    ]

    def train(batch_size: int, grad_accum: int):
        name = f"{batch_size}x{grad_accum}"
        recipe = load_recipe(
            "mrpc_minilm",
            [
                *common,
                f"train.batch_size={batch_size}",
                f"train.grad_accum={grad_accum}",
                f"output_dir={tmp_path / name}",
            ],
        )
        return main(recipe), model_weights(recipe.run_dir)

    large_metrics, large = train(24, 1)
    accumulated_metrics, accumulated = train(8, 3)
    _, small = train(8, 1)  # control: 3 steps on 8 rows each end visibly elsewhere

    assert accumulated_metrics["train_loss"] == pytest.approx(large_metrics["train_loss"], rel=1e-5)
    for key in large:
        torch.testing.assert_close(accumulated[key], large[key], rtol=1e-4, atol=1e-6, msg=key)
    assert max((small[k] - large[k]).abs().max().item() for k in large) > 1e-3
