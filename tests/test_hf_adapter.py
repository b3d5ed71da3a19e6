"""What we take from transformers outside its public API still matches (train/hf_adapter.py).

A transformers release that renames ``Trainer._get_train_sampler`` or reshapes ``speed_metrics`` fails here, by
name, rather than as a loop that quietly ignores our batch order or logs other tags.
"""

from __future__ import annotations

import time

from transformers import Trainer

from mrpc_finetune.train import hf_adapter


def test_this_transformers_offers_everything_the_adapter_relies_on():
    assert hf_adapter.incompatibilities() == []


def test_a_changed_private_method_is_named(monkeypatch):
    def reshaped(self, dataset, extra):  # a release that renamed the parameter and added one
        return None

    monkeypatch.setattr(Trainer, "_get_eval_sampler", reshaped)
    monkeypatch.delattr(Trainer, "prediction_step")
    problems = hf_adapter.incompatibilities()
    assert problems == [
        "Trainer._get_eval_sampler: parameters ('self', 'dataset'), expected ('self', 'eval_dataset')",
        "Trainer.prediction_step: gone",
    ]


def test_a_gone_helper_is_named(monkeypatch):
    import transformers.trainer_utils

    monkeypatch.delattr(transformers.trainer_utils, "speed_metrics")
    assert hf_adapter.incompatibilities() == ["transformers.trainer_utils.speed_metrics: gone"]


def test_the_helpers_give_the_trainers_keys_and_tags():
    speed = hf_adapter.speed_metrics("eval", time.time() - 2.0, num_samples=10, num_steps=5)
    assert set(speed) == {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
    assert 1.9 < speed["eval_runtime"] < 60
    assert hf_adapter.tensorboard_tags({"eval_f1": 0.5, "loss": 0.7}) == {"eval/f1": 0.5, "train/loss": 0.7}
