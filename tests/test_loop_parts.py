"""The step arithmetic and checkpoint bookkeeping the torch and Accelerate loops share."""

from __future__ import annotations

import pytest

from mrpc_finetune.recipe import EvalConfig, TrainConfig
from mrpc_finetune.train import loop_parts


def test_step_plan_counts_the_short_last_window_like_the_trainer():
    plan = loop_parts.StepPlan.from_recipe(8, TrainConfig(grad_accum=3, epochs=2))
    assert plan.total_steps == 6  # ceil(8 / 3) = 3 steps per epoch
    assert [plan.window_size(i) for i in range(8)] == [3, 3, 3, 3, 3, 3, 2, 2]
    assert [i for i in range(8) if plan.ends_window(i)] == [2, 5, 7]
    assert loop_parts.StepPlan.from_recipe(8, TrainConfig(max_steps=5, epochs=2)).total_steps == 5


def test_evaluation_points_follow_the_strategy_and_always_include_the_end():
    assert loop_parts.evaluates_now(EvalConfig(strategy="epoch"), 3, end_of_epoch=True, last=False)
    assert not loop_parts.evaluates_now(EvalConfig(strategy="epoch"), 3, end_of_epoch=False, last=False)
    assert loop_parts.evaluates_now(EvalConfig(strategy="steps", steps=2), 4, end_of_epoch=False, last=False)
    assert loop_parts.evaluates_now(EvalConfig(strategy="steps", steps=2), 5, end_of_epoch=False, last=True)
    assert not loop_parts.evaluates_now(EvalConfig(strategy="no"), 5, end_of_epoch=True, last=True)


def test_rotation_keeps_the_best_and_the_newest(tmp_path):
    for step in (2, 4, 6, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
    loop_parts.rotate_checkpoints(tmp_path, limit=2, best=str(tmp_path / "checkpoint-2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-8"]
    loop_parts.rotate_checkpoints(tmp_path, limit=1, best=str(tmp_path / "checkpoint-8"))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-8"]


def test_best_checkpoint_follows_the_higher_metric(tmp_path):
    state = loop_parts.LoopState()
    state.consider({"eval_accuracy": 0.6}, "eval_accuracy", tmp_path / "checkpoint-2")
    state.consider({"eval_accuracy": 0.5}, "eval_accuracy", tmp_path / "checkpoint-4")
    assert state.best_checkpoint == str(tmp_path / "checkpoint-2") and state.best_metric == 0.6
    state.save(tmp_path)
    assert loop_parts.LoopState.load(tmp_path) == state


def test_layer_wise_learning_rates(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)  # 2 encoder layers
    flat = loop_parts.build_optimizer(model, TrainConfig(lr=1e-3))
    assert [g["lr"] for g in flat.param_groups] == [1e-3, 1e-3]  # decayed weights, then biases and LayerNorms
    decayed = loop_parts.build_optimizer(model, TrainConfig(lr=1e-3, layer_lr_decay=0.5))
    lr_of = {id(p): g["lr"] for g in decayed.param_groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in decayed.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    expected = {
        "classifier.weight": 1e-3,
        "bert.pooler.dense.weight": 1e-3,
        "bert.encoder.layer.1.output.dense.weight": 5e-4,
        "bert.encoder.layer.0.attention.self.query.weight": 2.5e-4,
        "bert.encoder.layer.0.attention.self.query.bias": 2.5e-4,
        "bert.embeddings.word_embeddings.weight": 1.25e-4,
    }
    assert {name: lr_of[id(named[name])] for name in expected} == pytest.approx(expected)
    assert wd_of[id(named["bert.encoder.layer.0.attention.self.query.bias"])] == 0.0
    assert wd_of[id(named["bert.encoder.layer.0.attention.self.query.weight"])] == 0.01
    assert decayed.param_groups[0]["lr"] == 1e-3  # the top group first: the learning rate the logs show
    assert sum(len(g["params"]) for g in decayed.param_groups) == len(named)


def test_layer_wise_learning_rates_of_a_mean_pooled_model(tiny_model_dir):
    """No pooler to place: the classifier alone makes the top group, at ``lr``."""
    from mrpc_finetune.models import load_model
    from mrpc_finetune.recipe.schema import ModelConfig
    from mrpc_finetune.recipe.tasks import get_task

    model = load_model(ModelConfig(name=str(tiny_model_dir), pooler="mean"), get_task("mrpc"))
    optimizer = loop_parts.build_optimizer(model, TrainConfig(lr=1e-3, layer_lr_decay=0.5))
    top = {id(p) for group in optimizer.param_groups if group["lr"] == 1e-3 for p in group["params"]}
    assert top == {id(model.classifier.weight), id(model.classifier.bias)}
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert sorted({group["lr"] for group in optimizer.param_groups}) == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
